"""``effinrx prune``: bad input ends with one line naming the problem."""
import pytest

from effinrx.cli import main


@pytest.mark.parametrize("argv,match", [
    (["--target", "1.5"], "target sparsity"),
    (["--method", "movement", "--pattern", "2:4"], "unstructured"),
    (["--steps", "10", "--end-step", "20"], "end_step"),
    (["--prbs", "0"], "--prbs"),
])
def test_bad_arguments_exit_1_with_message(tmp_path, capsys, argv, match):
    assert main(["prune", *argv, "--out", str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("effinrx prune: error:") and match in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written
