"""ONNX export of the NRX (tf2onnx, opset >= 19, shapes fixed per PRB count).

Wrapper I/O (batch 1, S = 12 * PRBs subcarriers, P = 6 pilots per PRB per DMRS symbol x 2 symbols):

* ``rx_slot_real``, ``rx_slot_imag``: float32 [1, S, 14, 4] received grid (subcarrier, symbol, antenna).
* ``h_hat_real``, ``h_hat_imag``: float32 [1, P, 2, 4] raw LS estimates y/pilot at each UE's own
  DMRS pilots (pilot index in (symbol, subcarrier) row-major order, UE, antenna).
* output ``llr``: float32 [1, 2, S, 14, 4] per-RE LLRs of both UEs on the full grid, Sionna's sign
  (log p(1)/p(0); the reference's Aerial wrapper negates instead). Data REs are picked downstream
  with :func:`effinrx.receivers.nrx_preproc.data_re_indices`.

Inside the graph: frequency-OCC averaging of adjacent pilot pairs and nearest-neighbour
interpolation (a constant gather, identical to Sionna's LS-NN estimator), constant positional
encoding, both UEs active, then the CGNN.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from effinrx.errors import ConfigError, NotAvailableError, ShapeError
from effinrx.io import atomic_write_bytes
from effinrx.link.pusch import reference_transmitter
from effinrx.link.umi import UMiSlotSource
from effinrx.receivers import nrx_preproc as P
from effinrx.receivers.nrx import load_model

OPSET = 19
TF2ONNX_MAX_OPSET = 18
INPUT_NAMES = ("rx_slot_real", "rx_slot_imag", "h_hat_real", "h_hat_imag")


def io_shapes(prbs: int) -> dict:
    """Fixed input/output shapes for ``prbs`` PRBs."""
    s, p = 12 * int(prbs), 12 * int(prbs)
    return {"rx_slot_real": (1, s, 14, 4), "rx_slot_imag": (1, s, 14, 4),
            "h_hat_real": (1, p, 2, 4), "h_hat_imag": (1, p, 2, 4), "llr": (1, 2, s, 14, 4)}


@functools.lru_cache(maxsize=8)
def _grid_consts(prbs: int):
    rg = reference_transmitter(int(prbs), 2).resource_grid
    pilots = np.asarray(rg.pilot_pattern.pilots)[:, 0]
    pos = P.own_pilot_positions(rg)
    own = np.stack([pilots[u][np.abs(pilots[u]) > 1e-3] for u in range(2)])  # [U, P] complex
    return {"pe": P.positional_encoding(rg), "nn": P.nn_gather_indices(rg), "pos": pos,
            "pilots": own.astype(np.complex64)}


def ls_at_pilots(y: np.ndarray, prbs: int) -> tuple[np.ndarray, np.ndarray]:
    """Wrapper ``h_hat`` inputs from a Sionna grid ``y`` complex [1, 1, 4, 14, S]:
    returns (real, imag) float32 [1, P, 2, 4] of y / pilot at each UE's own pilots."""
    c = _grid_consts(prbs)
    y = np.asarray(y)
    if y.shape != (1, 1, 4, 14, 12 * prbs):
        raise ShapeError(f"y has shape {y.shape}, expected (1, 1, 4, 14, {12 * prbs})")
    ls = np.stack([y[0, 0][:, p[:, 0], p[:, 1]] / c["pilots"][u] for u, p in enumerate(c["pos"])])  # [U, A, P]
    ls = np.transpose(ls, (2, 0, 1))[None]
    return ls.real.astype(np.float32), ls.imag.astype(np.float32)


def slot_to_inputs(y: np.ndarray, prbs: int) -> dict:
    """All four wrapper inputs from a Sionna grid ``y`` complex [1, 1, 4, 14, S]."""
    hr, hi = ls_at_pilots(y, prbs)
    g = np.transpose(np.asarray(y)[0, 0], (2, 1, 0))[None]  # [1, S, T, A]
    return {"rx_slot_real": g.real.astype(np.float32), "rx_slot_imag": g.imag.astype(np.float32),
            "h_hat_real": hr, "h_hat_imag": hi}


