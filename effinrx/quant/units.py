"""The units a per-layer sensitivity sweep or a keep-float list names: groups of NRX core kernels
(``<block>/<role><j>``, e.g. ``cgnn_it0/upd0``) with their positions in ``core_variables()``.
Shared by :mod:`effinrx.quant.sensitivity` and :mod:`effinrx.quant.w8a8` (apart from both so
neither imports the other)."""
from __future__ import annotations

from dataclasses import dataclass

from effinrx.errors import ConfigError
from effinrx.quant.ptq import _kind
from effinrx.receivers.nrx_layers import _own_vars

UNIT_KINDS = ("layer", "kernel")


@dataclass
class Unit:
    """A group of kernels quantized together. ``indices``: positions in ``core_variables()``
    (reference weight order); ``kinds``: "depthwise" | "pointwise" | "dense" per index;
    ``layer``: index of the core layer the kernels belong to."""
    name: str
    block: str
    indices: list
    kinds: list
    params: int
    layer: int = -1


def unit_names_of_exported(net, layers) -> list[str]:
    """Unit names of an ONNX export's layers. ``layers``: ``(Keras layer name, op of its first compute
    node)`` in graph order (:func:`effinrx.export.modelopt.layer_inputs`). Keras numbers layers per
    process (an export built third names ``separable_conv2d_27``), so layers are matched by position
    within their kind: the i-th Conv-led layer is ``net``'s i-th SeparableConv2D core layer, the i-th
    MatMul/Gemm-led one its i-th Dense (the readout_chest Dense layers come last and are not exported).
    ConfigError when the export has more layers of a kind than ``net``."""
    pools = {"sep": [], "dense": []}
    for u in layer_units(net, "layer"):
        pools["sep" if hasattr(net.core_layers[u.layer], "depthwise_kernel") else "dense"].append(u.name)
    seen = {"sep": 0, "dense": 0}
    out = []
    for name, op in layers:
        kind = "sep" if op in ("Conv", "ConvTranspose") else "dense"
        if seen[kind] >= len(pools[kind]):
            raise ConfigError(f"exported layer {name!r} ({op}): model '{net.cfg.name}' has only "
                              f"{len(pools[kind])} {'separable' if kind == 'sep' else 'dense'} core layers")
        out.append(pools[kind][seen[kind]])
        seen[kind] += 1
    return out


def layer_units(net, unit: str = "layer") -> list[Unit]:
    """Units of a CGNN built by ``build_cgnn``/``load_model``, in core-layer order.

    Names are ``<block>/<role><j>``: role ``conv`` (state init), ``agg``/``upd`` (CGNN iteration
    aggregation MLP / state-update convs), ``dense`` (readouts); with ``unit="kernel"`` a
    separable layer gives ``.../upd0.dw`` and ``.../upd0.pw``. ``readout_chest`` units do not
    feed the LLRs (their LLR SQNR is inf by construction)."""
    if unit not in UNIT_KINDS:
        raise ConfigError(f"sensitivity unit {unit!r} not one of {', '.join(UNIT_KINDS)}")
    units, pos, seen = [], 0, {}
    for li, (layer, blk) in enumerate(zip(net.core_layers, net.block_of)):
        vs = _own_vars(layer)
        sep = hasattr(layer, "depthwise_kernel")
        if blk == "state_init":
            role = "conv"
        elif blk.startswith("cgnn_it"):
            role = "upd" if sep else "agg"
        else:
            role = "dense"
        j = seen.get((blk, role), 0)
        seen[(blk, role)] = j + 1
        ker = [(pos + i, _kind(v.name), int(v.shape.num_elements())) for i, v in enumerate(vs)
               if _kind(v.name) != "bias"]
        pos += len(vs)
        base = f"{blk}/{role}{j}"
        if unit == "layer" or len(ker) == 1:
            units.append(Unit(base, blk, [k[0] for k in ker], [k[1] for k in ker], sum(k[2] for k in ker), li))
        else:
            for idx, kind, n in ker:
                units.append(Unit(f"{base}.{'dw' if kind == 'depthwise' else 'pw'}", blk, [idx], [kind], n, li))
    return units
