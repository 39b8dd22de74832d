"""Golden store and checks: regressions fail with file/key/golden/measured/tolerance, regen is never
silent, corrupt or missing goldens are clear failures."""
import json
import os

import pytest

from effinrx.claims.check import check, compare
from effinrx.claims.golden import GoldenStore
from effinrx.errors import GoldenError


def _check(store, measured, kind="rel", tol=0.01, key="k", device="any"):
    return check(store, claim="M2", key=key, measured=measured, kind=kind, tol=tol, metric="m",
                 paper="p", reproduced=None, device=device)


def test_force_regen_writes_and_fails_then_check_passes(tmp_path):
    v = _check(GoldenStore(tmp_path, "smoke", "force-regen"), 1.0)
    assert v.failed and v.golden_status == "regenerated"
    assert json.loads((tmp_path / "smoke/any/M2.json").read_text())["entries"]["k"]["value"] == 1.0
    v = _check(GoldenStore(tmp_path, "smoke"), 1.005)
    assert not v.failed and v.verdict == "pass"


def test_regen_all_passes(tmp_path):
    v = _check(GoldenStore(tmp_path, "smoke", "regen-all"), 3.0)
    assert not v.failed


def test_hand_edited_wrong_golden_fails_naming_everything(tmp_path):
    _check(GoldenStore(tmp_path, "smoke", "regen-all"), 2.0, key="nrx/int8")
    p = tmp_path / "smoke/any/M2.json"
    data = json.loads(p.read_text())
    data["entries"]["nrx/int8"]["value"] = 2.5  # a hand edit
    p.write_text(json.dumps(data))
    v = _check(GoldenStore(tmp_path, "smoke"), 2.0, key="nrx/int8")
    assert v.failed and v.verdict == "regressed"
    for part in (str(p), "nrx/int8", "golden 2.5", "measured 2.0", "rel 0.01"):
        assert part in v.message
    assert (tmp_path / "smoke/any/M2.json.obtained").exists()


def test_missing_golden_fails_and_does_not_create(tmp_path):
    v = _check(GoldenStore(tmp_path, "smoke"), 1.0)
    assert v.failed and v.golden_status == "no golden"
    assert "--force-regen" in v.message
    assert not (tmp_path / "smoke/any/M2.json").exists()
    assert (tmp_path / "smoke/any/M2.json.obtained").exists()


def test_latency_missing_device_golden_reports_no_golden_for_device(tmp_path):
    v = _check(GoldenStore(tmp_path, "smoke"), {"median_ms": 1.0}, kind="latency", tol=0.5, device="cpu-x")
    assert v.verdict == "no golden for this device"


@pytest.mark.parametrize("content,match", [("{not json", "corrupt"),
                                           (json.dumps({"schema": 99}), "schema 99"),
                                           (json.dumps({"schema": 1, "claim": "M2", "entries": {"k": 1}}),
                                            "key 'k'")])
def test_corrupt_or_wrong_schema_golden_is_a_clear_error(tmp_path, content, match):
    p = tmp_path / "smoke/any/M2.json"
    p.parent.mkdir(parents=True)
    p.write_text(content)
    with pytest.raises(GoldenError, match=match) as e:
        _check(GoldenStore(tmp_path, "smoke"), 1.0)
    assert str(p) in str(e.value)


def test_counts_statistical_comparison():
    ok, margin, text = compare("counts", {"errors": 30, "blocks": 100}, {"errors": 34, "blocks": 100}, 0.001)
    assert ok and margin > 0 and "Fisher" in text
    ok, _, _ = compare("counts", {"errors": 30, "blocks": 200}, {"errors": 120, "blocks": 200}, 0.001)
    assert not ok


