"""Make a ModelOpt (TensorRT-style) int8 Q/DQ model run on ONNX Runtime CPU's integer kernels.

Why (all found with ``OrtEngine.profile`` and measured on the NRX-RT, 2026-11-24/25):

* ModelOpt places Q/DQ on the *inputs* of Conv/MatMul (what TensorRT needs). ORT's CPU EP forms
  ``QLinearConv`` only for ``DQ -> Conv -> Q``; every NRX pointwise Conv feeds a Relu, so ORT ran
  it as a float ``FusedConv`` on dequantized tensors and int8 was slower than fp32.
* ModelOpt leaves the 18- and 114-channel depthwise Convs unquantized (TensorRT channel
  alignment); ORT's depthwise int8 kernel has no such limit.
* On x86 ORT converts int8 activations to uint8 (zero point +128) and runs u8 x s8 kernels. Their
  pairwise int16 products saturate when activations reach ~255 and weights ~127: with full-range
  int8 pointwise weights the NRX's LLR SQNR vs fp32 fell from 16.8 dB (ModelOpt model as is) to
  6.2 dB. 7-bit pointwise weights (ORT's own ``reduce_range`` remedy) bring it back to 16.2 dB.

Rewrites (each returns how many places it changed):

* :func:`fold_weight_q` ``Q(initializer)`` computed once with numpy, stored int8 (exact).
* :func:`relu_to_uint8` ``Relu -> Q(s, z=0 int8)`` and its DQs become uint8 with z = 0, so ORT
  drops the Relu and forms QLinearConv. Values above 127 s now survive instead of clipping (the
  calibrated max is 127 s, so only out-of-calibration values change).
* :func:`quantize_float_convs` adds per-tensor input Q/DQ (calibrated max) and per-channel int8
  weights to float Convs whose output is already quantized, when every input channel keeps
  :data:`MIN_CHANNEL_LEVELS` levels (the NRX's 18-channel input features do; its 114-channel
  concatenated states do not, which is probably why ModelOpt's choice to skip them is right).
* :func:`reduce_pointwise_range` 7-bit weights for 1x1 group-1 Convs (see above).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from effinrx.errors import ShapeError
from effinrx.io import atomic_write_bytes


def _quantize_np(x: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int) -> np.ndarray:
    """ONNX QuantizeLinear in numpy (round half to even, saturate) for int8/uint8 zero points."""
    if scale.ndim == 1 and scale.size > 1:  # per-axis: broadcast along ``axis``
        shape = [1] * x.ndim
        shape[axis] = scale.size
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    info = np.iinfo(zp.dtype)
    q = np.rint(x / scale) + zp.astype(np.int32)
    return np.clip(q, info.min, info.max).astype(zp.dtype)


def _consumers(g) -> dict:
    c = defaultdict(list)
    for n in g.node:
        for i in n.input:
            c[i].append(n)
    return c


def _drop_unused_initializers(g) -> None:
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    for t in [t for t in g.initializer if t.name not in used]:
        g.initializer.remove(t)


def _group(node) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


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
    _drop_unused_initializers(g)  # the fp32 weights that were only quantized
    return folded


def relu_to_uint8(model) -> int:
    """``Relu -> Q(s, 0 int8) -> DQ`` becomes ``Relu -> Q(s, 0 uint8) -> DQ`` (all Q consumers of the
    Relu must share one scale and a zero int8 zero point, all their consumers must be DQ)."""
    from onnx import numpy_helper

    g = model.graph
    init = {t.name: t for t in g.initializer}
    cons = _consumers(g)
    outputs = {o.name for o in g.output}
    count = 0
    for n in g.node:
        if n.op_type != "Relu" or n.output[0] in outputs:
            continue
        qs = cons[n.output[0]]
        if not qs or any(q.op_type != "QuantizeLinear" for q in qs):
            continue
        pairs = {tuple(q.input[1:3]) for q in qs}
        if len(pairs) != 1:
            continue
        _, z = next(iter(pairs))
        if z not in init:
            continue
        zv = numpy_helper.to_array(init[z])
        dqs = [d for q in qs for d in cons[q.output[0]]]
        if zv.dtype != np.int8 or np.any(zv != 0) or any(d.op_type != "DequantizeLinear" for d in dqs):
            continue
        z8 = z + "_u8"
        if z8 not in init:
            init[z8] = numpy_helper.from_array(np.zeros(zv.shape, np.uint8), z8)
            g.initializer.append(init[z8])
        for node in qs + dqs:
            node.input[2] = z8
        count += 1
    _drop_unused_initializers(g)
    return count


def float_conv_inputs(model) -> list[str]:
    """Activation inputs of Convs that run in float although their output is quantized
    (input not from a DequantizeLinear, weight an initializer, every consumer a QuantizeLinear)."""
    g = model.graph
    init = {t.name for t in g.initializer}
    prod = {o: n for n in g.node for o in n.output}
    cons = _consumers(g)
    out = []
    for n in g.node:
        if n.op_type != "Conv" or n.input[1] not in init:
            continue
        src = prod.get(n.input[0])
        if src is not None and src.op_type == "DequantizeLinear":
            continue
        users = cons[n.output[0]]
        if users and all(u.op_type == "QuantizeLinear" for u in users):
            out.append(n.input[0])
    return out


#: a float Conv input is quantized only if its weakest channel keeps this many int8 levels under
#: the per-tensor scale (amax_min / amax_max * 127). The NRX's 114-channel concatenated state has
#: channels with max |x| 1 next to 216: one per-tensor scale leaves those < 1 level, and quantizing
#: it took the 132-PRB LLR SQNR vs fp32 from 17.9 to 10.0 dB (measured 2026-11-25).
MIN_CHANNEL_LEVELS = 16.0


def channel_amax(model, names: list[str], feeds: list[dict]) -> dict[str, np.ndarray]:
    """Per-channel (axis 1) max |x| [C] float64 of the tensors ``names`` over ``feeds`` (each one ORT
    input dict), running ``model`` itself on ORT CPU (so upstream quantization is included)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for nm in names:
        m.graph.output.append(helper.make_tensor_value_info(nm, TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    amax: dict[str, np.ndarray] = {}
    for feed in feeds:
        for nm, v in zip(names, sess.run(names, feed)):
            a = np.abs(np.asarray(v, np.float64)).max(axis=tuple(i for i in range(v.ndim) if i != 1))
            amax[nm] = a if nm not in amax else np.maximum(amax[nm], a)
    return amax


def quantizable(ch_amax: np.ndarray) -> bool:
    """True when one per-tensor int8 scale leaves every channel >= :data:`MIN_CHANNEL_LEVELS` levels."""
    top = float(ch_amax.max(initial=0.0))
    return top > 0 and float(ch_amax.min()) / top * 127.0 >= MIN_CHANNEL_LEVELS


def quantize_float_convs(model, ch_amax: dict[str, np.ndarray]) -> tuple[int, int]:
    """Give each Conv whose input is a key of ``ch_amax`` (per-channel max |x|, [C]) an int8 input
    Q/DQ (per-tensor, zero point 0) and per-output-channel int8 weights ([-127, 127]) behind a DQ.

    When the input fails :func:`quantizable` and the Conv is depthwise or group 1, the input
    channels are equalized first: ``x_c / a_c`` (one float Mul) with ``a_c`` folded into the
    weights, exact in real arithmetic because channel c of x only meets weight slice c
    (the idea of SmoothQuant's migration, with all of the range moved). Other Convs are left float.
    Returns (quantized, of which equalized).
    """
    from onnx import helper, numpy_helper

    g = model.graph
    init = {t.name: t for t in g.initializer}
    new_nodes, count, equalized = [], 0, 0
    for n in g.node:
        if n.op_type == "Conv" and n.input[0] in ch_amax and n.input[1] in init:
            b = n.name or n.output[0]
            w = numpy_helper.to_array(init[n.input[1]]).astype(np.float32)  # [C_out, C_in/group, kh, kw]
            a = np.asarray(ch_amax[n.input[0]], np.float64)
            x_in, top = n.input[0], float(a.max(initial=0.0))
            if not quantizable(a):
                group, c_in = _group(n), a.size
                if group == c_in and w.shape[0] == c_in and w.shape[1] == 1:
                    axis = 0  # depthwise: output channel c reads input channel c only
                elif group == 1 and w.shape[1] == c_in:
                    axis = 1
                else:
                    new_nodes.append(n)
                    continue
                eq = np.where(a > 1e-6 * max(top, 1e-30), a, 1.0).astype(np.float32)
                shape = [1] * w.ndim
                shape[axis] = eq.size
                w = w * eq.reshape(shape)
                g.initializer.append(numpy_helper.from_array((1.0 / eq).reshape(1, -1, 1, 1), b + "/x_eq"))
                new_nodes.append(helper.make_node("Mul", [x_in, b + "/x_eq"], [b + "/x_equalized"],
                                                  name=b + "/x_equalize"))
                x_in, top, equalized = b + "/x_equalized", float((a / eq).max(initial=0.0)), equalized + 1
            ws = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(axis=1), 1e-12) / 127.0
            wq = np.clip(np.rint(w / ws.reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
            xs = np.float32(max(top, 1e-8) / 127.0)
            g.initializer.extend([numpy_helper.from_array(wq, b + "/w_q"),
                                  numpy_helper.from_array(ws.astype(np.float32), b + "/w_s"),
                                  numpy_helper.from_array(np.zeros(ws.shape, np.int8), b + "/w_z"),
                                  numpy_helper.from_array(np.array(xs, np.float32), b + "/x_s"),
                                  numpy_helper.from_array(np.array(0, np.int8), b + "/x_z")])
            new_nodes += [
                helper.make_node("DequantizeLinear", [b + "/w_q", b + "/w_s", b + "/w_z"], [b + "/w_dq"],
                                 name=b + "/w_DQ", axis=0),
                helper.make_node("QuantizeLinear", [x_in, b + "/x_s", b + "/x_z"], [b + "/x_q"],
                                 name=b + "/x_Q"),
                helper.make_node("DequantizeLinear", [b + "/x_q", b + "/x_s", b + "/x_z"], [b + "/x_dq"],
                                 name=b + "/x_DQ")]
            n.input[0], n.input[1] = b + "/x_dq", b + "/w_dq"
            count += 1
        new_nodes.append(n)
    del g.node[:]
    g.node.extend(new_nodes)
    _drop_unused_initializers(g)
    return count, equalized


def reduce_pointwise_range(model) -> int:
    """Requantize the int8 weights of 1x1, group-1 Convs to 7 bits ([-64, 63], scale x2) so ORT's
    u8 x s8 kernels cannot saturate their int16 pair sums (255 x 64 x 2 < 32767)."""
    from onnx import numpy_helper

    g = model.graph
    init = {t.name: t for t in g.initializer}
    prod = {o: n for n in g.node for o in n.output}
    count = 0
    for n in g.node:
        if n.op_type != "Conv" or _group(n) != 1:
            continue
        ks = next((list(a.ints) for a in n.attribute if a.name == "kernel_shape"), None)
        dq = prod.get(n.input[1])
        if ks != [1, 1] or dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in init:
            continue
        q = numpy_helper.to_array(init[dq.input[0]])
        if q.dtype != np.int8 or np.abs(q.astype(np.int32)).max(initial=0) <= 63:
            continue
        s = numpy_helper.to_array(init[dq.input[1]]).astype(np.float32)
        q7 = np.clip(np.rint(q.astype(np.float32) / 2.0), -64, 63).astype(np.int8)
        init[dq.input[0]].CopyFrom(numpy_helper.from_array(q7, dq.input[0]))
        s_name = dq.input[1] + "_7bit"
        g.initializer.append(numpy_helper.from_array(s * 2.0, s_name))
        dq.input[1] = s_name
        count += 1
    _drop_unused_initializers(g)
    return count


def tune_for_ort(onnx_path: str | Path, out_path: str | Path, calibration: dict | None = None) -> dict:
    """Apply the rewrites to a ModelOpt int8 Q/DQ ONNX and write ``out_path`` atomically.

    ``calibration``: ORT inputs stacked on axis 0 (``{name: [N, ...] float32}``), fed one slot at a
    time to calibrate the Convs ModelOpt left in float; without it those stay float.
    Returns ``{"weights_folded", "relu_uint8", "convs_quantized", "convs_equalized",
    "convs_kept_float", "pointwise_7bit"}``.
    """
    import onnx

    try:
        model = onnx.load(str(onnx_path))
    except Exception as e:
        raise ShapeError(f"cannot read ONNX file {onnx_path}: {type(e).__name__}: {e}") from None
    stats = {"weights_folded": fold_weight_q(model)}
    stats["relu_uint8"] = relu_to_uint8(model)
    names = float_conv_inputs(model)
    stats["convs_quantized"], stats["convs_equalized"], stats["convs_kept_float"] = 0, 0, len(names)
    if calibration and names:
        n = len(next(iter(calibration.values())))
        feeds = [{k: v[i:i + 1] for k, v in calibration.items()} for i in range(n)]
        stats["convs_quantized"], stats["convs_equalized"] = quantize_float_convs(
            model, channel_amax(model, names, feeds))
        stats["convs_kept_float"] = len(names) - stats["convs_quantized"]
    stats["pointwise_7bit"] = reduce_pointwise_range(model)
    onnx.checker.check_model(model)
    atomic_write_bytes(out_path, model.SerializeToString())
    return stats
