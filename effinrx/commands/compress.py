"""``effinrx compress``: save a compressed NRX as an artifact (``.npz`` + JSON sidecar with its recipe).

Methods:

* ``ptq:<method>`` -- weight-only PTQ (``effinrx.quant.ptq`` methods: fp16, fp8, int8-pc, int4-pc, ...);
* ``qat:<bits>`` -- quantization-aware fine-tune (``effinrx.quant.qat``: STE + learnable per-channel
  LSQ scales, warm-started from ``--weights``, ``--steps`` x ``--batch-size`` on training slots); the
  baked kernels (integer code x learned scale) and the scales are saved, and reload checks the grid;
* ``w8a8:<fmt>`` -- weights + activations fake-quant (int8 | fp8), activation scales calibrated on
  training-channel slots (``UMiSlotSource``) with ``--calib max|percentile``; the scales are saved;
* ``pruned`` / ``distilled`` -- wrap an existing ``effinrx prune`` / ``effinrx train`` checkpoint
  given as ``--weights PATH.npz`` (the recipe is taken from its sidecar; pruned sparsity is verified).

The artifact is reloaded after writing and checked (weights, scales). It loads with
:func:`effinrx.compress.load_artifact` and exports with ``effinrx export --weights OUT.npz``.
"""
from __future__ import annotations

from pathlib import Path

from effinrx import compress as C
from effinrx.errors import ConfigError
from effinrx.io import check_writable
from effinrx.quant.ptq import METHODS
from effinrx.quant.qat import BITS
from effinrx.receivers.nrx import load_model


EPILOG = """\
examples:
  effinrx compress --model nrx-rt --weights reference --method ptq:int8-pc --out rt-int8
  effinrx compress --model nrx-rt --method w8a8:int8 --calib percentile --out rt-w8a8
  effinrx compress --model nrx-rt --method w8a8:int8 --keep-float cgnn_it0/upd0 --out rt-w8a8-mixed
  effinrx compress --model nrx-rt --method qat:4 --steps 600 --out rt-qat4   # ~14 min on 2 cores
  effinrx compress --method pruned --weights rt24.npz --out rt24-artifact
  effinrx export --weights rt-int8.npz --prbs 4          # ONNX of the artifact, parity checked
"""


def add_arguments(p) -> None:
    import argparse

    if not issubclass(p.formatter_class, argparse.RawDescriptionHelpFormatter):
        p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("--model", choices=("nrx-rt", "nrx-large"), default=None,
                   help="model (default nrx-rt; pruned/distilled: taken from the checkpoint)")
    p.add_argument("--weights", default="reference",
                   help="uncompressed weights: reference | packaged | PATH (.npz or pickle)")

    p.add_argument("--method", required=True,
                   help=f"ptq:<{'|'.join(METHODS)}> | w8a8:<int8|fp8> | qat:<2..8 bits> | "
                        "pruned | distilled")
    p.add_argument("--keep-depthwise", action="store_true", help="ptq: leave depthwise kernels float")
    p.add_argument("--keep-first-last", action="store_true", help="ptq: leave first/last kernels float")
    p.add_argument("--calib", choices=("max", "percentile"), default="max", help="w8a8: calibration")
    p.add_argument("--percentile", type=float, default=99.99, help="w8a8: percentile of |x|")
    p.add_argument("--calib-slots", type=int, default=16, help="w8a8: calibration slots per Eb/N0")
    p.add_argument("--calib-ebno", default="-2,2,7", help="w8a8: comma-separated Eb/N0 (dB) of the slots")
    p.add_argument("--prbs", type=int, default=4, help="w8a8: PRBs of the calibration slots")
    p.add_argument("--keep-float", default="",
                   help="w8a8: comma-separated core layers left fp32 (weights and input), e.g. cgnn_it0/upd0 "
                        "(find them with effinrx sensitivity --method w8a8-int8; default: none)")
    p.add_argument("--seed", type=int, default=0, help="w8a8: TF seed of the calibration slots; qat: training seed")
    p.add_argument("--steps", type=int, default=200, help="qat: fine-tuning steps")
    p.add_argument("--batch-size", type=int, default=16, help="qat: slots per step")
    p.add_argument("--lr", type=float, default=1e-4, help="qat: Adam learning rate")
    p.add_argument("--out", type=Path, required=True, help="output path (with or without .npz)")


