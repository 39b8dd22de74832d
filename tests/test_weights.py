"""Safe reference-weight import and our own .npz format."""
import io
import os
import pickle
import pickletools

import numpy as np
import pytest

from effinrx import weights as W
from effinrx.errors import WeightsError

REF = W.reference_dir()
needs_ref = pytest.mark.skipif(REF is None, reason="reference NRX weights ../shared/reference/neural_rx absent "
                                                   "(set EFFINRX_NRX_WEIGHTS)")


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class _EvilOpen:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("cls", [_Evil, _EvilOpen])
def test_malicious_pickle_runs_no_code(tmp_path, cls):
    target = tmp_path / "pwned"
    f = tmp_path / "evil.pkl"
    f.write_bytes(pickle.dumps([np.zeros(3, np.float32), cls(target)]))
    with pytest.raises(WeightsError) as e:
        W.load_reference_pickle(f)
    msg = str(e.value)
    assert "refusing to unpickle global" in msg and str(f) in msg
    assert ("system" in msg) or ("open" in msg)
    assert not target.exists()
    # control: the same pickle really would run code with a plain unpickler
    if cls is _Evil:
        pickle.loads(f.read_bytes())
        assert target.exists()


def test_plain_arrays_roundtrip(tmp_path):
    arrs = [np.random.randn(3, 3, 18, 1).astype(np.float32), np.arange(5, dtype=np.float32)]
    f = tmp_path / "w.pkl"
    f.write_bytes(pickle.dumps(arrs))
    got = W.load_reference_pickle(f)
    assert len(got) == 2 and all(np.array_equal(a, b) for a, b in zip(arrs, got))


def test_numpy2_style_pickle_accepted(tmp_path):
    """numpy 2 writes 'numpy._core.multiarray'; rewrite the module name in a numpy-1 pickle."""
    arrs = [np.linspace(0, 1, 7, dtype=np.float32).reshape(7, 1)]
    raw = pickle.dumps(arrs, protocol=3)
    assert b"numpy.core.multiarray" in raw
    # protocol 3 GLOBAL opcodes are newline-terminated text, so the rename keeps the pickle valid
    raw2 = raw.replace(b"numpy.core.multiarray", b"numpy._core.multiarray")
    pickletools.dis(raw2, out=io.StringIO())  # still a well-formed pickle
    f = tmp_path / "np2.pkl"
    f.write_bytes(raw2)
    got = W.load_reference_pickle(f)
    assert np.array_equal(got[0], arrs[0])


def test_truncated_and_corrupt_name_the_file(tmp_path):
    raw = pickle.dumps([np.ones((4, 4), np.float32)])
    f = tmp_path / "trunc.pkl"
    f.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(WeightsError, match="trunc.pkl"):
        W.load_reference_pickle(f)
    g = tmp_path / "junk.pkl"
    g.write_bytes(b"\x00not a pickle at all")
    with pytest.raises(WeightsError, match="junk.pkl"):
        W.load_reference_pickle(g)
    with pytest.raises(WeightsError, match="missing.pkl"):
        W.load_reference_pickle(tmp_path / "missing.pkl")


def test_not_a_list_of_arrays(tmp_path):
    f = tmp_path / "d.pkl"
    f.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(WeightsError, match="list of numpy arrays"):
        W.load_reference_pickle(f)


def test_npz_roundtrip_with_sidecar(tmp_path):
    arrs = [np.random.randn(2, 3).astype(np.float32) for _ in range(12)]
    p = W.save_npz(tmp_path / "ck", arrs, {"config": {"name": "nrx-rt"}, "seed": 3})
    assert p.suffix == ".npz" and p.with_suffix(".json").is_file()
    got, meta = W.load_npz(p)
    assert all(np.array_equal(a, b) for a, b in zip(arrs, got))  # order kept past w009 -> w010
    assert meta["seed"] == 3 and meta["num_arrays"] == 12 and "git_hash" in meta
    with pytest.raises(WeightsError, match="nothere.npz"):
        W.load_npz(tmp_path / "nothere.npz")


