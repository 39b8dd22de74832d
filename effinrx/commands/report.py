"""``effinrx report``: run a claims tier through pytest and write the claims report.

The report is produced by the same pytest plugin CI uses, so the CLI and CI cannot disagree.
Output: ``reports/<run>/report.md`` (claims + figures), ``tolerance.md``, ``tolerance.json``,
``plots/*.png``.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from effinrx.claims.registry import repo_root
from effinrx.errors import ConfigError
from effinrx.io import check_writable


def add_arguments(p) -> None:
    p.add_argument("--tier", choices=("smoke", "nightly", "paper"), default="smoke",
                   help="smoke: minutes on a laptop CPU; nightly: hours; paper: GPU + TensorRT, 132 PRBs")
    p.add_argument("--out", type=Path, default=None, help="report folder (default reports/<time>-<tier>)")
    p.add_argument("--seed", type=int, default=42, help="seed of every RNG (the goldens were taken with 42)")
    p.add_argument("-k", dest="select", default=None, help="only checks matching this pytest -k expression")


def run(args) -> int:
    import pytest

    root = repo_root()
    bench = root / "benchmarks"
    if not bench.is_dir():
        raise ConfigError(f"benchmarks folder {bench} not found: run effinrx report from a checkout "
                          "installed with 'pip install -e .'")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = (args.out or Path.cwd() / "reports" / f"{stamp}-{args.tier}").resolve()

    # the report is written when the whole tier has run (minutes): check the folder first
    check_writable(out, "--out", kind="dir")
    for name in ("report.md", "tolerance.md", "tolerance.json", "plots"):
        check_writable(out / name, "--out", kind="dir" if name == "plots" else "file")
    cmd = [str(bench), "--rootdir", str(root), "-c", str(root / "tox.ini"), "--tier", args.tier,
           "--seed", str(args.seed), "--report-dir", str(out), "-q"]
    if args.select:
        cmd += ["-k", args.select]
    code = pytest.main(cmd)
    rep = out / "report.md"
    if rep.exists():
        print(f"\nclaims report: {rep}\ntolerance report: {out / 'tolerance.md'}")
    # A claim that does not reproduce is a finding, not an error; golden regressions are errors.
    return int(code)
