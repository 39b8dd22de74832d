"""Where a result came from: package versions, git commit, seed, command line, configuration hash.

``provenance(seed=..., config=..., command=...)`` -> dict, written beside every simulated count
(``effinrx simulate --json``) and every golden entry, so a number can be reproduced and a mismatch
of seed or configuration is visible instead of silent.
"""
from __future__ import annotations

import hashlib
import json
import shlex
import sys

PACKAGES = ("effinrx", "tensorflow", "tf-keras", "sionna-no-rt", "numpy", "onnx", "onnxruntime", "tf2onnx",
            "nvidia-modelopt", "tensorflow-model-optimization")


def versions(packages=PACKAGES) -> dict:
    """Installed versions of ``packages`` (absent ones omitted) and the Python version."""
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for p in packages:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            continue
    return out


def config_hash(config) -> str:
    """Short stable hash of a JSON-able configuration."""
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def command_line(argv=None) -> str:
    """The command as typed (``effinrx`` plus its arguments), shell-quoted."""
    argv = list(sys.argv if argv is None else argv)
    head = "effinrx" if argv and argv[0].endswith(("effinrx", "__main__.py", "cli.py")) else argv[0] if argv else ""
    return " ".join([head] + [shlex.quote(a) for a in argv[1:]])


def provenance(*, seed=None, config=None, command: str | None = None) -> dict:
    from effinrx.weights import git_hash

    out = {"versions": versions(), "git_commit": git_hash(), "command": command or command_line()}
    if seed is not None:
        out["seed"] = int(seed)
    if config is not None:
        out["config_hash"] = config_hash(config)
    return out
