"""'effinrx simulate' with several receivers: a baseline and a compressed artifact on the same
slots -> per-receiver tables, one required-Eb/N0 table, one PNG; bad receivers fail in one line."""
import pytest

from effinrx.cli import main


@pytest.fixture(scope="module")
def ptq_path(tmp_path_factory):
    from effinrx import compress as C

    net, rec = C.compress_ptq("nrx-rt", "auto", "int8-pc")
    return C.save_artifact(tmp_path_factory.mktemp("sim") / "rt-int8", net, rec)


def test_nrx_specs_build_the_named_receivers(ptq_path):
    from effinrx.link.config import Scenario
    from effinrx.receivers.registry import make

    sc = Scenario()
    rt = make("nrx-rt", sc, "auto")
    art = make(str(ptq_path), sc, "auto")
    # an artifact given as --weights keeps its recipe (the same receiver as giving the artifact)
    via_weights = make("nrx-rt", sc, str(ptq_path))
    assert via_weights.name == art.name and via_weights.describe()["weights_sha1"] == art.describe()["weights_sha1"]
    assert (rt.name, art.name) == ("nrx-rt", "nrx-rt-ptq-int8-pc")
    # different weights -> different simulation-cache keys
    assert rt.describe()["weights_sha1"] != art.describe()["weights_sha1"]


def test_baseline_and_artifact_on_same_slots(tmp_path, capsys, ptq_path):
    png = tmp_path / "cmp.png"
    rc = main(["simulate", "--receiver", f"ls,{ptq_path}", "--ebno", "30,31",
               "--batch", "2", "--max-blocks", "4", "--plot", str(png), "--cache", str(tmp_path / "c.json")])
    out = capsys.readouterr().out
    assert rc == 0 and png.stat().st_size > 1000
    assert "ls-lmmse, 4 PRBs" in out and "nrx-rt-ptq-int8-pc, 4 PRBs" in out
    # 30 dB: no TB errors for any receiver; 4 blocks of 2 slots x 2 UEs each
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("30.00", "31.00"))]
    assert len(rows) == 4 and all(r[1] == "0" and r[2] == "4" for r in rows), rows
    assert "gap vs ls-lmmse" in out and out.count("not bracketed") >= 2
    # one cache file holds both receivers, each under its own key
    import json

    assert len(json.loads((tmp_path / "c.json").read_text())["entries"]) == 2


@pytest.mark.parametrize("argv,match", [
    (["--receiver", "ls,/nonexistent/x.npz"], "file not found"),
    (["--receiver", "nrx-rt", "--num-tx", "1"], "built for 2 UEs"),
    (["--receiver", "zf"], "unknown receiver 'zf'"),
    (["--receiver", "ls,ls"], "same"),
])
def test_bad_receivers_one_line(tmp_path, capsys, argv, match):
    assert main(["simulate", *argv, "--ebno", "3", "--plot", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("effinrx simulate: error:") and match in err and "Traceback" not in err
    assert not (tmp_path / "x.png").exists()


def test_packaged_fallback_is_recorded_in_json_and_labelled(tmp_path, capsys, monkeypatch):
    import json

    import effinrx.weights as W

    monkeypatch.setattr(W, "reference_dir", lambda: None)  # a checkout without the reference weights
    monkeypatch.delenv(W.ENV_VAR, raising=False)
    js = tmp_path / "w.json"
    rc = main(["simulate", "--receiver", "ls,nrx-rt", "--weights", "auto", "--ebno", "30", "--batch", "2",
               "--max-blocks", "4", "--json", str(js), "--plot", str(tmp_path / "w.png")])
    out = capsys.readouterr().out
    assert rc == 0 and "nrx-rt (packaged checkpoint), 4 PRBs" in out and "ls-lmmse, 4 PRBs" in out
    facts = json.loads(js.read_text())["receivers"]
    assert facts["nrx-rt"]["weights_source"] == "packaged" and "not the paper's" in facts["nrx-rt"]["weights_note"]
    assert len(facts["nrx-rt"]["weights_sha1"]) == 16 and facts["ls-lmmse"]["name"] == "ls-lmmse"
