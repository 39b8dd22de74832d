"""Compressed-model artifacts (effinrx.compress): save -> load gives the same receiver (weights, W8A8
scales, LLRs), bad sidecars fail with named errors, the CLI writes one, and it exports to ONNX.

Weights: "auto" (the reference weights when present, else the packaged checkpoint, always shipped).
The W8A8 model is calibrated once per module on 2 training-channel slots at 4 dB (small on purpose).
"""
import json

import numpy as np
import pytest

from effinrx import compress as C
from effinrx.cli import main
from effinrx.errors import ConfigError, WeightsError
from effinrx.export import onnx as E

PRBS = 4


@pytest.fixture(scope="module")
def inputs(cgnn_inputs):
    return cgnn_inputs


@pytest.fixture(scope="module")
def ptq_art(tmp_path_factory):
    net, rec = C.compress_ptq("nrx-rt", "auto", "int8-pc", keep_first_last=True)
    path = C.save_artifact(tmp_path_factory.mktemp("ptq") / "rt-int8", net, rec)
    return net, rec, path


@pytest.fixture(scope="module")
def w8a8_art(tmp_path_factory):
    net, rec = C.compress_w8a8("nrx-rt", "auto", "int8", slots=2, ebno_db=(4.0,), num_prbs=PRBS)
    path = C.save_artifact(tmp_path_factory.mktemp("w8a8") / "rt-w8a8.npz", net, rec)
    return net, rec, path


def _llr(net, inputs):
    return net(inputs)[0].numpy()


def test_ptq_roundtrip_same_weights_and_llrs(ptq_art, inputs):
    from effinrx.receivers.nrx import cached_model

    net, rec, path = ptq_art
    net2, rec2, meta = C.load_artifact(path)
    assert rec2.to_dict() == rec.to_dict()
    assert meta["compression"]["kind"] == "ptq" and meta["compression"]["params"]["method"] == "int8-pc"
    assert meta["compression"]["params"]["keep_first_last"] is True
    assert meta["git_hash"] and meta["config"]["name"] == "nrx-rt"
    a, b = net.get_core_weights(), net2.get_core_weights()
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert np.array_equal(_llr(net, inputs), _llr(net2, inputs))
    # the artifact holds the quantized kernels, not the float ones
    f = cached_model("nrx-rt", "auto").get_core_weights()
    assert sum(not np.array_equal(x, y) for x, y in zip(f, b)) > 10


def test_w8a8_roundtrip_same_scales_and_llrs_without_recalibration(w8a8_art, inputs):
    from effinrx.quant.w8a8 import set_mode

    net, rec, path = w8a8_art
    net2, rec2, meta = C.load_artifact(path, model="nrx-rt")
    sc = meta["compression"]["params"]["scales"]
    assert len(sc) == len(net.core_layers) == len(net2.act_quantizers)
    assert [w.scale for w in net2.act_quantizers] == sc == [w.scale for w in net.act_quantizers]
    assert all(w.mode == "quant" and not w.samples for w in net2.act_quantizers)  # no recalibration
    assert meta["compression"]["params"]["calib"]["method"] == "max"
    assert all(np.array_equal(x, y) for x, y in zip(net.get_core_weights(), net2.get_core_weights()))
    q = _llr(net2, inputs)
    assert np.array_equal(_llr(net, inputs), q)
    set_mode(net2.act_quantizers, "float")  # the scales do act: float activations differ
    try:
        assert not np.allclose(_llr(net2, inputs), q, rtol=1e-3, atol=1e-3)
    finally:
        set_mode(net2.act_quantizers, "quant")


def _copy(path, tmp_path, edit=None, name="a"):
    """Copy artifact ``path`` to ``tmp_path/name``, applying ``edit(sidecar dict)``."""
    npz = tmp_path / f"{name}.npz"
    npz.write_bytes(path.read_bytes())
    meta = json.loads(path.with_suffix(".json").read_text())
    if edit is not None:
        edit(meta)
    npz.with_suffix(".json").write_text(json.dumps(meta))
    return npz


