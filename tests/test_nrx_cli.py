"""'effinrx train' / 'effinrx export' argument handling (the heavy paths are covered elsewhere)."""
import argparse

import pytest

from effinrx.commands import export as export_cmd
from effinrx.commands import train as train_cmd
from effinrx.errors import ConfigError


def _args(mod, argv):
    p = argparse.ArgumentParser()
    mod.add_arguments(p)
    return p.parse_args(argv)


def test_help_lines():
    """Every subcommand module has its one help line in cli.COMMANDS, and every entry has a module."""
    from pathlib import Path

    from effinrx import cli

    mods = {p.stem for p in (Path(cli.__file__).parent / "commands").glob("*.py") if p.stem != "__init__"}
    assert mods == {n for n, _ in cli.COMMANDS} and all(h for _, h in cli.COMMANDS)


def test_export_rejects_bad_prbs():
    with pytest.raises(ConfigError, match="--prbs"):
        export_cmd.run(_args(export_cmd, ["--prbs", "0"]))


def test_train_rejects_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="--prbs"):
        train_cmd.run(_args(train_cmd, ["--prbs", "0", "--out", str(tmp_path)]))
    with pytest.raises(ConfigError, match="mse_weight"):
        train_cmd.run(_args(train_cmd, ["--mse-weight", "3", "--out", str(tmp_path)]))


def test_export_command_writes_onnx(tmp_path, capsys):
    from effinrx.weights import reference_dir

    w = "reference" if reference_dir() is not None else "auto"
    if w == "auto":
        pytest.skip("reference NRX weights absent and no packaged checkpoint guaranteed")
    rc = export_cmd.run(_args(export_cmd, ["--weights", w, "--prbs", "1", "--out", str(tmp_path / "m.onnx")]))
    assert rc == 0 and (tmp_path / "m.onnx").is_file()
    assert "parity ORT vs TF" in capsys.readouterr().out


def test_train_exact_resume_reaches_the_recipe(tmp_path, monkeypatch):
    seen = {}

    def fake_train(recipe, out, resume, extra_loss=None):
        seen.update(recipe=recipe, resume=resume)
        return {"steps_done": recipe.steps, "resumed_from": 0, "train_seconds_this_run": 0.0,
                "final_bce": 0.0, "final_mse": 0.0, "checkpoint": str(out / "ckpt_latest.npz")}

    monkeypatch.setattr(train_cmd, "train", fake_train)
    for argv, want in (([], False), (["--exact-resume"], True)):
        train_cmd.run(_args(train_cmd, argv + ["--steps", "2", "--out", str(tmp_path)]))
        assert seen["recipe"].exact_resume is want and seen["resume"] is True
