"""trtexec: the command line equivalent to our TensorRT build, and parsers of its outputs.

Checked against trtexec's own option parser and reporting (TensorRT 10.x / 11.x sources):

* Our ONNX files have fixed shapes, and trtexec refuses ``--minShapes/--optShapes/--maxShapes``
  for a static model ("Static model does not take explicit shapes ..."): shapes are passed only
  for a dynamic-shape model (``shapes=``), then min = opt = max.
* 10.x: ``--fp16`` enables FP16 kernels of a weakly typed network. An explicit Q/DQ model (int8,
  fp8, int4) is built ``--stronglyTyped`` and then takes no precision flag (a strongly typed
  network ignores/refuses ``--fp16/--fp8``). ``--int8`` without Q/DQ would time with dummy scales,
  fp8/int4 without Q/DQ do not exist: refused. CUDA graphs are off by default (``--useCudaGraph``),
  data transfers on by default (``--noDataTransfers``), ``--separateProfileRun`` keeps profiling
  out of the timing.
* 11.x: networks are always strongly typed; the precision is in the ONNX (AutoCast FP16, Q/DQ).
  CUDA graphs are on by default (``--noCudaGraph`` turns them off; ``--useCudaGraph`` is a no-op),
  data transfers are off by default (``--includeDataTransfers``), ``--separateProfileRun`` is a
  deprecated no-op and is not passed.

Parsers read ``--exportTimes`` JSON (per-inference timestamps; ``latencyMs = h2dMs + computeMs +
d2hMs``), ``--exportProfile`` JSON (per-layer times) and the text "Performance summary"
(Throughput, Latency = host latency incl. copies, GPU Compute Time = device time only).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from effinrx.engines.base import summarize_ms
from effinrx.errors import ConfigError, ShapeError

PRECISIONS = ("fp32", "fp16", "fp8", "int8", "int4")


def shape_arg(shapes: dict[str, tuple]) -> str:
    """``name:1x1584x14x4,...`` as trtexec expects."""
    if not shapes:
        raise ConfigError("trtexec needs the input shapes of a dynamic-shape model")
    return ",".join(f"{k}:{'x'.join(str(int(d)) for d in v)}" for k, v in shapes.items())


def major_version(version: str) -> int:
    m = re.match(r"(\d+)\.", str(version))
    if not m:
        raise ConfigError(f"cannot read a TensorRT version from {version!r}")
    return int(m.group(1))


def precision_flags(precision: str, trt_version: str, *, explicit_qdq: bool,
                    autocast_fp16: bool = False) -> list[str]:
    """The precision part of a trtexec command (shared with the Python builder's plan).

    ``explicit_qdq``: the ONNX carries Q/DQ nodes (ModelOpt); ``autocast_fp16``: the ONNX was
    converted to FP16 by ModelOpt AutoCast (what 11.x needs for fp16)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} not one of {PRECISIONS}")
    major = major_version(trt_version)
    if major not in (10, 11):
        raise ConfigError(f"TensorRT {trt_version}: only 10.x and 11.x are supported")
    quantized = precision in ("int8", "fp8", "int4")
    if quantized and not explicit_qdq:
        why = ("--int8 without Q/DQ times with dummy scales" if precision == "int8" and major == 10
               else f"TensorRT {major}.x has no {precision} without Q/DQ nodes")
        raise ConfigError(f"{precision}: {why}; quantize the ONNX first (effinrx.export.modelopt)")
    if major == 10:
        if explicit_qdq or autocast_fp16:
            return ["--stronglyTyped"]  # strongly typed: the ONNX's types decide, no precision flag
        return ["--fp16"] if precision == "fp16" else []
    if precision == "fp16" and not (autocast_fp16 or explicit_qdq):  # a typed ONNX carries its casts
        raise ConfigError("TensorRT 11.x has no --fp16: convert the ONNX with ModelOpt AutoCast "
                          "(effinrx.export.modelopt.autocast_fp16) and pass autocast_fp16=True")
    return []


def command(onnx: str | Path, engine: str | Path, precision: str, trt_version: str, *,
            explicit_qdq: bool = False, autocast_fp16: bool = False, shapes: dict | None = None,
            sparsity: bool = False, times_json: str | Path | None = None,
            profile_json: str | Path | None = None, iterations: int | None = None,
            warmup_ms: int | None = None, cuda_graph: bool = True,
            data_transfers: bool = True) -> list[str]:
    """The trtexec argv for building and timing ``onnx`` on TensorRT ``trt_version``.

    ``shapes`` only for a dynamic-shape ONNX (ours are static: trtexec refuses shapes for those).
    ``data_transfers``: time H2D/D2H copies beside the compute (10.x default; 11.x needs the flag)."""
    argv = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}"]
    argv += precision_flags(precision, trt_version, explicit_qdq=explicit_qdq, autocast_fp16=autocast_fp16)
    major = major_version(trt_version)
    if shapes:
        s = shape_arg(shapes)
        argv += [f"--minShapes={s}", f"--optShapes={s}", f"--maxShapes={s}"]
    if sparsity:
        argv.append("--sparsity=enable")
    if major == 10:
        argv += ["--useCudaGraph"] if cuda_graph else []
        argv += [] if data_transfers else ["--noDataTransfers"]
    else:
        argv += [] if cuda_graph else ["--noCudaGraph"]
        argv += ["--includeDataTransfers"] if data_transfers else []
    if iterations:
        argv.append(f"--iterations={int(iterations)}")
    if warmup_ms:
        argv.append(f"--warmUp={int(warmup_ms)}")
    if times_json:
        argv.append(f"--exportTimes={times_json}")
    if profile_json:
        argv.append(f"--exportProfile={profile_json}")
        if major == 10:
            argv.append("--separateProfileRun")  # 11.x: deprecated no-op
    return argv


