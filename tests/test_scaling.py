"""Task-graph projection of a sweep over workers (effinrx.link.scaling): durations from measured
points, LPT makespan, efficiency."""
import pytest

from effinrx.errors import ConfigError
from effinrx.link.counts import PointCounts
from effinrx.link.scaling import makespan, projection, task_seconds


def _pt(e, batches, seconds):
    return PointCounts(e, blocks=batches * 32, batches=batches, seconds=seconds)


def test_task_seconds_from_points():
    curves = {"a": [_pt(0.0, 4, 8.0), _pt(1.0, 4, 4.0)], "b": [_pt(0.0, 4, 4.0), _pt(1.0, 4, 4.0)]}
    # point 0: 2 + 1 s per batch, point 1: 1 + 1; chunks of 3 -> 3 + 1 batches
    assert task_seconds(curves, 3) == [9.0, 3.0, 6.0, 2.0]
    assert sum(task_seconds(curves, 1)) == pytest.approx(20.0)
    with pytest.raises(ConfigError, match="chunk"):
        task_seconds(curves, 0)


def test_makespan_and_projection():
    d = [5.0, 4.0, 3.0, 3.0, 3.0]
    assert makespan(d, 1) == 18.0
    assert makespan(d, 2) == 10.0  # LPT: 5+3+... -> {5,3}, {4,3,3} = 8, 10
    assert makespan(d, 64) == 5.0  # the longest task bounds it
    rows = projection(d, [1, 2, 64], startup_s=1.0)
    assert rows[0]["wall_s"] == 19.0 and rows[2]["wall_s"] == 6.0
    assert rows[2]["efficiency"] == pytest.approx(18.0 / 6.0 / 64)
    with pytest.raises(ConfigError, match="workers"):
        makespan(d, 0)
