"""Describe the machine a measurement ran on, so latency goldens are keyed per device.

``fingerprint()`` never imports TensorFlow; it asks ``nvidia-smi`` for a GPU, else reads the CPU model.
"""
from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import subprocess

from effinrx.engines.gpu_runtime import cuda_device_reason, import_tensorrt


@functools.lru_cache(maxsize=1)
def gpu_info() -> dict | None:
    """Return ``{"name", "driver", "memory"}`` of GPU 0 from nvidia-smi, or None without a GPU."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    if not out:
        return None
    name, driver, mem = (p.strip() for p in out[0].split(","))
    return {"name": name, "driver": driver, "memory": mem}


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    """Fields of the first processor block of /proc/cpuinfo ({} where there is no such file)."""
    out: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    if out:
                        break
                    continue
                k, _, v = line.partition(":")
                out.setdefault(k.strip(), v.strip())
    except OSError:
        pass
    return out


def cpu_model() -> str:
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


# int8/fp32 kernels of ONNX Runtime (MLAS) dispatch on these, best first: the same CPU model name on a
# host without VNNI runs int8 at a different speed relative to fp32, so the ISA is part of the key.
_ISA_TIERS = (("amx_int8", "amx"), ("avx512_vnni", "avx512vnni"), ("avx_vnni", "avxvnni"),
              ("avx512bw", "avx512"), ("avx2", "avx2"), ("sse4_2", "sse4"))


def isa_tier(flags) -> str:
    """The best tier in ``flags`` (cpuinfo flag names); ``base`` when none of them is there."""
    have = set(flags)
    return next((tag for flag, tag in _ISA_TIERS if flag in have), "base")


def cpu_isa() -> str:
    """The best SIMD tier of this CPU for int8/fp32 kernels (``avx512vnni``, ``avx2``...), or the
    machine name where /proc/cpuinfo lists no x86 flags (non-Linux, Arm)."""
    flags = _cpuinfo().get("flags")
    return isa_tier(flags.split()) if flags else slug(platform.machine() or "unknown")


def cpu_generation() -> str:
    """``f<family>m<model>`` from /proc/cpuinfo (x86), '' elsewhere. Clouds mask the model name
    ("AMD EPYC" for Zen 2, 3 and 4 alike); family/model tell the generations apart."""
    info = _cpuinfo()
    fam, mod = info.get("cpu family"), info.get("model")
    return f"f{slug(fam)}m{slug(mod)}" if fam and mod else ""


def tensorrt_version() -> str | None:
    """``tensorrt.__version__`` (the distribution may be ``tensorrt``, ``tensorrt-cu12`` or the bare
    ``tensorrt-cu12-bindings``, so the package metadata name is not a reliable key), None without it."""
    try:
        return str(import_tensorrt().__version__)
    except Exception:  # NotAvailableError, or a broken install
        return None


def cuda_device() -> str | None:
    """None when a CUDA device is usable (``cudaGetDeviceCount() >= 1``), else the reason."""
    return cuda_device_reason()


def info() -> dict:
    """Machine facts for golden metadata and pytest-benchmark's machine_info."""
    gpu = gpu_info()
    return {
        "kind": "gpu" if gpu else "cpu",
        "gpu": gpu,
        "cpu": cpu_model(),
        "cpu_isa": cpu_isa(),
        "cpu_generation": cpu_generation(),
        "cpu_count": os.cpu_count(),
        "tensorrt": tensorrt_version(),
        "cuda_device": cuda_device() or "present",
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "fingerprint": fingerprint(),
    }


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "unknown"


@functools.lru_cache(maxsize=1)
def fingerprint() -> str:
    """A file-name-safe device key: ``gpu-<name>`` or ``cpu-<model>-f<family>m<model>-<isa>-<n>c``
    (override: EFFINRX_DEVICE), e.g. ``cpu-amd-epyc-f25m1-avx2-2c`` (Zen 3, AVX2)."""
    override = os.environ.get("EFFINRX_DEVICE")
    if override:
        return slug(override)
    gpu = gpu_info()
    if gpu:
        return "gpu-" + slug(gpu["name"])
    parts = [slug(cpu_model()), cpu_generation(), cpu_isa(), f"{os.cpu_count()}c"]
    return "cpu-" + "-".join(p for p in parts if p)