def test_env_var_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv(W.ENV_VAR, str(tmp_path))
    assert W.reference_dir() == tmp_path
    with pytest.raises(WeightsError, match="nrx_rt_weights"):
        W.reference_weights_path("nrx-rt")
    with pytest.raises(WeightsError, match="unknown-model"):
        W.reference_weights_path("unknown-model")


def test_shape_mismatch_names_index_and_shapes():
    from effinrx.receivers.nrx_layers import NRX_RT, build_cgnn

    net = build_cgnn(NRX_RT)
    ws = net.get_core_weights()
    ws[4] = np.zeros((1, 1, 128, 127), np.float32)
    with pytest.raises(WeightsError) as e:
        net.set_core_weights(ws, source="bad")
    msg = str(e.value)
    assert "array 4" in msg and "(1, 1, 128, 127)" in msg and "(1, 1, 128, 128)" in msg
    with pytest.raises(WeightsError, match="42 arrays.*expects 43"):
        net.set_core_weights(ws[:-1], source="short")


@needs_ref
@pytest.mark.parametrize("model,n", [("nrx-rt", 43), ("nrx-large", 121)])
def test_reference_weights_load_into_both_configs(model, n):
    from effinrx.receivers.nrx import load_model

    ref = W.load_reference_weights(model)
    assert len(ref) == n and ref[0].shape == (3, 3, 18, 1) and all(a.dtype == np.float32 for a in ref)
    net = load_model(model, "reference")
    got = net.get_weights()  # Keras order equals the reference order
    assert len(got) == n and all(np.array_equal(a, b) for a, b in zip(ref, got))


@needs_ref
def test_rt_weights_do_not_fit_large():
    from effinrx.receivers.nrx import load_model

    with pytest.raises(WeightsError, match="43 arrays"):
        load_model("nrx-large", W.load_reference_weights("nrx-rt"))


def test_auto_weights_without_reference_or_package(tmp_path, monkeypatch):
    from effinrx.receivers import nrx

    monkeypatch.setenv(W.ENV_VAR, str(tmp_path / "absent"))
    with pytest.raises(WeightsError, match="is not a folder"):
        nrx.resolve_weights("nrx-rt", "auto")
    monkeypatch.delenv(W.ENV_VAR)
    monkeypatch.setattr(W, "reference_dir", lambda: None)
    monkeypatch.setattr(nrx, "packaged_weights_path", lambda m: tmp_path / f"{m}.npz")
    with pytest.raises(WeightsError, match="no weights for 'nrx-rt'"):
        nrx.resolve_weights("nrx-rt", "auto")
    arrs = [np.zeros((2,), np.float32)]
    W.save_npz(tmp_path / "nrx-rt", arrs, {"seed": 0})
    got, desc = nrx.resolve_weights("nrx-rt", "auto")
    assert desc.startswith("packaged") and np.array_equal(got[0], arrs[0])
    assert nrx.resolve_weights("nrx-rt", None) == (None, "random-init")


def _rt_sidecar_pair(tmp_path, name="ck"):
    from effinrx.receivers.nrx_layers import NRX_RT

    arrs = [np.ones((2, 3), np.float32) for _ in range(3)]
    p = W.save_npz(tmp_path / name, arrs, {"config": NRX_RT.to_dict()})
    return p, arrs


