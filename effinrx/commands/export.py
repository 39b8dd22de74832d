"""``effinrx export``: NRX to ONNX (tf2onnx, opset >= 19, fixed shapes per PRB count), with
``onnx.checker`` and an ONNX Runtime vs TensorFlow parity check on a random input."""
from __future__ import annotations

from pathlib import Path

from effinrx.errors import ConfigError

HELP = "export a receiver to ONNX (fixed shapes per PRB count) and check parity"


def add_arguments(p) -> None:
    p.add_argument("--model", choices=("nrx-rt", "nrx-large"), default="nrx-rt")
    p.add_argument("--weights", default="auto", help="auto | reference | packaged | PATH (.npz or pickle)")
    p.add_argument("--prbs", type=int, default=4, help="PRB count the shapes are fixed to (132 = paper)")
    p.add_argument("--opset", type=int, default=19)
    p.add_argument("--out", type=Path, default=None, help="ONNX file (default exports/<model>_<prbs>prb.onnx)")
    p.add_argument("--no-parity", action="store_true", help="skip the ORT vs TF parity check")


def run(args) -> int:
    import numpy as np

    from effinrx.export import onnx as E
    from effinrx.receivers.nrx import load_model

    if args.prbs < 1:
        raise ConfigError(f"--prbs must be >= 1, got {args.prbs}")
    out = args.out or Path("exports") / f"{args.model}_{args.prbs}prb.onnx"
    net = load_model(args.model, args.weights)
    path = E.export_nrx_onnx(args.model, net, args.prbs, out, opset=args.opset)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, opset {args.opset}, weights "
          f"{net.weights_source}); inputs {', '.join(f'{k}{list(v)}' for k, v in E.io_shapes(args.prbs).items())}")
    if not args.no_parity:
        rng = np.random.default_rng(0)
        inp = {k: rng.normal(size=s).astype(np.float32) for k, s in E.io_shapes(args.prbs).items() if k != "llr"}
        r = E.parity(net, path, inp, args.prbs)
        print(f"parity ORT vs TF (random input): max rel {r['max_rel']:.2e}, L2 rel {r['l2_rel']:.2e}")
        if r["max_rel"] > 1e-4:
            print("PARITY FAILED (> 1e-4)")
            return 1
    return 0