def _parse_method(s: str) -> tuple[str, str]:
    kind, _, arg = s.partition(":")
    if kind in ("ptq", "w8a8", "qat") and arg:
        return kind, arg
    if kind in ("pruned", "distilled") and not arg:
        return kind, ""
    raise ConfigError(f"--method {s!r}: expected ptq:<method>, w8a8:<fmt>, qat:<bits>, pruned or distilled")


def run(args) -> int:
    import numpy as np

    kind, arg = _parse_method(args.method)
    base = Path(args.out).with_suffix("") if Path(args.out).suffix == ".npz" else Path(args.out)
    for sfx in (".npz", ".json"):  # the artifact is written after minutes of calibration / QAT
        check_writable(base.with_name(base.name + sfx), "--out")
    if args.keep_float and kind != "w8a8":
        raise ConfigError(f"--keep-float applies to w8a8 only, not --method {args.method}")
    if kind == "ptq":
        net, rec = C.compress_ptq(args.model or "nrx-rt", args.weights, arg,
                                  args.keep_depthwise, args.keep_first_last)
        ws = net.get_core_weights()
    elif kind == "qat":
        if not arg.isdigit() or int(arg) not in BITS:
            raise ConfigError(f"--method qat:{arg}: bits must be one of {', '.join(map(str, BITS))}")
        if args.steps < 1 or args.batch_size < 1 or not args.lr > 0:
            raise ConfigError(f"--steps, --batch-size must be >= 1 and --lr > 0 (got {args.steps}, "
                              f"{args.batch_size}, {args.lr})")
        net, rec = C.compress_qat(args.model or "nrx-rt", args.weights, int(arg), steps=args.steps,
                                  batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                                  progress=True)
        ws = net.get_core_weights()
    elif kind == "w8a8":
        if args.calib_slots < 1 or args.prbs < 1:
            raise ConfigError(f"--calib-slots and --prbs must be >= 1 (got {args.calib_slots}, {args.prbs})")
        try:
            ebno = [float(e) for e in args.calib_ebno.split(",") if e.strip()]
        except ValueError:
            raise ConfigError(f"--calib-ebno {args.calib_ebno!r}: expected comma-separated numbers") from None
        if not ebno:
            raise ConfigError("--calib-ebno is empty")
        if args.calib == "percentile" and not 0 < args.percentile <= 100:
            raise ConfigError(f"--percentile must be in (0, 100], got {args.percentile}")
        net, rec = C.compress_w8a8(args.model or "nrx-rt", args.weights, arg, calib=args.calib,
                                   percentile=args.percentile, slots=args.calib_slots, ebno_db=ebno,
                                   num_prbs=args.prbs, seed=args.seed,
                                   keep_float=[n.strip() for n in args.keep_float.split(",") if n.strip()])
        ws = net.get_core_weights()
    else:
        if args.weights in ("reference", "packaged", "auto"):
            raise ConfigError(f"--method {kind} wraps a checkpoint: give --weights PATH.npz")
        ws, rec = C.recipe_of_checkpoint(args.weights, kind)
        if args.model is not None and args.model != rec.model:
            raise ConfigError(f"--model {args.model}: checkpoint {args.weights} is '{rec.model}'")

        net = load_model(rec.model, ws)
    out = C.save_artifact(args.out, net, rec)
    # read back what was written: same arrays, same scales
    net2, rec2, _ = C.load_artifact(out)
    same = all(np.array_equal(a, b) for a, b in zip(ws, net2.get_core_weights()))
    if not same or rec2.to_dict() != rec.to_dict():
        print(f"VERIFY FAILED: {out} does not reload to the same weights/recipe")
        return 1
    extra = ""
    if rec.kind == "w8a8":
        sc = rec.params["scales"]
        extra = f", {len(sc)} activation scales ({min(sc):.3g}..{max(sc):.3g}, {rec.params['calib']['method']})"
    print(f"{rec.model} {C.describe(rec)}: saved {out} (+ .json), {len(ws)} arrays{extra}; reload verified")
    return 0
