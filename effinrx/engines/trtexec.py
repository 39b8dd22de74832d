"""trtexec: the command line equivalent to our TensorRT build, and parsers of its outputs.

TensorRT 10.x: ``--fp16/--int8/--fp8`` enable precisions; explicit Q/DQ models need
``--stronglyTyped`` (the blog's workaround in 10.2). TensorRT 11.x removed the precision flags:
networks are always strongly typed, FP16 comes from an AutoCast ONNX and quantization from Q/DQ.
Shapes are fixed: min = opt = max.

Parsers read ``--exportTimes`` JSON (per-inference timestamps), ``--exportProfile`` JSON (per-layer
times) and the text "Performance summary" (Throughput, Latency = host latency incl. copies,
GPU Compute Time = device time only).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from effinrx.errors import ConfigError, ShapeError

PRECISIONS = ("fp32", "fp16", "fp8", "int8", "int4")


def shape_arg(shapes: dict[str, tuple]) -> str:
    """``name:1x1584x14x4,...`` as trtexec expects."""
    if not shapes:
        raise ConfigError("trtexec needs the input shapes (fixed per PRB count)")
    return ",".join(f"{k}:{'x'.join(str(int(d)) for d in v)}" for k, v in shapes.items())


def major_version(version: str) -> int:
    m = re.match(r"(\d+)\.", str(version))
    if not m:
        raise ConfigError(f"cannot read a TensorRT version from {version!r}")
    return int(m.group(1))


def command(onnx: str | Path, engine: str | Path, shapes: dict[str, tuple], precision: str,
            trt_version: str, *, explicit_qdq: bool = False, sparsity: bool = False,
            times_json: str | Path | None = None, profile_json: str | Path | None = None,
            iterations: int | None = None, warmup_ms: int | None = None,
            cuda_graph: bool = True) -> list[str]:
    """The trtexec argv for building and timing ``onnx`` at fixed ``shapes`` on TensorRT ``trt_version``."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r} not one of {PRECISIONS}")
    major = major_version(trt_version)
    if major not in (10, 11):
        raise ConfigError(f"TensorRT {trt_version}: only 10.x and 11.x are supported")
    s = shape_arg(shapes)
    argv = ["trtexec", f"--onnx={onnx}", f"--saveEngine={engine}",
            f"--minShapes={s}", f"--optShapes={s}", f"--maxShapes={s}"]
    if major == 10:
        if precision in ("fp16", "fp8", "int8"):
            argv.append(f"--{precision}")
        if explicit_qdq or precision in ("fp8", "int4"):
            argv.append("--stronglyTyped")
    # 11.x: always strongly typed; precision is carried by the ONNX (AutoCast FP16 / Q/DQ nodes)
    if sparsity:
        argv.append("--sparsity=enable")
    if cuda_graph:
        argv.append("--useCudaGraph")
    if iterations:
        argv.append(f"--iterations={int(iterations)}")
    if warmup_ms:
        argv.append(f"--warmUp={int(warmup_ms)}")
    if times_json:
        argv.append(f"--exportTimes={times_json}")
    if profile_json:
        argv += [f"--exportProfile={profile_json}", "--separateProfileRun"]
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


def parse_times(path_or_text) -> dict:
    """Parse ``--exportTimes`` JSON: per-inference ``latencyMs`` (host) and ``computeMs`` (GPU)."""
    data = _json(path_or_text)
    if not isinstance(data, list) or not data or "computeMs" not in data[0]:
        raise ShapeError("exportTimes JSON must be a non-empty list of records with 'computeMs'")
    from effinrx.engines.base import summarize_ms

    out = {"gpu_compute": summarize_ms(r["computeMs"] for r in data)}
    if "latencyMs" in data[0]:
        out["host_latency"] = summarize_ms(r["latencyMs"] for r in data)
    for k in ("h2dMs", "d2hMs"):
        if k in data[0]:
            out[k[:-2]] = summarize_ms(r[k] for r in data)
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