def _set(keys, value):
    def edit(meta):
        d = meta
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit


def test_w8a8_keep_float_roundtrip(tmp_path, inputs):
    net, rec = C.compress_w8a8("nrx-rt", "auto", "int8", slots=2, ebno_db=(4.0,), num_prbs=PRBS,
                               keep_float=["cgnn_it0/upd0"])
    assert rec.params["keep_float"] == ["cgnn_it0/upd0"] and C.describe(rec) == "w8a8-int8-keep1"
    path = C.save_artifact(tmp_path / "mixed", net, rec)
    net2, rec2, _ = C.load_artifact(path)
    assert [w.keep_float for w in net2.act_quantizers] == [w.keep_float for w in net.act_quantizers]
    np.testing.assert_array_equal(_llr(net2, inputs), _llr(net, inputs))


@pytest.mark.parametrize("edit,err,match", [
    (_set(["compression", "kind"], "lowrank"), ConfigError, "unknown compression kind 'lowrank'"),
    (lambda m: m["compression"]["params"]["scales"].pop(), WeightsError, "16 activation scales"),
    (_set(["compression", "params", "scales", 3], -1.0), WeightsError, r"scales\[3\]"),
    (_set(["compression", "params", "fmt"], "int3"), ConfigError, "w8a8 fmt 'int3'"),
    (_set(["compression", "model"], "nrx-large"), WeightsError, "config' does not match model 'nrx-large'"),
    (_set(["config", "num_it"], 3), WeightsError, "config' does not match"),
    (lambda m: m.pop("compression"), WeightsError, "no 'compression' block"),
])
def test_bad_sidecar_named_errors(w8a8_art, tmp_path, edit, err, match):
    with pytest.raises(err, match=match):
        C.load_artifact(_copy(w8a8_art[2], tmp_path, edit))


def test_missing_corrupt_and_mismatched_files(ptq_art, tmp_path):
    path = ptq_art[2]
    with pytest.raises(WeightsError, match="does not exist"):
        C.load_artifact(tmp_path / "nothing.npz")
    bare = tmp_path / "bare.npz"
    bare.write_bytes(path.read_bytes())
    with pytest.raises(WeightsError, match="no sidecar"):
        C.load_artifact(bare)
    bad = _copy(path, tmp_path, name="bad")
    bad.with_suffix(".json").write_text("{not json")
    with pytest.raises(WeightsError, match="not valid JSON"):
        C.load_artifact(bad)
    with pytest.raises(WeightsError, match="not 'nrx-large'"):
        C.load_artifact(path, model="nrx-large")
    trunc = _copy(path, tmp_path, name="trunc")
    trunc.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="corrupt"):
        C.load_artifact(trunc)


