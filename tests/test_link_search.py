"""Adaptive required-Eb/N0 search: visited points are ordinary engine points (same counts as a fixed
grid at those Eb/N0), the crossing is bracketed within the resolution, and it costs fewer points."""
import pytest

from effinrx.errors import ConfigError
from effinrx.link.config import Scenario
from effinrx.link.montecarlo import simulate
from effinrx.link.search import search

KW = dict(max_blocks=128, target_errors=10**9, batch_size=32, seed=4)


def test_search_brackets_and_matches_the_grid():
    from effinrx.receivers import classical

    sc = Scenario()
    rx = classical.make("ls-lmmse", sc)
    (res,) = search([rx], sc, target=0.2, lo=0.0, hi=8.0, resolution_db=0.5, **KW).values()
    e = [p.ebno_db for p in res.points]
    assert e == sorted(e) and len(e) < res.grid_points == 17
    above = [p for p in res.points if p.tbler > 0.2]
    below = [p for p in res.points if p.tbler <= 0.2]
    assert above and below and min(p.ebno_db for p in below) - max(p.ebno_db for p in above) <= 0.5 + 1e-9
    grid = simulate(rx, sc, e, progress=False, **KW)
    assert [(p.errors, p.blocks) for p in grid] == [(p.errors, p.blocks) for p in res.points]
    assert res.required is not None and e[0] <= res.required.value <= e[-1] and res.tbs == sum(p.blocks for p in grid)


def test_search_bad_arguments():
    with pytest.raises(ConfigError, match="search needs"):
        search([], Scenario(), lo=3.0, hi=1.0)


def test_simulate_search_cli(tmp_path, capsys):
    from effinrx.cli import main

    rc = main(["simulate", "--receiver", "ls", "--ebno", "0:8:1", "--search", "0.2", "--batch", "16",
               "--max-blocks", "64", "--target-errors", "1000000", "--plot", str(tmp_path / "s.png"),
               "--json", str(tmp_path / "s.json")])
    out = capsys.readouterr().out
    assert rc == 0 and "required Eb/N0 @TBLER 0.2" in out and "a fixed grid of the same resolution needs 9 points" in out
    assert main(["simulate", "--ebno", "1,2", "--search", "0.1"]) == 1