def test_latency_and_dict_comparisons(monkeypatch):
    monkeypatch.setenv("EFFINRX_BENCHMARK_RUNNER", "1")  # hard gate: the rules below decide pass/fail
    assert compare("latency", {"median_ms": 1.0}, {"median_ms": 1.4}, 0.5)[0]
    assert not compare("latency", {"median_ms": 1.0}, {"median_ms": 1.6}, 0.5)[0]
    ok, _, text = compare("latency", {"median_ms": 1.0}, {"median_ms": 0.6}, 0.5)
    assert ok and "x1.67 faster than golden" in text  # faster is no regression, but it is said
    # with best-of-n on both sides, a loaded machine (median up, min unchanged) is not a regression
    ok, _, text = compare("latency", {"median_ms": 1.0, "min_ms": 0.9}, {"median_ms": 2.5, "min_ms": 0.95}, 0.5)
    assert ok and "min_ms" in text
    assert not compare("latency", {"median_ms": 1.0, "min_ms": 0.9}, {"median_ms": 1.0, "min_ms": 1.5}, 0.5)[0]
    # with the speed probe on both sides: a machine 2x slower overall is no regression ...
    g = {"median_ms": 1.0, "min_ms": 1.0, "probe_ms": 0.5}
    ok, _, text = compare("latency", g, {"median_ms": 2.0, "min_ms": 2.0, "probe_ms": 1.0}, 0.5)
    assert ok and "machine x2.00" in text
    # ... but the same 2x latency on an unchanged machine is, and so is a slower model on a faster one
    assert not compare("latency", g, {"median_ms": 2.0, "min_ms": 2.0, "probe_ms": 0.5}, 0.5)[0]
    assert not compare("latency", g, {"median_ms": 1.0, "min_ms": 1.0, "probe_ms": 0.3}, 0.5)[0]
    assert not compare("latency", g, {"median_ms": 1.0, "min_ms": 1.0, "probe_ms": 0.0}, 0.5)[0]
    assert compare("exact", {"a": 1, "b": 2}, {"a": 1, "b": 2}, None)[0]
    ok, _, text = compare("exact", {"a": 1, "b": 2}, {"a": 1, "b": 3}, None)
    assert not ok and "[b]" in text
    with pytest.raises(GoldenError):
        compare("counts", {"errors": 1}, {"errors": 1, "blocks": 2}, 0.01)


def test_latency_on_a_shared_runner_is_advisory(tmp_path, monkeypatch):
    """Without EFFINRX_BENCHMARK_RUNNER a slower latency is reported as advisory, never failed; on a
    declared benchmark runner the same numbers fail."""
    monkeypatch.delenv("EFFINRX_BENCHMARK_RUNNER", raising=False)
    g, slow = {"median_ms": 1.0, "min_ms": 1.0}, {"median_ms": 3.0, "min_ms": 3.0}
    store = GoldenStore(tmp_path, "smoke", "regen-all")
    check(store, claim="L1", key="k", measured=g, kind="latency", tol=0.5, metric="m", paper=None,
          reproduced=None, device="cpu-x")
    store = GoldenStore(tmp_path, "smoke", "check")
    v = check(store, claim="L1", key="k", measured=slow, kind="latency", tol=0.5, metric="m", paper=None,
              reproduced=None, device="cpu-x")
    assert v.golden_status == "advisory" and not v.failed and v.verdict.startswith("advisory (shared runner)")
    monkeypatch.setenv("EFFINRX_BENCHMARK_RUNNER", "1")
    v = check(store, claim="L1", key="k", measured=slow, kind="latency", tol=0.5, metric="m", paper=None,
              reproduced=None, device="cpu-x")
    assert v.golden_status == "regressed" and v.failed


def test_not_measurable_and_reproduced_verdicts(tmp_path):
    store = GoldenStore(tmp_path, "smoke", "regen-all")
    v = check(store, claim="L1", key="k", measured=None, kind="latency", tol=0.5, metric="m", paper="p",
              reproduced=None, not_measurable="no GPU")
    assert v.verdict == "not measurable here (no GPU)" and not v.failed
    v = check(store, claim="M1", key="k", measured=5, kind="exact", tol=None, metric="m", paper="p",
              reproduced=False)
    assert v.verdict == "not reproduced" and not v.failed