def make_tf_wrapper(net, prbs: int):
    """A ``tf.function`` with the wrapper's fixed input signature, returning ``llr``."""
    from effinrx._tf import tf

    t = tf()
    c = _grid_consts(prbs)
    shp = io_shapes(prbs)
    pe_np, nn_np = c["pe"], c["nn"]  # made constants inside the graph (not captured inputs)
    sig = [t.TensorSpec(shp[n], t.float32, name=n) for n in INPUT_NAMES]

    @t.function(input_signature=sig, autograph=False)
    def nrx_onnx(rx_slot_real, rx_slot_imag, h_hat_real, h_hat_imag):
        pe = t.constant(pe_np)  # [U, S, T, 2]
        nn = t.constant(nn_np)  # [U, S, T] nearest own pilot
        y = t.concat([rx_slot_real, rx_slot_imag], axis=-1)  # [1, S, T, 8]
        h = t.concat([h_hat_real, h_hat_imag], axis=-1)  # [1, P, U, 8]
        h = t.transpose(h[0], [1, 0, 2])  # [U, P, 8]
        # frequency OCC: average adjacent own pilots (pairs), as Sionna's PUSCH LS estimator
        u, p = h.shape[0], h.shape[1]
        h = t.reshape(h, [u, p // 2, 2, 8])
        h = t.reshape(t.tile(t.reduce_mean(h, axis=2, keepdims=True), [1, 1, 2, 1]), [u, p, 8])
        hg = t.gather(h, nn, axis=1, batch_dims=1)  # [U, S, T, 8]
        llr, _ = net((y, pe, hg[None], t.ones([1, u], t.float32)), training=False)
        return t.identity(llr, name="llr")

    return nrx_onnx


def export_nrx_onnx(model_cfg: Any, weights: Any, prbs: int, path: Union[str, Path],
                    opset: int = OPSET, wrap=None, metadata: Optional[dict] = None) -> Path:
    """Export the NRX (config or name ``model_cfg``, weights as for ``resolve_weights``, or an
    already-built CGNN passed as ``weights``) at ``prbs`` PRBs to ``path``; checks the model with
    ``onnx.checker``. ``metadata``: str -> str pairs written to the model's ``metadata_props``
    (e.g. a compression recipe as JSON). Returns the path."""
    if opset < 19:
        raise ConfigError(f"opset must be >= 19 (ModelOpt), got {opset}")
    if not 1 <= int(prbs) <= 275:
        raise ConfigError(f"prbs must be in 1..275, got {prbs}")
    try:
        import onnx
        import tf2onnx
    except ImportError as e:  # pragma: no cover
        raise NotAvailableError(f"ONNX export needs onnx and tf2onnx: {e}") from None
    net = weights if hasattr(weights, "core_variables") else _load(model_cfg, weights, wrap)
    fn = make_tf_wrapper(net, int(prbs))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # tf2onnx 1.17 tops out at opset 18; the ONNX version converter lifts the graph to ``opset``
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=fn.input_signature,
                                             opset=min(opset, TF2ONNX_MAX_OPSET), output_path=None)
    if opset > TF2ONNX_MAX_OPSET:
        from onnx import version_converter

        proto = version_converter.convert_version(proto, opset)
        proto.ir_version = max(proto.ir_version, 9)  # opset 19 needs IR >= 9
    _rename_output(proto, "llr")
    for k, v in (metadata or {}).items():
        proto.metadata_props.add(key=str(k), value=str(v))

    # external data is never needed: the Large model is < 2 MB
    atomic_write_bytes(path, proto.SerializeToString())
    onnx.checker.check_model(str(path))
    return path


def _rename_output(proto, name: str) -> None:
    old = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
        node.input[:] = [name if i == old else i for i in node.input]
    proto.graph.output[0].name = name


def _load(model_cfg, weights, wrap):
    return load_model(model_cfg, weights if weights is not None else "auto", wrap)


def ort_session(path: Union[str, Path], threads: Optional[int] = None):
    """ONNX Runtime CPU session for ``path``."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = int(threads)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def parity(net, path: Union[str, Path], inputs: dict, prbs: int) -> dict:
    """Relative error between ONNX Runtime and TF for one input dict:
    ``max|onnx - tf| / max|tf|`` and the relative L2 error."""
    fn = make_tf_wrapper(net, prbs)
    ref = fn(**inputs).numpy()
    out = ort_session(path).run(["llr"], inputs)[0]
    return {"max_rel": float(np.max(np.abs(out - ref)) / max(np.max(np.abs(ref)), 1e-30)),
            "l2_rel": float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30))}


def slot_parity(net, path: Union[str, Path], prbs: int, n: int = 4, ebno_db: float = 4.0,
                seed: int = 0) -> dict:
    """ONNX Runtime vs TF on ``n`` simulated UMi slots (both UEs, ``ebno_db``, TF seed ``seed``).

    Meant for fake-quant (W8A8) graphs, where a last-bit difference ahead of a rounding step moves
    an activation by one quantization step, so per-LLR agreement is statistical. Returns
    ``l2_rel`` (relative L2 over all slots), ``l2_rel_worst`` (worst slot), ``max_rel`` (worst slot,
    as :func:`parity`), ``sign_agree`` (fraction of LLRs with the same sign) and ``exact_slots``
    (slots with max_rel <= 1e-4) of ``slots``."""
    from effinrx._tf import tf

    tf().random.set_seed(int(seed))
    y = UMiSlotSource(int(prbs), 2)(int(n), float(ebno_db), num_active=2).y.numpy()
    fn = make_tf_wrapper(net, prbs)
    sess = ort_session(path)
    refs, outs, per = [], [], []
    for i in range(int(n)):
        inp = slot_to_inputs(y[i:i + 1], prbs)
        refs.append(fn(**inp).numpy())
        outs.append(sess.run(["llr"], inp)[0])
        d = outs[-1] - refs[-1]
        per.append((float(np.max(np.abs(d)) / max(np.max(np.abs(refs[-1])), 1e-30)),
                    float(np.linalg.norm(d) / max(np.linalg.norm(refs[-1]), 1e-30))))
    ref, out = np.stack(refs), np.stack(outs)
    return {"l2_rel": float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-30)),
            "l2_rel_worst": max(p[1] for p in per), "max_rel": max(p[0] for p in per),
            "sign_agree": float(np.mean(np.sign(out) == np.sign(ref))),
            "exact_slots": sum(p[0] <= 1e-4 for p in per), "slots": int(n)}


def op_counts(path) -> dict:
    """Node type histogram of an ONNX file (to show what the int8 graph really contains)."""
    import onnx

    c: dict = {}
    for node in onnx.load(str(path)).graph.node:
        c[node.op_type] = c.get(node.op_type, 0) + 1
    return dict(sorted(c.items()))