_STAT = re.compile(r"(min|max|mean|median|percentile\((\d+(?:\.\d+)?)%\))\s*=\s*([0-9.eE+-]+)\s*ms")


def _stats(text: str) -> dict:
    out = {}
    for m in _STAT.finditer(text):
        key = f"p{m.group(2).rstrip('0').rstrip('.') if '.' in m.group(2) else m.group(2)}" if m.group(2) else m.group(1)
        out[f"{key}_ms"] = float(m.group(3))
    return out


def parse_summary(text: str) -> dict:
    """Parse trtexec's text "Performance summary".

    Returns ``{"throughput_qps", "host_latency": {...}, "gpu_compute": {...}, "h2d": {...},
    "d2h": {...}, "enqueue": {...}}`` (dicts of min/max/mean/median/pNN in ms). Raises ShapeError if
    the summary is absent (e.g. the build failed).
    """
    if "Performance summary" not in text:
        raise ShapeError("trtexec output has no '=== Performance summary ===' section")
    body = text.split("Performance summary", 1)[1]
    out: dict = {}
    m = re.search(r"Throughput:\s*([0-9.eE+-]+)\s*qps", body)
    if m:
        out["throughput_qps"] = float(m.group(1))
    names = {"Latency": "host_latency", "GPU Compute Time": "gpu_compute", "H2D Latency": "h2d",
             "D2H Latency": "d2h", "Enqueue Time": "enqueue"}
    for line in body.splitlines():
        for label, key in names.items():
            if re.search(rf"\]\s*{re.escape(label)}:|^\s*{re.escape(label)}:", line) and key not in out:
                out[key] = _stats(line)
    if "gpu_compute" not in out:
        raise ShapeError("trtexec summary lacks 'GPU Compute Time'")
    return out


#: fields trtexec's ``--exportTimes`` writes per inference (sampleReporting's JSON trace)
TIMES_FIELDS = ("startEnqMs", "endEnqMs", "startH2dMs", "endH2dMs", "startComputeMs", "endComputeMs",
                "startD2hMs", "endD2hMs", "h2dMs", "computeMs", "d2hMs", "latencyMs")


def parse_times(path_or_text) -> dict:
    """Parse ``--exportTimes`` JSON: per inference ``computeMs`` (GPU), ``h2dMs``, ``d2hMs`` and
    ``latencyMs`` (trtexec defines it as h2d + compute + d2h; checked per record).

    Returns ``{"gpu_compute", "host_latency", "h2d", "d2h"}`` (:func:`summarize_ms` each) and
    ``transfers_included``: False when every copy reads 0, as 11.x writes without
    ``--includeDataTransfers`` (its "latency" is then the compute time alone)."""
    data = _json(path_or_text)
    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        raise ShapeError("exportTimes JSON must be a non-empty list of per-inference records")
    missing = sorted({k for r in data for k in ("h2dMs", "computeMs", "d2hMs", "latencyMs") if k not in r})
    if missing:
        raise ShapeError(f"exportTimes records lack {missing} (trtexec writes {', '.join(TIMES_FIELDS)})")
    unknown = sorted({k for r in data for k in r} - set(TIMES_FIELDS))
    if unknown:
        raise ShapeError(f"exportTimes records carry fields trtexec does not write: {unknown}")

    for i, r in enumerate(data):
        total = float(r["h2dMs"]) + float(r["computeMs"]) + float(r["d2hMs"])
        if abs(total - float(r["latencyMs"])) > 1e-3 + 1e-3 * total:
            raise ShapeError(f"exportTimes record {i}: latencyMs {r['latencyMs']} != h2dMs + computeMs + "
                             f"d2hMs = {total:.6g}")
    out = {"gpu_compute": summarize_ms(r["computeMs"] for r in data),
           "host_latency": summarize_ms(r["latencyMs"] for r in data),
           "h2d": summarize_ms(r["h2dMs"] for r in data), "d2h": summarize_ms(r["d2hMs"] for r in data)}
    out["transfers_included"] = any(float(r["h2dMs"]) > 0 or float(r["d2hMs"]) > 0 for r in data)
    return out


def parse_profile(path_or_text) -> dict:
    """Parse ``--exportProfile`` JSON: ``{"count", "layers": [{"name", "average_ms", "percentage"}]}``
    sorted by time share."""
    data = _json(path_or_text)
    if not isinstance(data, list) or not data or "count" not in data[0]:
        raise ShapeError("exportProfile JSON must be a list starting with {'count': N}")
    layers = [{"name": r["name"], "average_ms": float(r.get("averageMs", 0.0)),
               "median_ms": float(r.get("medianMs", r.get("averageMs", 0.0))),
               "percentage": float(r.get("percentage", 0.0))} for r in data[1:] if "name" in r]
    return {"count": int(data[0]["count"]), "layers": sorted(layers, key=lambda r: -r["percentage"])}


def _json(path_or_text):
    if isinstance(path_or_text, (dict, list)):
        return path_or_text
    s = str(path_or_text)
    text = Path(s).read_text(encoding="utf-8") if not s.lstrip().startswith(("[", "{")) else s
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ShapeError(f"trtexec JSON {s[:80]!r} is corrupt: {e}") from None