def test_pruned_checkpoint_is_wrapped_and_sparsity_checked(tmp_path, capsys):
    """A checkpoint as ``effinrx prune`` writes it (prune_recipe + sparsity) becomes an artifact via
    the CLI; a sidecar whose sparsity does not fit the weights is refused."""
    from effinrx import weights as W
    from effinrx.prune.recipe import PruneRecipe
    from effinrx.receivers.nrx import cached_model

    ws = [w.copy() for w in cached_model("nrx-rt", "auto").get_core_weights()]
    for w in ws:
        if w.ndim == 2:
            w[::2] = 0.0
    total = sum(w.size for w in ws)
    overall = sum(w.size - np.count_nonzero(w) for w in ws) / total
    meta = {"config": cached_model("nrx-rt", "auto").cfg.to_dict(), "format": "effinrx-nrx-v1",
            "prune_recipe": PruneRecipe(steps=4).to_dict(), "sparsity": {"overall": overall}}
    W.save_npz(tmp_path / "p", ws, meta)
    assert main(["compress", "--method", "pruned", "--weights", str(tmp_path / "p.npz"),
                 "--out", str(tmp_path / "art")]) == 0
    assert "pruned-magnitude-unstructured" in capsys.readouterr().out
    net, rec, _ = C.load_artifact(tmp_path / "art.npz")
    assert rec.kind == "pruned" and rec.params["sparsity_overall"] == pytest.approx(overall)
    assert all(np.array_equal(a, b) for a, b in zip(ws, net.get_core_weights()))
    meta["sparsity"]["overall"] = overall / 2
    W.save_npz(tmp_path / "q", ws, meta)
    assert main(["compress", "--method", "pruned", "--weights", str(tmp_path / "q.npz"),
                 "--out", str(tmp_path / "art2")]) == 1
    assert "does not match the sidecar" in capsys.readouterr().err
    assert not (tmp_path / "art2.npz").exists()


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["compress", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "w8a8:<int8|fp8>" in out and "--calib" in out and "examples:" in out
    assert "effinrx export --weights" in out


@pytest.mark.parametrize("argv,match", [
    (["--method", "ptq", "--weights", "auto"], "--method 'ptq'"),
    (["--method", "ptq:int3", "--weights", "auto"], "ptq method 'int3'"),
    (["--method", "w8a8:int8", "--weights", "auto", "--calib-ebno", "a,b"], "--calib-ebno"),
    (["--method", "pruned"], "--weights PATH.npz"),
    (["--method", "qat:9", "--weights", "auto"], "bits must be one of"),
    (["--method", "ptq:int8-pc", "--weights", "auto", "--keep-float", "cgnn_it0/upd0"], "w8a8 only"),
    (["--method", "qat:4", "--weights", "auto", "--steps", "0"], "--steps"),
])
def test_cli_bad_input_one_line(tmp_path, capsys, argv, match):
    assert main(["compress", *argv, "--out", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("effinrx compress: error:") and match in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_cli_ptq_then_export_carries_recipe(tmp_path, capsys, ptq_art):
    import onnx

    assert main(["compress", "--weights", "auto", "--method", "ptq:int8-pc", "--keep-first-last",
                 "--out", str(tmp_path / "rt")]) == 0
    assert "reload verified" in capsys.readouterr().out
    # same recipe and weights as the library path
    ws, rec, _ = C.read_recipe(tmp_path / "rt.npz")
    assert rec.params == ptq_art[1].params
    assert all(np.array_equal(a, b) for a, b in zip(ws, ptq_art[0].get_core_weights()))
    onnx_path = tmp_path / "rt.onnx"
    assert main(["export", "--weights", str(tmp_path / "rt.npz"), "--prbs", "1", "--out", str(onnx_path)]) == 0
    assert "parity ORT vs TF" in capsys.readouterr().out
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(props["effinrx.compression"]) == rec.to_dict()
    assert props["effinrx.model"] == "nrx-rt"
    assert main(["export", "--model", "nrx-large", "--weights", str(tmp_path / "rt.npz"),
                 "--out", str(tmp_path / "l.onnx")]) == 1
    assert "not 'nrx-large'" in capsys.readouterr().err


def test_ptq_artifact_onnx_parity(ptq_art, tmp_path):
    """The ONNX of a PTQ artifact equals the reloaded TF model (1e-4) and is not the float model."""
    from effinrx.receivers.nrx import cached_model

    net, _, path = C.load_artifact(ptq_art[2])
    onnx_path = E.export_nrx_onnx("nrx-rt", net, PRBS, tmp_path / "ptq.onnx")
    rng = np.random.default_rng(2)
    inp = {k: rng.normal(size=s).astype(np.float32) for k, s in E.io_shapes(PRBS).items() if k != "llr"}
    r = E.parity(net, onnx_path, inp, PRBS)
    assert r["max_rel"] <= 1e-4 and r["l2_rel"] <= 1e-4, r
    rf = E.parity(cached_model("nrx-rt", "auto"), onnx_path, inp, PRBS)
    assert rf["l2_rel"] > 1e-3, rf


def test_w8a8_artifact_onnx_parity_on_slots(w8a8_art, tmp_path):
    """The fake-quant ONNX of a W8A8 artifact follows the TF W8A8 model on simulated slots and is
    much farther from the same model with float activations (RT measured: L2 ~0.02 vs ~0.35)."""
    from effinrx.commands.export import W8A8_PARITY_RATIO, w8a8_parity

    net, _, _ = C.load_artifact(w8a8_art[2])
    onnx_path = E.export_nrx_onnx("nrx-rt", net, PRBS, tmp_path / "w8a8.onnx")
    r, rf = w8a8_parity(net, onnx_path, PRBS, n=3)
    assert all(w.mode == "quant" for w in net.act_quantizers)
    assert r["l2_rel"] <= 0.05 and r["sign_agree"] >= 0.99, r
    assert r["l2_rel"] <= 0.25 * rf["l2_rel"] and 0.25 < W8A8_PARITY_RATIO, (r, rf)


def test_distilled_checkpoint_keeps_training_and_distill_settings(tmp_path, capsys):
    from effinrx import weights as W
    from effinrx.receivers.nrx import cached_model

    net = cached_model("nrx-rt", "auto")
    W.save_npz(tmp_path / "ckpt", net.get_core_weights(),
               {"config": net.cfg.to_dict(), "recipe": {"steps": 3, "seed": 0}, "step": 3})
    assert main(["compress", "--method", "distilled", "--weights", str(tmp_path / "ckpt.npz"),
                 "--out", str(tmp_path / "art")]) == 1
    assert "distill.json" in capsys.readouterr().err
    (tmp_path / "distill.json").write_text(json.dumps({"teacher": "nrx-large", "alpha": 0.5}))
    assert main(["compress", "--method", "distilled", "--weights", str(tmp_path / "ckpt.npz"),
                 "--out", str(tmp_path / "art")]) == 0
    _, rec, meta = C.read_recipe(tmp_path / "art.npz")
    assert rec.kind == "distilled" and rec.params["distill"]["teacher"] == "nrx-large"
    assert rec.params["train_recipe"] == {"steps": 3, "seed": 0} and rec.params["step"] == 3
    assert main(["compress", "--method", "distilled", "--model", "nrx-large", "--weights",
                 str(tmp_path / "ckpt.npz"), "--out", str(tmp_path / "x")]) == 1
    assert "is 'nrx-rt'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def qat_art(tmp_path_factory):
    """A QAT artifact without training (step 0: scales = per-channel PTQ scales, one shrunk so that
    codes clip) -- the save/reload/grid path is what is tested here, not the fine-tune."""
    from effinrx.quant.qat import bake, build_qat

    qnet, made = build_qat("nrx-rt", "auto", 4)
    made[2].scales["pointwise_kernel"].assign(made[2].scales["pointwise_kernel"] * 0.6)
    baked, scales = bake(qnet)
    net, rec = C.qat_artifact("nrx-rt", qnet, baked, scales, 4, "auto", {"steps": 0})
    path = C.save_artifact(tmp_path_factory.mktemp("qat") / "rt-qat4", net, rec)
    return baked, rec, path


def test_qat_roundtrip_keeps_grid_and_scales(qat_art):
    baked, rec, path = qat_art
    net, rec2, _ = C.load_artifact(path)
    assert rec2.to_dict() == rec.to_dict() and C.describe(rec2) == "qat-int4-pc"
    assert all(np.array_equal(a, b) for a, b in zip(baked, net.get_core_weights()))
    # every kernel (depthwise, pointwise, Dense) carries a scale; biases do not
    names = [e["name"] for e in rec.params["scales"]]
    assert names and all(n.rsplit("/", 1)[-1] != "bias" for n in names)
    assert {n.rsplit("/", 1)[-1] for n in names} == {"depthwise_kernel", "pointwise_kernel", "kernel"}


def test_qat_off_grid_kernel_is_named(qat_art, tmp_path):
    from effinrx import weights as W

    baked, rec, path = qat_art
    e = rec.params["scales"][3]
    ws, meta = W.load_npz(path)
    ws[e["index"]] = ws[e["index"]] * np.float32(1.01)  # re-scaled by hand: no longer code x scale
    W.save_npz(tmp_path / "bad.npz", ws, meta)
    with pytest.raises(WeightsError, match=f"kernel {e['name']} is not on its 4-bit grid"):
        C.load_artifact(tmp_path / "bad.npz")
