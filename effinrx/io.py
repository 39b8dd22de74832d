"""Atomic file writes: a reader never sees a half-written file, and a crash never truncates one."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from effinrx.errors import ConfigError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would (0666 minus umask),
        # or an existing file's mode, so reports and goldens stay readable by others
        os.fchmod(fd, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_npz(path: str | os.PathLike, arrays: dict) -> Path:
    """Write ``arrays`` (name -> array) as an uncompressed ``.npz`` to ``path``, atomically."""
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n")


def _jsonable(o: Any) -> Any:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if np is not None:
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def check_writable(path: str | os.PathLike, what: str, kind: str = "file") -> Path:
    """Check, before any work starts, that ``path`` can be written as a ``kind`` ("file" or "dir").

    ``what`` names the option in the message (e.g. ``"--out"``). Raises :class:`ConfigError`, one
    line naming the path and the problem, when: a file is expected and ``path`` is an existing
    folder (or a folder is expected and it is an existing file); a parent of ``path`` is a file; the
    nearest existing folder cannot be written (permissions, read-only file system: probed by creating
    and deleting a temporary file there, so it holds for root and for ACLs as well). Creates nothing
    that stays. Returns ``path`` as a :class:`Path`."""
    if kind not in ("file", "dir"):
        raise ValueError(f"check_writable kind must be 'file' or 'dir', got {kind!r}")
    p = Path(path).expanduser()
    if str(path) == "":
        raise ConfigError(f"{what}: empty path")
    if p.exists():
        if kind == "file" and p.is_dir():
            raise ConfigError(f"{what} {p}: is a folder, expected a file path")
        if kind == "dir" and not p.is_dir():
            raise ConfigError(f"{what} {p}: is a file, expected a folder")
        if kind == "file" and not os.access(p, os.W_OK):
            raise ConfigError(f"{what} {p}: file exists and is not writable")
    # nearest existing ancestor: it must be a folder we can create files in
    probe = p if (kind == "dir" and p.is_dir()) else p.parent
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    probe_abs = probe.resolve() if probe.exists() else probe
    if probe.exists() and not probe.is_dir():
        raise ConfigError(f"{what} {p}: {probe} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".effinrx-write-check.", dir=probe_abs)
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise ConfigError(f"{what} {p}: cannot write in {probe_abs} ({why})") from None
    os.close(fd)
    try:
        os.unlink(tmp)
    except OSError:  # pragma: no cover - a file we just created
        pass
    return p


def oserror_line(e: OSError) -> str:
    """One line for an OSError that names the path(s): ``<path>: <reason>``."""
    why = e.strerror or str(e) or type(e).__name__
    paths = [str(f) for f in (e.filename, getattr(e, "filename2", None)) if f is not None]
    return f"{' -> '.join(paths)}: {why}" if paths else f"{type(e).__name__}: {why}"
