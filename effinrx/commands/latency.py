"""``effinrx latency``: latency/throughput table per model x precision x engine on this device."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from effinrx.errors import ConfigError
from effinrx.receivers.nrx_layers import NRX_MODELS

HELP = "latency/throughput table per model x precision x engine (ORT CPU, TensorRT)"


def add_arguments(p) -> None:
    p.add_argument("--model", default="nrx-rt", help="nrx-rt or nrx-large (comma-separated for both)")
    p.add_argument("--precision", default="fp32,int8", help="comma-separated: fp32, int8 (ModelOpt Q/DQ as is), "
                   "int8-fused (Q/DQ rewritten for ORT's integer kernels), int4 (ORT); fp16, fp8 need TensorRT")
    p.add_argument("--engine", choices=("ort", "tensorrt"), default="ort")
    p.add_argument("--prbs", type=int, default=4, help="4 (laptop) or 132 (paper)")
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--workdir", type=Path, default=None, help="where ONNX files are cached")


def run(args) -> int:
    from effinrx import device
    from effinrx import latency as L

    models = [m.strip() for m in args.model.split(",") if m.strip()]
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    for m in models:
        if m not in NRX_MODELS:
            raise ConfigError(f"--model {m!r}: expected nrx-rt or nrx-large")
    if args.engine == "tensorrt":
        from effinrx.engines.tensorrt import import_cudart, import_tensorrt

        import_tensorrt()  # NotAvailableError -> one clear line from the CLI
        import_cudart()
        raise ConfigError("TensorRT latency runs through the paper tier: pytest --tier paper tests/gpu")
    from effinrx.engines.ort import OrtEngine

    bad = [p for p in precisions if p not in L.ORT_PRECISIONS or p == "fp8"]
    if bad:
        raise ConfigError(f"--precision {bad}: ONNX Runtime CPU runs fp32, int8, int8-fused, int4 "
                          "(fp16/fp8 need --engine tensorrt)")

    if any(p.startswith("int8") for p in precisions):
        from effinrx.engines.ort_selfcheck import integer_gemm_defect

        defect = integer_gemm_defect()
        if defect:  # the timings stand; the int8 outputs on this host do not
            print(f"warning: {defect}", file=sys.stderr)
    work = args.workdir or Path(tempfile.gettempdir()) / "effinrx-onnx"
    rows = []
    for m in models:
        for p in precisions:
            path = L.ort_model_path(m, p, args.prbs, work)
            eng = OrtEngine(path, threads=args.threads)
            stats = eng.time(n=args.runs, warmup=5)
            rows.append(L.make_row(m, p, "ort-cpu", device.fingerprint(), args.prbs, stats,
                                   L.info_bits_per_slot(args.prbs)))
    L.add_speedups(rows, "fp32")
    print(L.format_table(rows))
    print("raw Mbps = fps x 12*PRBs*14 REs x 4 bits x 2 UEs (blog definition); info Mbps = fps x TB bits")
    return 0