@pytest.mark.parametrize("mode", ["check", "force-regen", "regen-all"])
def test_verdict_kind_is_never_a_golden(tmp_path, mode):
    """A paper verdict derived from counts neither reads nor writes the store in any mode, so noise in
    the counts (inside their interval) cannot fail CI through a flipped yes/no."""
    store = GoldenStore(tmp_path, "smoke", mode)
    for flag, word in ((True, "reproduced"), (False, "not reproduced")):
        v = check(store, claim="Q2", key="fp8/beats-ls", measured={"p_lt_0.01": flag}, kind="verdict",
                  tol=None, metric="m", paper="p", reproduced=flag)
        assert v.verdict == word and v.golden_status == "derived" and not v.failed and v.golden is None
    assert not list(tmp_path.rglob("*.json*"))
    v = check(store, claim="Q2", key="k", measured={}, kind="verdict", tol=None, metric="m", paper="p",
              reproduced=None, note="one Eb/N0 point")
    assert v.verdict == "inconclusive" and "one Eb/N0 point" in v.message and not v.failed


def test_device_key_names_the_int8_isa_tier(monkeypatch):
    """Same CPU model, different SIMD tier -> different latency golden key (int8 speed depends on it)."""
    from effinrx import device

    assert device.isa_tier(["sse4_2", "avx2", "avx512f", "avx512bw", "avx512_vnni"]) == "avx512vnni"
    assert device.isa_tier(["sse4_2", "avx2", "avx512bw"]) == "avx512"
    assert device.isa_tier(["sse4_2", "avx2"]) == "avx2"
    assert device.isa_tier(["fpu"]) == "base"
    monkeypatch.delenv("EFFINRX_DEVICE", raising=False)
    device.fingerprint.cache_clear()
    try:
        fp = device.fingerprint()
        if device.gpu_info() is None:
            assert f"-{device.cpu_isa()}-" in fp and fp.endswith(f"-{os.cpu_count()}c")
            gen = device.cpu_generation()  # e.g. f25m1: "AMD EPYC" alone does not tell Zen 2/3/4 apart
            assert gen == "" or (gen.startswith("f") and "m" in gen and f"-{gen}-" in fp)
    finally:
        device.fingerprint.cache_clear()


def test_left_over_golden_entries_are_listed_with_the_reason(tmp_path):
    from effinrx.claims.report import render_markdown

    store = GoldenStore(tmp_path, "smoke", "regen-all")
    for key, test in (("kept", "t.py::a"), ("renamed", "t.py::a"), ("moved", "t.py::b"), ("other", "t.py::c")):
        check(store, claim="M2", key=key, measured=1.0, kind="rel", tol=0.01, metric="m", paper="p",
              reproduced=None, meta={"test": test})
    check(store, claim="L1", key="other-device", measured={"median_ms": 1.0}, kind="latency", tol=0.5,
          metric="m", paper="p", reproduced=None, device="cpu-elsewhere", meta={"test": "t.py::a"})
    left = GoldenStore(tmp_path, "smoke").unchecked({("M2", "any", "kept")}, {"t.py::a"}, {"t.py::b"},
                                                    devices=("any", "cpu-here"))
    assert {(u["key"], u["why"]) for u in left} == {("renamed", "its test ran and did not check it"),
                                                    ("moved", "its test is no longer of tier smoke")}
    md = render_markdown([], [], {"tier": "smoke", "unchecked_goldens": left})
    assert "## Golden entries no check read" in md and "`renamed`" in md and "`other`" not in md


