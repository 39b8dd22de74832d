"""Atomic writes and the binomial statistics shared by Monte-Carlo and golden checks."""
import os

import pytest

from effinrx import stats
from effinrx.io import atomic_write_json, atomic_write_text


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "sub" / "f.json"
    atomic_write_json(p, {"a": 1})
    atomic_write_text(p, "second")
    assert p.read_text() == "second"
    assert os.listdir(p.parent) == ["f.json"]


def test_atomic_write_failure_keeps_old_content(tmp_path):
    p = tmp_path / "f.json"
    atomic_write_text(p, "old")
    with pytest.raises(TypeError):
        atomic_write_json(p, {"a": object()})
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.json"]


@pytest.mark.parametrize("e,n", [(0, 10), (3, 10), (10, 10), (50, 1000)])
def test_intervals_contain_the_estimate(e, n):
    for lo, hi in (stats.clopper_pearson(e, n), stats.wilson(e, n)):
        assert 0.0 <= lo <= e / n <= hi <= 1.0


def test_clopper_pearson_known_value():
    lo, hi = stats.clopper_pearson(0, 100, 0.95)
    assert lo == 0.0 and hi == pytest.approx(0.0362, abs=1e-3)


def test_counts_validation_is_clear():
    with pytest.raises(ValueError, match="errors <= trials"):
        stats.wilson(5, 3)
    with pytest.raises(ValueError, match="zero trials"):
        stats.compare_counts(0, 0, 1, 2)


def test_compare_counts_detects_a_real_difference():
    assert stats.compare_counts(50, 100, 52, 100).consistent
    assert not stats.compare_counts(10, 200, 60, 200, alpha=0.01).consistent
    assert stats.one_sided_less(10, 200, 60, 200) < 1e-6


def test_atomic_write_mode_is_a_plain_files_or_kept(tmp_path):
    import os
    import stat

    from effinrx.io import atomic_write_text

    mask = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "new.json", "{}")
        assert stat.S_IMODE(p.stat().st_mode) == 0o644  # not mkstemp's 0600
        p.chmod(0o640)
        atomic_write_text(p, "{}\n")
        assert stat.S_IMODE(p.stat().st_mode) == 0o640  # an existing file keeps its mode
    finally:
        os.umask(mask)