def test_sidecar_must_be_an_object_and_match_the_arrays(tmp_path):
    import json

    p, arrs = _rt_sidecar_pair(tmp_path)
    side = p.with_suffix(".json")
    good = json.loads(side.read_text())
    side.write_text("[1, 2, 3]")
    with pytest.raises(WeightsError, match=r"ck.json: expected a JSON object, got a JSON list"):
        W.load_npz(p)
    side.write_text(json.dumps({**good, "num_arrays": 4}))
    with pytest.raises(WeightsError, match=r"ck.json: num_arrays 4 but the weight file holds 3"):
        W.load_npz(p)
    side.write_text(json.dumps({**good, "shapes": [[2, 3], [3, 2], [2, 3]]}))
    with pytest.raises(WeightsError, match=r"shapes\[1\] is \[3, 2\] but array 1 has shape \[2, 3\]"):
        W.load_npz(p)
    side.write_text(json.dumps({**good, "config": {**good["config"], "num_it": 5}}))
    with pytest.raises(WeightsError, match=r"ck.json: key 'config' does not match model 'nrx-rt' .*: num_it 5, the model has 2"):
        W.load_npz(p)
    side.write_text(json.dumps({**good, "config": ["nrx-rt"]}))
    with pytest.raises(WeightsError, match="'config' must be a JSON object"):
        W.load_npz(p)
    side.write_text(json.dumps(good))
    assert len(W.load_npz(p)[0]) == 3  # the intact sidecar still loads


def test_nan_weights_refused_at_load_naming_file_and_layer(tmp_path):
    from effinrx.receivers.nrx import load_model
    from effinrx.receivers.nrx_layers import NRX_RT, build_cgnn

    ws = build_cgnn(NRX_RT).get_core_weights()
    ws[7] = np.full_like(ws[7], np.nan)
    p = W.save_npz(tmp_path / "nan", ws, {"config": NRX_RT.to_dict()})
    with pytest.raises(WeightsError) as e:
        W.load_npz(p)
    assert "nan.npz" in str(e.value) and "array 7 (w007" in str(e.value) and "NaN/Inf" in str(e.value)
    with pytest.raises(WeightsError) as e:
        load_model("nrx-rt", str(p))  # the model's loader names the layer variable
    msg = str(e.value)
    assert "nan.npz" in msg and "array 7 (" in msg and "w007" not in msg and "kernel" in msg, msg
    from effinrx.link.config import Scenario
    from effinrx.receivers.registry import make

    with pytest.raises(WeightsError) as e:
        make(str(p), Scenario(num_prbs=4))  # simulate --receiver nan.npz names it like export
    assert "nan.npz" in str(e.value) and "array 7 (" in str(e.value) and "kernel" in str(e.value), str(e.value)
    ws[7][...] = 0
    ws[2][0] = np.inf
    with pytest.raises(WeightsError, match=r"weights arrays: array 2 \(.*\) holds NaN/Inf \(1 of"):
        load_model("nrx-rt", ws)  # arrays given directly
    pk = tmp_path / "nan.pkl"
    pk.write_bytes(pickle.dumps(ws))
    with pytest.raises(WeightsError, match=r"nan.pkl: array 2"):
        W.load_reference_pickle(pk)


def test_packaged_fallback_is_announced_and_described(tmp_path, monkeypatch, capsys):
    from effinrx.receivers import nrx

    monkeypatch.delenv(W.ENV_VAR, raising=False)
    monkeypatch.setattr(W, "reference_dir", lambda: None)
    monkeypatch.setattr(nrx, "_ANNOUNCED", set())
    pkg = nrx.packaged_weights_path("nrx-rt")
    if not pkg.is_file():
        pytest.skip(f"no packaged checkpoint {pkg}")
    rx = nrx.NRXReceiver("nrx-rt", "auto", num_prbs=1)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning: reference NRX weights not found" in err[0], err
    assert "packaged checkpoint" in err[0] and str(pkg) in err[0] and "undertrained" in err[0]
    d = rx.describe()
    assert d["weights_source"] == "packaged" and "undertrained" in d["weights_note"]
    nrx.resolve_weights("nrx-rt", "auto")  # once per process and model
    assert capsys.readouterr().err == ""
    rnd = nrx.NRXReceiver("nrx-rt", None, num_prbs=1).describe()
    assert rnd["weights_source"] == "random-init" and "weights_note" not in rnd
    assert nrx.weights_kind("reference") == "reference" and nrx.weights_kind("/x/rt.npz") == "file"
    assert nrx.weights_kind("w8a8:rt.npz") == "w8a8"
