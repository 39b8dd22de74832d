"""``effinrx latency``: latency/throughput table per model x precision x engine on this device."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from effinrx.engines import tensorrt as trt_engine
from effinrx.engines.ort_selfcheck import integer_gemm_defect
from effinrx.errors import ConfigError, NotAvailableError
from effinrx.latency import measure
from effinrx.latency.build import ORT_PRECISIONS, TRT_PRECISIONS
from effinrx.latency.table import format_table
from effinrx.receivers.nrx_layers import NRX_MODELS


def add_arguments(p) -> None:
    p.add_argument("--model", default="nrx-rt", help="choices: nrx-rt, nrx-large (comma-separated for both)")
    p.add_argument("--precision", default="fp32,int8", help="comma-separated. ORT CPU: fp32, int8 (ModelOpt "
                   "Q/DQ as is), int8-fused (Q/DQ rewritten for ORT's integer kernels), int4. TensorRT: fp32, "
                   "fp16, fp8, int8 (Q/DQ), fp16-2:4 (2:4-pruned weights, sparse kernels)")
    p.add_argument("--engine", choices=("ort", "tensorrt"), default="ort",
                   help="ort (CPU, timed beside a speed probe) or tensorrt (GPU, CUDA events + graphs)")
    p.add_argument("--prbs", type=int, default=4, help="4 (laptop) or 132 (paper)")
    p.add_argument("--runs", type=int, default=50, help="timed runs per variant")
    p.add_argument("--threads", type=int, default=None, help="ORT intra-op threads (default: all cores)")
    p.add_argument("--workdir", type=Path, default=None, help="where ONNX files are cached (default: $TMPDIR/effinrx-onnx)")


def run(args) -> int:
    models = [m.strip() for m in args.model.split(",") if m.strip()]
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    for m in models:
        if m not in NRX_MODELS:
            raise ConfigError(f"--model {m!r}: expected nrx-rt or nrx-large")
    if args.runs < 1:
        raise ConfigError(f"--runs must be >= 1, got {args.runs}")
    if args.engine == "tensorrt":
        bad = [p for p in precisions if p not in TRT_PRECISIONS]
        if bad:
            raise ConfigError(f"--precision {bad}: TensorRT runs {', '.join(TRT_PRECISIONS)}")
        why = trt_engine.tensorrt_reason()  # via the module: tests stand in for it
        if why:  # one line from the CLI: no CUDA device (or no TensorRT), nothing exported
            raise NotAvailableError(f"--engine tensorrt: {why}")
        hw = {p: measure.trt_unsupported(p) for p in precisions}
        if any(hw.values()):  # before any export or build: this GPU lacks the tensor cores
            raise NotAvailableError("; ".join(f"--precision {p}: {w}" for p, w in hw.items() if w))
    else:
        bad = [p for p in precisions if p not in ORT_PRECISIONS or p == "fp8"]
        if bad:
            raise ConfigError(f"--precision {bad}: ONNX Runtime CPU runs fp32, int8, int8-fused, int4 "
                              "(fp16/fp8 need --engine tensorrt)")
        if any(p.startswith("int8") for p in precisions):
            defect = integer_gemm_defect()
            if defect:  # the timings stand; the int8 outputs on this host do not
                print(f"warning: {defect}", file=sys.stderr)
    work = args.workdir or Path(tempfile.gettempdir()) / "effinrx-onnx"
    rows = measure.latency_table(args.engine, models, precisions, args.prbs, work, args.runs, threads=args.threads)
    print(format_table(rows))
    print("raw Mbps = fps x 12*PRBs*14 REs x 4 bits x 2 UEs (blog definition); info Mbps = fps x TB bits")
    if args.engine == "ort":
        print("ORT CPU: each run timed in turn with a fixed speed probe (effinrx.engines.base.time_interleaved)")
    else:
        print("TensorRT: CUDA events around CUDA-graph replays, inputs already on the device")
    return 0
