"""``effinrx sensitivity``: which NRX layers dominate the quantization loss.

Quantizes one core layer (Dense kernel, or a SeparableConv2D's depthwise + pointwise pair;
``--unit kernel`` for single kernels) at a time with a weight-only PTQ method (or, with
``w8a8-int8`` / ``w8a8-fp8``, its weights and input activations), keeps the rest fp32,
and measures the LLR SQNR vs the fp32 model and the TB errors at one Eb/N0 on a fixed set of UMi
slots (see :mod:`effinrx.quant.sensitivity`). Writes ``sensitivity.txt|json|png`` into ``--out``.
"""
from __future__ import annotations

from pathlib import Path

from effinrx.errors import ConfigError
from effinrx.io import check_writable
from effinrx.quant.ptq import METHODS
from effinrx.quant.sensitivity import ACT_METHODS, nrx_sweep, table_text, write_outputs
from effinrx.receivers.nrx_layers import CONFIGS, NRX_MODELS


def add_arguments(p) -> None:
    # no argparse choices: a bad name ends in effinrx's own one-line ConfigError (exit 1)
    p.add_argument("--model", default="nrx-rt", help=f"model to sweep: {' | '.join(NRX_MODELS)}")
    p.add_argument("--method", default="int4",
                   help=f"weight-only PTQ method ({', '.join(METHODS)}) or weights + input activations "
                        f"of the layer ({', '.join(ACT_METHODS)})")
    p.add_argument("--weights", default="auto",
                   help="auto (reference if present, else packaged) | reference | packaged | PATH")
    p.add_argument("--ebno", type=float, default=3.0, help="Eb/N0 of the evaluation slots (dB)")
    p.add_argument("--slots", type=int, default=64, help="evaluation slots (2 UEs each -> 2x TBs)")
    p.add_argument("--batch", type=int, default=32, help="slots per batch")
    p.add_argument("--prbs", type=int, default=4, help="PRBs of the evaluation slots")
    p.add_argument("--seed", type=int, default=42, help="slot seed (default: 42, the benchmarks' seed)")
    p.add_argument("--unit", choices=("layer", "kernel"), default="layer",
                   help="quantize a whole layer (depthwise+pointwise together) or one kernel at a time")
    p.add_argument("--rank-by", choices=("sqnr", "tb"), default="sqnr",
                   help="sort by LLR SQNR (deterministic) or by TB errors")
    p.add_argument("--no-tb", action="store_true", help="LLR SQNR only, skip TB decoding")
    p.add_argument("--out", type=Path, required=True, help="output folder")


def run(args) -> int:
    if args.model not in CONFIGS:
        raise ConfigError(f"--model {args.model!r} not one of {', '.join(CONFIGS)}")
    if args.method not in METHODS and args.method not in ACT_METHODS:
        raise ConfigError(f"--method {args.method!r} not one of {', '.join([*METHODS, *ACT_METHODS])}")
    if args.rank_by == "tb" and args.no_tb:
        raise ConfigError("--rank-by tb needs TB errors (drop --no-tb)")

    check_writable(args.out, "--out", kind="dir")
    for name in ("sensitivity.txt", "sensitivity.json", "sensitivity.png"):
        check_writable(Path(args.out) / name, "--out")
    res = nrx_sweep(args.model, args.method, weights=args.weights, ebno_db=args.ebno, slots=args.slots,
                    batch=args.batch, seed=args.seed, num_prbs=args.prbs, tb=not args.no_tb,
                    unit=args.unit, rank_by=args.rank_by, progress=lambda s: print(s, flush=True))
    paths = write_outputs(res, args.out)
    print(table_text(res))
    print(f"{res.meta['seconds_total']} s; wrote {', '.join(str(p) for p in paths.values())}")
    return 0
