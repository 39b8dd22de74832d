"""Weight files: safe import of the reference NRX weights and our own ``.npz`` + JSON format.

The reference weights (NVlabs neural_rx) are Python pickles of a list of float32 numpy arrays in
Keras ``get_weights()`` order. A plain ``pickle.load`` would run any code the file names, so
:func:`load_reference_pickle` uses an unpickler whose ``find_class`` admits only the few numpy
globals an ndarray needs and refuses everything else with :class:`WeightsError`.

Our own format is ``<name>.npz`` (arrays ``w000``, ``w001``... in ``get_weights()`` order) plus
``<name>.json`` (config, training recipe, git hash, seed), both written atomically.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
from pathlib import Path
from typing import Any, Sequence

from effinrx.errors import WeightsError
from effinrx.io import atomic_write_json, atomic_write_npz
from effinrx.receivers.nrx_layers import CONFIGS

#: the only globals a pickled list of numpy arrays needs (numpy 1 and numpy 2 module names)
ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
})

ENV_VAR = "EFFINRX_NRX_WEIGHTS"
REFERENCE_FILES = {"nrx-rt": "nrx_rt_weights", "nrx-large": "nrx_large_weights"}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only :data:`ALLOWED_GLOBALS`; anything else is refused."""

    def find_class(self, module: str, name: str):  # pickle API
        if (module, name) not in ALLOWED_GLOBALS:
            raise WeightsError(
                f"refusing to unpickle global '{module}.{name}': a weight file may only reference "
                f"numpy array classes")
        # numpy 2 pickles name numpy._core; numpy 1 only has numpy.core (and vice versa)
        import numpy as np

        if name == "ndarray":
            return np.ndarray
        if name == "dtype":
            return np.dtype
        try:
            from numpy.core import multiarray as ma
        except ImportError:  # pragma: no cover - numpy 2 without the alias
            from numpy._core import multiarray as ma
        return getattr(ma, name)


def load_reference_pickle(path: str | os.PathLike, names: Sequence[str] | None = None) -> list:
    """Load a pickled list of numpy arrays without executing code.

    Returns a list of float32 ``np.ndarray``. Raises :class:`WeightsError` naming the file when it
    is missing, truncated/corrupt, references a non-numpy global, is not a list of arrays, or holds
    NaN/Inf (``names``: the model's variable names, for the message).
    """
    import numpy as np

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise WeightsError(f"cannot read weight file {path}: {e.strerror or e}") from None
    try:
        obj = _NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except WeightsError as e:
        raise WeightsError(f"{path}: {e}") from None
    except Exception as e:  # truncated or corrupt pickles raise many different types
        raise WeightsError(f"weight file {path} is corrupt or truncated: "
                           f"{type(e).__name__}: {e}") from None
    if not isinstance(obj, (list, tuple)) or not all(isinstance(a, np.ndarray) for a in obj):
        raise WeightsError(f"weight file {path} does not hold a list of numpy arrays "
                           f"(got {type(obj).__name__})")
    out = [np.asarray(a, dtype=np.float32) for a in obj]
    check_finite(out, f"weight file {path}", names)
    return out


def check_finite(weights: Sequence, source: str, names: Sequence[str] | None = None) -> None:
    """WeightsError naming ``source`` and the first array (layer variable name when ``names`` is
    given, else its index) that holds NaN or Inf: such a network runs and returns garbage LLRs."""
    import numpy as np

    for i, w in enumerate(weights):
        a = np.asarray(w)
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            bad = int(a.size - np.count_nonzero(np.isfinite(a)))
            name = names[i] if names is not None and i < len(names) else f"w{i:03d}"
            raise WeightsError(f"{source}: array {i} ({name}, shape {tuple(a.shape)}) holds NaN/Inf "
                               f"({bad} of {a.size} values); refusing to load it")


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def reference_dir() -> Path | None:
    """Folder of the reference NRX weights, or None if absent.

    Order: ``$EFFINRX_NRX_WEIGHTS``; ``../shared/reference/neural_rx`` relative to the repository
    root; the same relative to the current directory and its parent.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    rel = Path("..") / "shared" / "reference" / "neural_rx"
    for base in (_repo_root(), Path.cwd(), Path.cwd().parent):
        p = (base / rel).resolve()
        if p.is_dir():
            return p
    return None


def reference_weights_path(model: str) -> Path:
    """Path of the reference weight file of ``model`` ("nrx-rt"/"nrx-large"); WeightsError if absent."""
    if model not in REFERENCE_FILES:
        raise WeightsError(f"no reference weights for model '{model}' "
                           f"(known: {', '.join(REFERENCE_FILES)})")
    d = reference_dir()
    if d is None:
        raise WeightsError(f"reference NRX weights not found: set ${ENV_VAR} or provide "
                           f"../shared/reference/neural_rx next to the repository")
    p = d / REFERENCE_FILES[model]
    if not p.is_file():
        raise WeightsError(f"reference weight file {p} does not exist")
    return p


def load_reference_weights(model: str, names: Sequence[str] | None = None) -> list:
    """Reference ``get_weights()`` list of ``model`` ("nrx-rt" or "nrx-large")."""
    return load_reference_pickle(reference_weights_path(model), names)


def git_hash() -> str:
    """Current git commit of the repository, or "unknown"."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_repo_root(), capture_output=True,
                             text=True, timeout=5, check=False)
        return out.stdout.strip() or "unknown"
    except Exception:  # pragma: no cover - git missing
        return "unknown"