def test_counts_on_the_same_setup_must_be_identical(tmp_path):
    """Same seed, versions, configuration and host -> identical slots, so one extra TB error is a
    regression; on another host the same numbers are judged by Fisher's test (consistent)."""
    meta = {"seed": 42, "versions": {"tensorflow": "2.19.1"}, "device": "cpu-x", "config_hash": "abc"}
    store = GoldenStore(tmp_path, "smoke", "regen-all")
    check(store, claim="Q2", key="k", measured={"errors": 40, "blocks": 128}, kind="counts", tol=1e-3,
          metric="m", paper=None, reproduced=None, meta=meta)
    store = GoldenStore(tmp_path, "smoke", "check")
    kw = dict(claim="Q2", key="k", kind="counts", tol=1e-3, metric="m", paper=None, reproduced=None)
    assert check(store, measured={"errors": 40, "blocks": 128}, meta=meta, **kw).golden_status == "pass"
    v = check(store, measured={"errors": 41, "blocks": 128}, meta=meta, **kw)
    assert v.golden_status == "regressed" and "errors 40 -> 41" in v.tolerance
    other = {**meta, "device": "cpu-y"}
    assert check(store, measured={"errors": 41, "blocks": 128}, meta=other, **kw).golden_status == "pass"


def _with_tb(tb, per=16):
    import numpy as np

    from effinrx.link.counts import pack_outcomes

    tb = np.asarray(tb, bool)
    return {"errors": int(tb.sum()), "blocks": len(tb), "tb": pack_outcomes(tb), "tb_per_batch": per}


def test_per_tb_outcomes_pack_roundtrip_and_bad_text():
    import numpy as np

    from effinrx.errors import ConfigError
    from effinrx.link.counts import pack_outcomes, unpack_outcomes

    rng = np.random.default_rng(1)
    for n in (1, 7, 8, 9, 128, 131):
        tb = rng.random(n) < 0.3
        assert (unpack_outcomes(pack_outcomes(tb), n) == tb).all()
    with pytest.raises(ConfigError, match="bytes for 20 TBs"):
        unpack_outcomes("ff", 20)
    with pytest.raises(ConfigError, match="not a hex"):
        unpack_outcomes("zz", 8)


def test_counts_with_outcomes_same_setup_names_the_first_differing_batch(tmp_path):
    """Equal counts but one TB swapped: same host -> a regression naming TB and batch."""
    import numpy as np

    meta = {"seed": 42, "versions": {"tensorflow": "2.19.1"}, "device": "cpu-x", "config_hash": "abc"}
    g = np.zeros(64, bool)
    g[[3, 40]] = True
    store = GoldenStore(tmp_path, "smoke", "regen-all")
    kw = dict(claim="Q2", key="k", kind="counts", tol=1e-3, metric="m", paper=None, reproduced=None)
    check(store, measured=_with_tb(g), meta=meta, **kw)
    store = GoldenStore(tmp_path, "smoke", "check")
    assert check(store, measured=_with_tb(g), meta=meta, **kw).golden_status == "pass"
    m = g.copy()
    m[40], m[50] = False, True  # same count, another TB
    v = check(store, measured=_with_tb(m), meta=meta, **kw)
    assert v.golden_status == "regressed" and "first differing TB #40 (batch 2)" in v.tolerance


def test_counts_with_outcomes_on_another_host_are_paired(tmp_path):
    """Another host, same seed: McNemar on the discordant TBs. A 1.5x TBLER on the same slots (every
    old error kept, half as many new) fails where the unpaired Fisher rule passes; symmetric flips pass."""
    import numpy as np

    from effinrx.stats import compare_counts

    meta = {"seed": 42, "versions": {"tensorflow": "2.19.1"}, "device": "cpu-x", "config_hash": "abc"}
    other = {**meta, "device": "cpu-y"}
    g = np.zeros(256, bool)
    g[:48] = True
    store = GoldenStore(tmp_path, "smoke", "regen-all")
    kw = dict(claim="Q2", key="k", kind="counts", tol=1e-3, metric="m", paper=None, reproduced=None)
    check(store, measured=_with_tb(g), meta=meta, **kw)
    store = GoldenStore(tmp_path, "smoke", "check")
    worse = g.copy()
    worse[100:124] = True  # 48 -> 72 errors
    assert compare_counts(72, 256, 48, 256, alpha=1e-3).consistent  # what Fisher would say
    v = check(store, measured=_with_tb(worse), meta=other, **kw)
    assert v.golden_status == "regressed" and "paired McNemar" in v.tolerance and "24 TBs newly wrong" in v.tolerance
    noisy = g.copy()
    noisy[[0, 1, 2]] = False
    noisy[[200, 201, 202]] = True
    v = check(store, measured=_with_tb(noisy), meta=other, **kw)
    assert v.golden_status == "pass" and "paired McNemar" in v.tolerance


