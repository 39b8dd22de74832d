"""``effinrx export``: NRX to ONNX (tf2onnx, opset >= 19, fixed shapes per PRB count), with
``onnx.checker`` and an ONNX Runtime vs TensorFlow parity check on a random input.

``--weights ART.npz`` of a compressed-model artifact (``effinrx compress``, ``effinrx prune``)
exports that compressed receiver; its recipe goes into the ONNX ``metadata_props``
(``effinrx.compression``). PTQ / pruned / distilled artifacts are plain float weights. A W8A8
artifact exports as its fake-quant graph (float Mul/Round/Min/Max around each layer, no Q/DQ
nodes): it runs on ONNX Runtime in float32 and reproduces the TF W8A8 receiver, but no engine
runs it in int8 -- for int8 engines quantize the fp32 export with ModelOpt (``effinrx latency
--precision int8``). Its parity is judged on simulated slots (``W8A8_PARITY_RATIO``): a last-bit
difference (ORT vs TF kernels) ahead of a rounding step moves an activation by one quantization
step, so ONNX and TF agree only statistically; the TF model itself moves as much when a scale
changes by one ulp."""
from __future__ import annotations

from pathlib import Path

from effinrx import compress as C
from effinrx.errors import ConfigError
from effinrx.export import onnx as E
from effinrx.io import check_writable
from effinrx.quant.w8a8 import set_mode
from effinrx.receivers.nrx import load_model
from effinrx.receivers.nrx_layers import NRX_MODELS


#: W8A8 (fake-quant graph) parity on simulated slots: L2(ONNX - TF W8A8) must be at most this
#: fraction of L2(ONNX - TF with float activations), i.e. the export runs the quantized model, not
#: the float one. Measured with this command (4 slots, 4 dB; calibration 4 slots x 3 Eb/N0):
#: RT int8 L2 0.0034 vs 0.355 (ratio 0.01); Large int8 0.071 vs 0.213 (0.33); Large fp8/percentile
#: 0.063 vs 0.134 (0.47). Large's 8 iterations amplify rounding flips: its TF model alone moves
#: 5-10 % (L2) per slot when every scale changes by one ulp.
W8A8_PARITY_RATIO = 0.75


def add_arguments(p) -> None:
    p.add_argument("--model", choices=NRX_MODELS, default=None,
                   help="model (default nrx-rt, or the model of a compressed artifact)")
    p.add_argument("--weights", default="auto", help="auto | reference | packaged | PATH (.npz or pickle; "
                   "an effinrx compress/prune artifact exports the compressed receiver)")
    p.add_argument("--prbs", type=int, default=4, help="PRB count the shapes are fixed to (132 = paper)")
    p.add_argument("--opset", type=int, default=19, help="ONNX opset (>= 19)")
    p.add_argument("--out", type=Path, default=None, help="ONNX file (default exports/<model>_<prbs>prb.onnx)")
    p.add_argument("--no-parity", action="store_true", help="skip the ORT vs TF parity check")


def run(args) -> int:
    import json

    import numpy as np

    if args.prbs < 1:
        raise ConfigError(f"--prbs must be >= 1, got {args.prbs}")

    if args.out is not None:
        check_writable(args.out, "--out")

    rec, meta = None, None
    if C.is_artifact(args.weights):
        net, rec, _ = C.load_artifact(args.weights, model=args.model)
        model, tag = rec.model, "_" + C.describe(rec).replace(":", "")
        meta = {"effinrx.compression": json.dumps(rec.to_dict(), sort_keys=True),
                "effinrx.model": rec.model, "effinrx.weights": Path(args.weights).name}
    else:
        model, tag = args.model or "nrx-rt", ""
        net = load_model(model, args.weights)
    out = args.out or check_writable(Path("exports") / f"{model}{tag}_{args.prbs}prb.onnx", "--out (default)")
    from effinrx._tf import GRAPPLER_NOISE, filtered_stderr

    with filtered_stderr(GRAPPLER_NOISE):  # tf2onnx's grappler passes log INFO lines through absl
        path = E.export_nrx_onnx(model, net, args.prbs, out, opset=args.opset, metadata=meta)
    io = E.io_shapes(args.prbs)  # "llr" is the one output, the rest are inputs
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, opset {args.opset}, weights "
          f"{net.weights_source}); inputs {', '.join(f'{k}{list(v)}' for k, v in io.items() if k != 'llr')}; "
          f"output llr{list(io['llr'])}")
    if rec is not None and rec.kind == "w8a8":
        print("note: W8A8 exports as a float fake-quant graph (no Q/DQ): ORT runs it in float32; for an "
              "int8 engine quantize the fp32 export with ModelOpt (effinrx latency --precision int8)")
        if args.no_parity:
            return 0
        r, rf = w8a8_parity(net, path, args.prbs)
        ratio = r["l2_rel"] / max(rf["l2_rel"], 1e-30)
        print(f"parity ORT vs TF W8A8 ({r['slots']} simulated slots): L2 rel {r['l2_rel']:.2e} (worst slot "
              f"{r['l2_rel_worst']:.2e}), sign agreement {r['sign_agree']:.4f}, {r['exact_slots']} slots "
              f"within 1e-4; vs TF with float activations L2 rel {rf['l2_rel']:.2e} (ratio {ratio:.2f})")
        if ratio > W8A8_PARITY_RATIO:
            print(f"PARITY FAILED (ratio {ratio:.2f} > {W8A8_PARITY_RATIO}: the ONNX is not the W8A8 model)")
            return 1
        return 0
    if not args.no_parity:
        rng = np.random.default_rng(0)
        inp = {k: rng.normal(size=s).astype(np.float32) for k, s in E.io_shapes(args.prbs).items() if k != "llr"}
        r = E.parity(net, path, inp, args.prbs)
        print(f"parity ORT vs TF (random input): max rel {r['max_rel']:.2e}, L2 rel {r['l2_rel']:.2e}")
        if r["max_rel"] > 1e-4:
            print("PARITY FAILED (> 1e-4)")
            return 1
    return 0


def w8a8_parity(net, path, prbs: int, n: int = 4) -> tuple[dict, dict]:
    """:func:`effinrx.export.onnx.slot_parity` of the ONNX at ``path`` vs the W8A8 ``net`` and vs
    the same net with its activation quantizers in mode "float" (restored to "quant" after)."""
    r = E.slot_parity(net, path, prbs, n=n)
    set_mode(net.act_quantizers, "float")
    try:
        rf = E.slot_parity(net, path, prbs, n=n)
    finally:
        set_mode(net.act_quantizers, "quant")
    return r, rf