def arrays_sha1(arrays: Sequence):
    """A ``hashlib`` SHA-1 updated with the float32 bytes of ``arrays`` in order (shapes are not
    hashed: callers key on a model whose shapes are fixed); callers may add more and cut the hex."""
    import hashlib

    import numpy as np

    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(a, np.float32).tobytes())
    return h


def save_npz(path: str | os.PathLike, weights: Sequence, meta: dict[str, Any]) -> Path:
    """Write ``weights`` to ``<path>.npz`` and ``meta`` (+ git hash, shapes) to ``<path>.json``.

    ``path`` may be given with or without the ``.npz`` suffix. Returns the ``.npz`` path.
    """
    import numpy as np

    p = Path(path)
    if p.suffix == ".npz":
        p = p.with_suffix("")
    # by name, not with_suffix: "rt.v2" must become "rt.v2.npz", not "rt.npz"
    npz = atomic_write_npz(p.with_name(p.name + ".npz"),
                           {f"w{i:03d}": np.asarray(w, np.float32) for i, w in enumerate(weights)})
    side = dict(meta)
    side.setdefault("git_hash", git_hash())
    side["num_arrays"] = len(weights)
    side["shapes"] = [list(np.shape(w)) for w in weights]
    atomic_write_json(p.with_name(p.name + ".json"), side)
    return npz


def load_npz(path: str | os.PathLike, names: Sequence[str] | None = None) -> tuple[list, dict]:
    """Read weights and sidecar written by :func:`save_npz`. Returns ``(weights, meta)``.

    WeightsError naming the file when: the ``.npz`` is missing/corrupt; an array holds NaN/Inf
    (``names``: the model's variable names, for the message); the sidecar is not a JSON object, or
    disagrees with the arrays (see :func:`validate_sidecar`)."""
    import numpy as np

    p = Path(path)
    if p.suffix == ".npz":
        p = p.with_suffix("")
    npz, side = p.with_name(p.name + ".npz"), p.with_name(p.name + ".json")
    try:
        with np.load(npz, allow_pickle=False) as z:
            keys = sorted(z.files)
            weights = [np.asarray(z[k], np.float32) for k in keys]
    except FileNotFoundError:
        raise WeightsError(f"weight file {npz} does not exist") from None
    except Exception as e:
        raise WeightsError(f"weight file {npz} is corrupt: {type(e).__name__}: {e}") from None
    meta: dict = {}
    if side.is_file():
        try:
            meta = json.loads(side.read_text())
        except (OSError, UnicodeDecodeError) as e:
            raise WeightsError(f"sidecar {side} cannot be read: {e}") from None
        except json.JSONDecodeError as e:
            raise WeightsError(f"sidecar {side} is not valid JSON: {e}") from None
        validate_sidecar(meta, weights, side)
    check_finite(weights, f"weight file {npz}", names)
    return weights, meta


#: sidecar config fields that define an NRX's architecture (``extra`` is free-form)
_ARCH_FIELDS = ("num_it", "d_s", "num_units_init", "num_units_agg", "num_units_state",
                "num_units_readout", "num_bits_per_symbol", "num_rx_ant")


def validate_sidecar(meta: Any, weights: Sequence, side: str | os.PathLike) -> None:
    """Check a sidecar against the arrays it describes; WeightsError naming ``side`` and the key.

    The sidecar must be a JSON object; ``num_arrays`` and ``shapes`` (written by :func:`save_npz`)
    must match the arrays; a ``config`` of a named NRX (``config.name`` nrx-rt / nrx-large) must
    have that model's architecture (effinrx builds the model from its name, so a sidecar saying
    ``num_it: 5`` for nrx-rt weights would otherwise be ignored silently)."""
    import numpy as np

    if not isinstance(meta, dict):
        raise WeightsError(f"sidecar {side}: expected a JSON object, got a JSON {_json_type(meta)}")
    n = meta.get("num_arrays")
    if n is not None and n != len(weights):
        raise WeightsError(f"sidecar {side}: num_arrays {n!r} but the weight file holds {len(weights)} arrays")
    shapes = meta.get("shapes")
    if shapes is not None:
        if not isinstance(shapes, list) or len(shapes) != len(weights):
            raise WeightsError(f"sidecar {side}: 'shapes' lists {len(shapes) if isinstance(shapes, list) else shapes!r} "
                               f"entries for {len(weights)} arrays")
        for i, (s, w) in enumerate(zip(shapes, weights)):
            if not isinstance(s, list) or tuple(s) != tuple(np.shape(w)):
                raise WeightsError(f"sidecar {side}: shapes[{i}] is {s!r} but array {i} has shape "
                                   f"{list(np.shape(w))}")
    cfg = meta.get("config")
    if cfg is None:
        return
    if not isinstance(cfg, dict):
        raise WeightsError(f"sidecar {side}: 'config' must be a JSON object, got a JSON {_json_type(cfg)}")

    name = cfg.get("name")
    if name not in CONFIGS:
        return  # another model family (DeepRx) or a free-form config
    want = CONFIGS[name].to_dict()
    for k in _ARCH_FIELDS:
        if k in cfg and cfg[k] != want[k]:
            raise WeightsError(f"sidecar {side}: key 'config' does not match model '{name}' (which these "
                               f"{len(weights)} arrays are loaded as): {k} {cfg[k]!r}, the model has {want[k]!r}")


def _json_type(v: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number" if isinstance(v, (int, float)) else type(v).__name__)


def load_any(path: str | os.PathLike, names: Sequence[str] | None = None) -> list:
    """Weights from an ``.npz`` (ours) or a reference pickle, chosen by suffix."""
    p = Path(path)
    if p.suffix == ".npz" or p.with_name(p.name + ".npz").is_file():
        return load_npz(p, names)[0]
    return load_reference_pickle(p, names)