def test_holm_step_down():
    from effinrx.stats import holm

    assert holm([0.01, 0.04, 0.03, 0.5], 0.05) == [True, False, False, False]
    assert holm([0.001, 0.012, 0.02, 0.5], 0.05) == [True, True, True, False]
    assert holm([], 0.05) == []


def test_higher_tier_falls_back_to_a_lower_tiers_golden_of_the_same_configuration(tmp_path):
    """A smoke-sized check run under --tier nightly/paper with no golden of its own is compared with
    the smoke golden when seed and configuration match; a different configuration, or a run without a
    configuration hash, stays 'no golden'; the nightly tier's own entry wins over the fallback."""
    meta = {"seed": 42, "config_hash": "abc"}
    kw = dict(claim="M1", key="k", kind="exact", tol=None, metric="m", paper=None, reproduced=None)
    check(GoldenStore(tmp_path, "smoke", "regen-all"), measured=7, meta=meta, **kw)
    for tier in ("nightly", "paper"):
        v = check(GoldenStore(tmp_path, tier), measured=7, meta=meta, **kw)
        assert v.golden_status == "pass" and "tier smoke" in v.message
        assert v.golden_file == str(tmp_path / "smoke/any/M1.json")
    v = check(GoldenStore(tmp_path, "nightly"), measured=8, meta=meta, **kw)
    assert v.golden_status == "regressed" and "tier smoke" in v.message
    assert check(GoldenStore(tmp_path, "nightly"), measured=7, meta={**meta, "config_hash": "xyz"},
                 **kw).golden_status == "no golden"
    assert check(GoldenStore(tmp_path, "nightly"), measured=7, meta={"seed": 42}, **kw).golden_status == "no golden"
    assert check(GoldenStore(tmp_path, "nightly"), measured=7, meta={**meta, "seed": 1},
                 **kw).golden_status == "no golden"
    check(GoldenStore(tmp_path, "nightly", "regen-all"), measured=9, meta=meta, **kw)
    assert (tmp_path / "nightly/any/M1.json").exists()
    v = check(GoldenStore(tmp_path, "paper"), measured=9, meta=meta, **kw)
    assert v.golden_status == "pass" and "tier nightly" in v.message
    assert check(GoldenStore(tmp_path, "nightly"), measured=7, meta=meta, **kw).golden_status == "regressed"


def test_count_family_spans_the_lower_tiers_once_per_key(tmp_path):
    meta = {"seed": 1, "config_hash": "h"}
    kw = dict(kind="counts", tol=1e-3, metric="m", paper=None, reproduced=None, meta=meta)
    for tier, claim, key in (("smoke", "Q1", "a"), ("smoke", "Q1", "b"), ("nightly", "Q1", "a"), ("nightly", "Q2", "c")):
        check(GoldenStore(tmp_path, tier, "regen-all"), claim=claim, key=key, measured={"errors": 1, "blocks": 8}, **kw)
    assert GoldenStore(tmp_path, "smoke").count_family() == 2
    assert GoldenStore(tmp_path, "nightly").count_family() == 3
    assert GoldenStore(tmp_path, "paper").count_family() == 3
