"""TBLER goldens are reproducible from the CLI: each entry records the ``effinrx simulate`` command
that gives its counts; re-running it (restricted to the entry's receiver: a receiver's counts do
not depend on the receivers beside it) gives the golden counts exactly."""
import json
import shlex
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "smoke" / "any" / "Q1.json"
KEYS = ("baseline/ls-lmmse/4prb/ebno=3", "baseline/ls-lmmse/4prb/ebno=5")


def _entries():
    data = json.loads(GOLDEN.read_text())
    return {k: data["entries"][k] for k in KEYS}


def test_two_golden_entries_rerun_from_their_command(tmp_path):
    from effinrx.cli import main

    ents = _entries()
    cmds = {e["meta"]["command"] for e in ents.values()}
    assert len(cmds) == 1, cmds  # both points come from one sweep
    argv = shlex.split(cmds.pop())
    assert argv[:2] == ["effinrx", "simulate"], argv
    i = argv.index("--receiver")
    assert "ls-lmmse" in argv[i + 1].split(",")
    argv[i + 1] = "ls-lmmse"
    out = tmp_path / "out.json"
    assert main(argv[1:] + ["--json", str(out), "--plot", str(tmp_path / "p.png")]) == 0
    got = {p["ebno_db"]: p for p in json.loads(out.read_text())["points"]}
    for key, ent in ents.items():
        e = float(key.rsplit("=", 1)[1])
        g, m = ent["value"], got[e]
        assert (m["block_errors"], m["blocks"], m["bit_errors"], m["bits"], m["crc_failures"]) == \
            (g["errors"], g["blocks"], g["bit_errors"], g["bits"], g["crc_failures"]), (key, g, m)


def test_simulate_json_schema(tmp_path):
    """--json: scenario (every field), provenance, and one entry per receiver and point with the
    documented keys; one Eb/N0 point works (table, JSON, PNG)."""
    from effinrx.cli import main

    out, png = tmp_path / "o.json", tmp_path / "o.png"
    assert main(["simulate", "--receiver", "ls", "--ebno", "30", "--batch", "8", "--max-blocks", "16",
                 "--json", str(out), "--plot", str(png)]) == 0
    d = json.loads(out.read_text())
    assert d["scenario"]["channel"] == "double-tdl" and d["scenario"]["num_bp_iter"] == 20
    assert {"versions", "git_commit", "seed", "command"} <= set(d["provenance"])
    (p,) = d["points"]
    assert {"receiver", "ebno_db", "block_errors", "blocks", "bit_errors", "bits", "crc_failures"} <= set(p)
    assert p["receiver"] == "ls-lmmse" and p["blocks"] == 16 and png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("bad", ["nan", "inf", "1e9", "3:1:1"])
def test_simulate_rejects_bad_ebno(bad, capsys):
    from effinrx.cli import main

    assert main(["simulate", "--ebno", bad]) != 0
    err = capsys.readouterr().err
    assert "Eb/N0" in err or "--ebno" in err


def test_unknown_receiver_lists_every_name(capsys):
    from effinrx.cli import main

    assert main(["simulate", "--receiver", "zf", "--ebno", "3"]) != 0
    err = capsys.readouterr().err.strip().splitlines()[-1]
    for name in ("ls-lmmse", "nrx-rt", "nrx-large", "nrx-rt-ptq-int8-pc", "nrx-rt-w8a8-int8", "PATH.npz"):
        assert name in err, err
