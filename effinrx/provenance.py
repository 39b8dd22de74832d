"""Where a result came from: package versions, git commit (and whether the tree was dirty), seed,
command line, configuration hash.

Written beside every simulated count (``effinrx simulate --json``) and every golden entry
(:func:`effinrx.claims.golden.provenance`), so a number can be reproduced and a mismatch of seed or
configuration is visible instead of silent. Versions and the commit are read once per process.
"""
from __future__ import annotations

import hashlib
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from effinrx.weights import git_hash

#: packages whose versions can change a measured number (absent ones are omitted)
PACKAGES = ("effinrx", "numpy", "scipy", "tensorflow", "tf-keras", "tensorflow-model-optimization",
            "sionna-no-rt", "sionna", "onnx", "onnxruntime", "tf2onnx", "nvidia-modelopt", "tensorrt")

_STATIC: dict = {}


def config_hash(config: Any) -> str:
    """Short stable hash (SHA-1, 12 hex) of a JSON-able configuration (key order does not matter)."""
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def static() -> dict:
    """``versions`` (Python + :data:`PACKAGES`), ``git_commit``, ``git_dirty``; a fresh copy."""
    if not _STATIC:
        from importlib import metadata

        vers = {"python": sys.version.split()[0]}
        for name in PACKAGES:
            try:
                vers[name] = metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        _STATIC.update({"versions": vers, "git_commit": git_hash(), "git_dirty": _git_dirty()})
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in _STATIC.items()}


def _git_dirty() -> bool | None:
    """True when tracked files differ from the commit (the commit alone does not reproduce it)."""
    import subprocess

    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                             cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True,
                             timeout=10, check=False)
    except Exception:  # pragma: no cover - git missing
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def command_line(argv=None) -> str:
    """The command as typed (``effinrx`` plus its arguments), shell-quoted."""
    argv = list(sys.argv if argv is None else argv)
    if not argv:
        return ""
    head = "effinrx" if argv[0].endswith(("effinrx", "__main__.py", "cli.py")) else argv[0]
    return " ".join([head] + [shlex.quote(a) for a in argv[1:]])


def provenance(*, seed=None, config=None, command: str | None = None) -> dict:
    """:func:`static` plus ``command`` (default: this process's command line), ``seed`` and
    ``config_hash`` when given."""
    out = {**static(), "command": command or command_line()}
    if seed is not None:
        out["seed"] = int(seed)
    if config is not None:
        out["config_hash"] = config_hash(config)
    return out
