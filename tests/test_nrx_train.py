"""NRX training loop: losses, a few steps lower the loss on a fixed batch, checkpoint + resume, logs."""
import csv
import json

import numpy as np
import pytest

from effinrx.errors import ConfigError
from effinrx.training.nrx import TrainRecipe, nrx_losses, train


def test_recipe_validation():
    with pytest.raises(ConfigError, match="mse_weight"):
        TrainRecipe(mse_weight=2.0).validate()
    with pytest.raises(ConfigError, match="steps"):
        TrainRecipe(steps=0).validate()
    with pytest.raises(ConfigError, match="Eb/N0"):
        TrainRecipe(ebno_2ue=(5.0, 1.0)).validate()


@pytest.fixture(scope="module")
def setup():
    from effinrx._tf import tf
    from effinrx.receivers.nrx import NRXReceiver
    from effinrx.receivers.nrx_preproc import precoding_matrices
    from effinrx.link.umi import UMiSlotSource

    tf().random.set_seed(0)
    rx = NRXReceiver("nrx-rt", weights=None)
    src = UMiSlotSource(4, 2)
    return rx, src, tf().constant(precoding_matrices(src.tx))


def test_losses_and_gradient_step_lowers_loss(setup):
    from effinrx._tf import keras, tf

    t = tf()
    rx, src, w = setup
    slot = src(4, 10.0, num_active=2)
    opt = keras().optimizers.Adam(3e-3)

    def loss():
        llr, h = rx.forward(slot.y, slot.active, training=True)
        b, m = nrx_losses(rx, slot, llr, h, w)
        return b + 0.02 * m, b, m

    l0, b0, m0 = (float(x) for x in loss())
    assert 0.5 < b0 < 0.9 and m0 > 0  # random init: BCE near log 2
    for _ in range(8):
        with t.GradientTape() as tape:
            val = loss()[0]
        g = tape.gradient(val, rx.net.trainable_variables)
        opt.apply_gradients(zip(g, rx.net.trainable_variables))
    assert float(loss()[0]) < l0


def test_channel_and_effective_channel_layout(setup):
    """y = sum over UEs/tx antennas of h x + noise (30 dB), and the MSE target equals h @ w per RE."""
    from effinrx.receivers.nrx_preproc import effective_channel_real

    rx, src, w = setup
    slot = src(2, 30.0, num_active=2)
    h, x, y = slot.h.numpy(), slot.x.numpy(), slot.y.numpy()
    y_hat = np.einsum("bxauktf,buktf->bxatf", h, x)
    assert np.linalg.norm(y - y_hat) / np.linalg.norm(y) < 0.1
    he = effective_channel_real(slot.h, w).numpy()  # [B, U, S, T, 8]
    ref = np.einsum("bxauktf,uk->bufta", h, w.numpy()[..., 0])  # [B, U, S, T, A]
    np.testing.assert_allclose(he[..., :4] + 1j * he[..., 4:], ref, rtol=1e-4, atol=1e-5)


def test_train_checkpoint_resume_and_logs(tmp_path):
    r = TrainRecipe(model="nrx-rt", steps=2, batch_size=2, ckpt_every=1, log_every=1, seed=3)
    s = train(r, tmp_path, resume=False, progress=False)
    assert s["steps_done"] == 2 and np.isfinite(s["final_loss"])
    meta = json.loads((tmp_path / "ckpt_latest.json").read_text())
    assert meta["step"] == 2 and meta["config"]["name"] == "nrx-rt" and meta["recipe"]["seed"] == 3
    assert "git_hash" in meta and meta["num_arrays"] == 43
    r.steps = 3
    s2 = train(r, tmp_path, resume=True, progress=False)
    assert s2["resumed_from"] == 2
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [int(x["step"]) for x in rows] == [1, 2, 3]
    assert json.loads((tmp_path / "summary.json").read_text())["steps_done"] == 3


