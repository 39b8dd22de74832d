"""Make a ModelOpt (TensorRT-style) int8 Q/DQ model fuse into integer kernels on ONNX Runtime CPU.

Why: ModelOpt places Q/DQ on the *inputs* of Conv/MatMul (what TensorRT needs). ONNX Runtime's
CPU EP turns ``DQ -> Conv -> Q`` into ``QLinearConv`` only when the Conv output is quantized too;
in the NRX every pointwise Conv feeds a Relu, so ORT runs it as a float ``FusedConv`` on
dequantized tensors and int8 gives no speed-up (profiled with ``OrtEngine.profile``). Also, weights
are stored in fp32 behind a ``QuantizeLinear`` that ORT evaluates on every run.

Two graph rewrites, both exact (no new rounding beyond what the model already does):

* ``fold_weight_q``: ``Q(initializer)`` is computed once with numpy and stored as int8.
* ``qdq_before_relu``: ``Conv -> Relu -> Q(s, z)`` (all Relu consumers quantize with the same
  symmetric scale, z = 0) becomes ``Conv -> Q(s, z) -> DQ -> Relu -> Q(s, z)``. With z = 0,
  ``Q(Relu(x)) == Relu(Q(x))`` element for element, so the result is unchanged while ORT can form
  ``QLinearConv`` (int8 Conv with requantized int8 output).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from effinrx.errors import ShapeError


def _quantize_np(x: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int) -> np.ndarray:
    """ONNX QuantizeLinear in numpy (round half to even, saturate) for int8/uint8 zero points."""
    if scale.ndim == 1 and scale.size > 1:  # per-axis: broadcast along ``axis``
        shape = [1] * x.ndim
        shape[axis] = scale.size
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    info = np.iinfo(zp.dtype)
    q = np.rint(x / scale) + zp.astype(np.int32)
    return np.clip(q, info.min, info.max).astype(zp.dtype)


def fold_weight_q(model) -> int:
    """Replace ``QuantizeLinear(initializer, scale, zp)`` by a quantized initializer; returns count."""
    from onnx import numpy_helper

    g = model.graph
    init = {t.name: t for t in g.initializer}
    folded, keep = 0, []
    for n in g.node:
        if n.op_type == "QuantizeLinear" and len(n.input) == 3 and all(i in init for i in n.input):
            x, s, z = (numpy_helper.to_array(init[i]) for i in n.input)
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            axis = axis + x.ndim if axis < 0 else axis
            q = _quantize_np(x.astype(np.float32), s.astype(np.float32), z, axis)
            g.initializer.append(numpy_helper.from_array(q, n.output[0]))
            folded += 1
        else:
            keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    dead = [t for t in g.initializer if t.name not in used]
    for t in dead:  # the fp32 weights that were only quantized
        g.initializer.remove(t)
    return folded


def qdq_before_relu(model) -> int:
    """Insert ``Q -> DQ`` between ``Conv`` and ``Relu`` where every Relu consumer quantizes with one
    scale/zero-point pair with zero point 0; returns the number of Convs rewritten."""
    from onnx import helper, numpy_helper

    g = model.graph
    init = {t.name: t for t in g.initializer}
    consumers = defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)
    graph_outputs = {o.name for o in g.output}
    new_nodes, count = [], 0
    for n in g.node:
        new_nodes.append(n)
        if n.op_type != "Conv" or n.output[0] in graph_outputs:
            continue
        nxt = consumers[n.output[0]]
        if len(nxt) != 1 or nxt[0].op_type != "Relu":
            continue
        relu = nxt[0]
        qs = consumers[relu.output[0]]
        if relu.output[0] in graph_outputs or not qs or any(q.op_type != "QuantizeLinear" for q in qs):
            continue
        pairs = {tuple(q.input[1:3]) for q in qs}
        if len(pairs) != 1:
            continue
        s_name, z_name = next(iter(pairs))
        if z_name not in init or np.any(numpy_helper.to_array(init[z_name]) != 0):
            continue  # asymmetric: Q(Relu(x)) != Relu(Q(x)) in general
        q_out, dq_out = n.output[0] + "_relu_q", n.output[0] + "_relu_dq"
        new_nodes.append(helper.make_node("QuantizeLinear", [n.output[0], s_name, z_name], [q_out],
                                          name=n.name + "/pre_relu_Q"))
        new_nodes.append(helper.make_node("DequantizeLinear", [q_out, s_name, z_name], [dq_out],
                                          name=n.name + "/pre_relu_DQ"))
        relu.input[0] = dq_out
        count += 1
    del g.node[:]
    g.node.extend(new_nodes)
    return count


def tune_for_ort(onnx_path: str | Path, out_path: str | Path) -> dict:
    """Apply both rewrites to a Q/DQ ONNX; returns ``{"weights_folded", "relu_qdq"}``."""
    import onnx

    from effinrx.io import atomic_write_bytes

    try:
        model = onnx.load(str(onnx_path))
    except Exception as e:
        raise ShapeError(f"cannot read ONNX file {onnx_path}: {type(e).__name__}: {e}") from None
    stats = {"weights_folded": fold_weight_q(model), "relu_qdq": qdq_before_relu(model)}
    onnx.checker.check_model(model)
    atomic_write_bytes(out_path, model.SerializeToString())
    return stats