def test_compiled_umi_source_draws_the_eager_slots():
    """``UMiSlotSource(compiled=True)`` (long training runs) draws the eager source's slots from the
    same seed: bits, coded bits, activity and noise exactly, ``y``/``h`` to float32 rounding."""
    import numpy as np

    from effinrx._tf import set_seeds
    from effinrx.link.umi import UMiSlotSource

    draws = {}
    for compiled in (False, True):
        src = UMiSlotSource(4, 2, compiled=compiled)
        set_seeds(11)
        draws[compiled] = [src(2, e, num_active=k) for k, e in ((1, (0.0, 10.0)), (None, 4.0))]
    for a, b in zip(draws[False], draws[True]):
        for f in ("bits", "coded", "active", "no"):
            assert np.array_equal(getattr(a, f).numpy(), getattr(b, f).numpy()), f
        for f in ("y", "h", "x"):
            np.testing.assert_allclose(getattr(b, f).numpy(), getattr(a, f).numpy(), atol=1e-5, err_msg=f)


def test_exact_resume_ends_with_the_unbroken_runs_weights(tmp_path):
    """``exact_resume``: a run killed after its step-2 checkpoint and resumed ends bit for bit where
    an unbroken run of the same recipe ends (per-step data seeds, Adam's moments checkpointed)."""
    from effinrx.errors import ConfigError

    r = TrainRecipe(model="nrx-rt", steps=4, batch_size=2, ckpt_every=2, log_every=1, seed=5, exact_resume=True)
    train(r, tmp_path / "whole", resume=False, progress=False)

    class Stop(Exception):
        pass

    def stop_after_fourth_step(step, net):
        if step == 3:  # steps 1-3 logged, the step-2 checkpoint written; step 4 is lost with the process
            raise Stop

    with pytest.raises(Stop):
        train(r, tmp_path / "split", resume=False, progress=False, on_step=stop_after_fourth_step)
    assert json.loads((tmp_path / "split" / "ckpt_latest.json").read_text())["step"] == 2
    s = train(r, tmp_path / "split", resume=True, progress=False)
    assert s["resumed_from"] == 2
    # step 3 ran twice, logged once: the log is the unbroken run's
    logs = {k: list(csv.DictReader((tmp_path / k / "log.csv").open())) for k in ("whole", "split")}
    assert [int(x["step"]) for x in logs["split"]] == [1, 2, 3, 4]
    assert [x["loss"] for x in logs["split"]] == [x["loss"] for x in logs["whole"]]
    a = np.load(tmp_path / "whole" / "ckpt_latest.npz")
    b = np.load(tmp_path / "split" / "ckpt_latest.npz")
    assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    # a finished run resumes to its saved summary; another recipe's folder is refused by name
    again = train(r, tmp_path / "split", resume=True, progress=False)
    assert again["resumed_from"] == 4 and again["final_loss"] == s["final_loss"]
    from effinrx.receivers.nrx import load_model

    other = load_model("nrx-rt", [w * 1.01 for w in load_model("nrx-rt", None).get_core_weights()])
    with pytest.raises(ConfigError, match=r"trained from other start weights \(digest [0-9a-f]{12} there"):
        train(r, tmp_path / "split", resume=True, progress=False, net=other)
    r.learning_rate = 2e-3
    with pytest.raises(ConfigError, match=r"written by another recipe \(learning_rate: 0.001 there, 0.002 here\)"):
        train(r, tmp_path / "split", resume=True, progress=False)


def test_train_dir_names_the_folder_or_nothing(tmp_path, monkeypatch):
    from effinrx.training.resume import step_seed, train_dir

    monkeypatch.delenv("EFFINRX_TRAIN_DIR", raising=False)
    assert train_dir() is None
    monkeypatch.setenv("EFFINRX_TRAIN_DIR", str(tmp_path / "runs"))
    assert train_dir() == tmp_path / "runs" and (tmp_path / "runs").is_dir()
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("EFFINRX_TRAIN_DIR", str(tmp_path / "file" / "runs"))
    with pytest.raises(ConfigError, match=r"\$EFFINRX_TRAIN_DIR=.*file/runs: cannot create the folder"):
        train_dir()
    assert len({step_seed(s, k) for s in range(3) for k in range(5)}) == 15
    with pytest.raises(ConfigError, match="training step 16777216 outside"):
        step_seed(0, 2**24)
