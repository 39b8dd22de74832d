"""``effinrx simulate``: TBLER vs Eb/N0 of one or more receivers on the same seeded slots; prints a
table with 95 % intervals per receiver, the required Eb/N0 at TBLER 10 % (with interval, gap to the
first receiver; from two points on), writes one PNG with every curve and, with ``--json``, the
counts with the scenario and provenance.

Receivers (comma-separated, :mod:`effinrx.receivers.registry`): ``ls-lmmse`` (``ls``),
``lmmse-kbest`` (``lmmse``), ``perfect-kbest`` (``perfect``); ``nrx-rt`` / ``nrx-large`` with
``--weights``; a compressed NRX ``nrx-rt-ptq-int8-pc``, ``nrx-rt-w8a8-int8``, ...; or a checkpoint /
compressed artifact ``PATH.npz``, which runs exactly as saved (W8A8 with its activation scales); or the
deployment path ``nrx-rt-ort-fp32|int8|int8-fused`` (:func:`effinrx.latency.build.make_receiver`: the
ONNX export on ONNX Runtime inside the link loop; serial executor only).
Example: ``effinrx simulate --receiver ls,nrx-rt,rt-int8.npz --ebno -2:7:1``.
"""
from __future__ import annotations

import math
from pathlib import Path

from effinrx.errors import ConfigError
from effinrx.io import atomic_write_json, check_writable
from effinrx.link.config import CHANNELS, Scenario
from effinrx.link.executor import RAY_EXTRA, RayExecutor
from effinrx.link.metrics import format_required, required_table
from effinrx.link.montecarlo import check_ebno, simulate_many
from effinrx.link.plots import plot_tbler
from effinrx.link.search import search
from effinrx.provenance import provenance


def parse_range(text: str) -> list[float]:
    """``"a:b:step"`` (inclusive of b) or ``"x,y,z"`` -> list of finite floats."""
    try:
        if ":" in text:
            a, b, s = (float(v) for v in text.split(":"))
            if not all(math.isfinite(v) for v in (a, b, s)) or s <= 0 or b < a:
                raise ValueError
            n = int(round((b - a) / s)) + 1
            if n > 1000:
                raise ValueError
            return [round(a + i * s, 6) for i in range(n)]
        out = [float(v) for v in text.split(",") if v.strip()]
        if not out:
            raise ValueError
        return out
    except ValueError:
        raise ConfigError(f"--ebno must be 'start:stop:step' (step > 0) or a comma list, got {text!r}") from None


def add_arguments(p) -> None:
    import re

    # let '--ebno -2:7:1' through: argparse would otherwise take '-2:7:1' for an option
    p._negative_number_matcher = re.compile(r"^-[\d.:,]+$")
    p.add_argument("--receiver", default="ls-lmmse",
                   help="comma-separated receiver names: ls-lmmse (ls), lmmse-kbest (lmmse), perfect-kbest "
                        "(perfect), nrx-rt, nrx-large, <nrx>-ptq-<method>, <nrx>-w8a8-int8|fp8, <nrx>-ort-fp32|int8|int8-fused "
                        "(ONNX on ONNX Runtime), or PATH.npz (checkpoint / compressed artifact); the first is the "
                        "reference of the gap column")
    p.add_argument("--weights", default="auto",
                   help="weights of nrx-rt / nrx-large: auto (reference if present, else the packaged "
                        "checkpoint, announced) | reference | packaged | PATH")
    p.add_argument("--ebno", default="-2:7:1", help="Eb/N0 points in dB (rate-adjusted), 'start:stop:step' or list")
    p.add_argument("--prbs", type=int, default=4, help="number of PRBs (NVIDIA evaluates at 132)")
    p.add_argument("--channel", default="double-tdl", choices=CHANNELS,
                   help="channel model; double-tdl is NVIDIA's evaluation channel, umi the training channel")
    p.add_argument("--num-tx", type=int, default=2, choices=(1, 2), help="number of UEs (the NRX needs 2)")
    p.add_argument("--batch", type=int, default=64, help="slots per batch (a batch carries num-tx TBs per slot)")
    p.add_argument("--max-blocks", type=int, default=2000, help="stop a point after this many TBs")
    p.add_argument("--target-errors", type=int, default=100, help="stop a point after this many TB errors")
    p.add_argument("--seed", type=int, default=0, help="seed of the slots (same seed: same slots, same counts)")
    p.add_argument("--tbler-floor", type=float, default=None,
                   help="skip a receiver's higher Eb/N0 points once its TBLER falls below this (default: off)")
    p.add_argument("--cache", type=Path, default=None,
                   help="JSON resume cache (one file holds every receiver, keyed by receiver, weights digest, "
                        "scenario, batch and seed)")
    p.add_argument("--plot", type=Path, default=None, help="PNG path (default tbler-<receiver>-<prbs>prb.png)")
    p.add_argument("--search", type=float, default=None, metavar="TBLER",
                   help="adaptive required-Eb/N0 search at this TBLER (e.g. 0.1): --ebno lo:hi:res is then the "
                        "start bracket and the resolution; prints the cost beside a fixed grid of that resolution "
                        "(default: off)")
    p.add_argument("--json", type=Path, default=None,
                   help="write the counts, the scenario and provenance to this JSON file")
    p.add_argument("--executor", choices=("serial", "ray"), default="serial",
                   help="serial (default): this process; ray: fan (Eb/N0 point x batch chunk) tasks out over "
                        "Ray workers, same counts (needs the [distributed] extra)")
    p.add_argument("--address", default=None,
                   help="with --executor ray: a running Ray cluster, HOST:6379 or auto (default: start a local "
                        "Ray on this machine)")
    p.add_argument("--workers", type=int, default=None,
                   help="with --executor ray: tasks in flight (default: every CPU of the local Ray or cluster)")
    p.add_argument("--split", choices=("point", "receiver"), default=None,
                   help="with --executor ray: one task per (Eb/N0 point, batch chunk) running every receiver "
                        "(point, default) or one per receiver as well (receiver: more, shorter tasks; same counts)")


def result_json(curves: dict, sc, args, provenance: dict, receivers: dict | None = None) -> dict:
    """The ``--json`` document (see README: scenario, provenance, one entry per receiver and point;
    ``receivers``: name -> ``rx.describe()``, where its weights came from: reference or packaged)."""
    pts = [{"receiver": n, "ebno_db": p.ebno_db, "block_errors": p.errors, "blocks": p.blocks,
            "bit_errors": p.bit_errors, "bits": p.bits, "crc_failures": p.crc_failures, "batches": p.batches}
           for n, ps in curves.items() for p in ps]
    return {"schema": 1, "scenario": sc.as_dict(),
            "run": {"batch": args.batch, "max_blocks": args.max_blocks, "target_errors": args.target_errors,
                    "seed": args.seed, "tbler_floor": args.tbler_floor, "weights": str(args.weights)},
            "provenance": provenance, "receivers": receivers or {}, "points": pts}


def label(facts: dict) -> str:
    """A receiver's name for tables and legends: ``nrx-rt (packaged checkpoint)`` where
    ``--weights auto`` fell back to our undertrained checkpoint, so it is not read as the paper's."""
    packaged = facts.get("weights_source") == "packaged"
    return f"{facts['name']} (packaged checkpoint)" if packaged else facts["name"]


def run(args) -> int:
    ebno = check_ebno(parse_range(args.ebno))
    specs = [r.strip() for r in args.receiver.split(",") if r.strip()]
    if not specs:
        raise ConfigError("--receiver is empty")
    _check_executor(args)
    dmrs = (0, 2)[: args.num_tx]
    sc = Scenario(num_prbs=args.prbs, channel=args.channel, num_tx=args.num_tx, dmrs_ports=dmrs)
    tag = specs[0] if len(specs) == 1 else f"{len(specs)}rx"
    plot = args.plot or Path(f"tbler-{Path(tag).stem}-{sc.num_prbs}prb.png")
    for path, what in ((plot, "--plot"), (args.json, "--json"), (args.cache, "--cache")):
        if path is not None:
            check_writable(path, what)  # before any work: a bad path must not cost a sweep
    from effinrx.latency.build import engine_spec, make_receiver  # registry names + the ORT deployment path

    if getattr(args, "executor", "serial") == "ray" and any(engine_spec(s) for s in specs):
        raise ConfigError("--executor ray: the ONNX Runtime receivers (*-ort-*) run in this process only; "
                          "drop --executor ray or those receivers")
    rxs = [make_receiver(s, sc, args.weights) for s in specs]  # all built first: bad input fails early
    names = [rx.name for rx in rxs]
    if len(set(names)) != len(names):
        raise ConfigError(f"--receiver names two receivers the same: {names}")
    prov = provenance(seed=args.seed, config=sc.as_dict())
    facts = {rx.name: rx.describe() for rx in rxs}
    labels = {n: label(f) for n, f in facts.items()}
    executor = _executor(args, {rx.name: s for rx, s in zip(rxs, specs)})
    searched = None
    try:
        if args.search is not None:
            searched = _search(args, rxs, sc)
            curves = {n: r.points for n, r in searched.items()}
            ebno = sorted({p.ebno_db for pts in curves.values() for p in pts})
        else:
            curves = simulate_many(rxs, sc, ebno, max_blocks=args.max_blocks, target_errors=args.target_errors,
                                   batch_size=args.batch, seed=args.seed, cache=args.cache, progress=True,
                                   tbler_floor=args.tbler_floor, executor=executor)
    except KeyboardInterrupt:
        import sys

        print(f"effinrx: interrupted; {saved_batches(args.cache)}", file=sys.stderr)
        return 130
    for rx in rxs:
        _print_table(labels[rx.name], curves[rx.name], sc)
    if args.json is not None:
        atomic_write_json(args.json, result_json(curves, sc, args, prov, facts))
        print(f"json: {args.json}")
    done = {n: [p for p in pts if p.blocks] for n, pts in curves.items()}
    if searched is not None:
        print()
        for n, r in searched.items():
            req = "not bracketed" if r.required is None else (
                f"{r.required.value:.2f} dB [{r.required.low:.2f}, {r.required.high:.2f}]")
            print(f"{n}: required Eb/N0 @TBLER {args.search:g} = {req} from {len(r.points)} points, {r.tbs} TBs, "
                  f"{r.seconds:.0f} s; a fixed grid of the same resolution needs {r.grid_points} points")
    elif len(ebno) >= 2:
        print()
        print(format_required(required_table(done, reference=names[0]), reference=names[0]))
    else:
        print("(one Eb/N0 point: no required-Eb/N0 row; give two or more points to interpolate)")
    plot_tbler({labels[n]: pts for n, pts in curves.items()}, plot,
               f"{', '.join(labels[n] for n in names)}; {sc.num_prbs} PRBs, {sc.channel}")
    print(f"plot: {plot}")
    return 0


def saved_batches(cache) -> str:
    """What an interrupted sweep has kept, read from the ``--cache`` file itself (it is written
    batch by batch, so it may hold none yet): the second half of the Ctrl-C message."""
    if cache is None:
        return "nothing was saved (use --cache to make a sweep resumable)"
    from effinrx.link.cache import load

    try:
        entries = load(Path(cache))
    except ConfigError as e:
        return f"the cache could not be read back: {e}"
    n = sum(c["batches"] for ent in entries.values() for c in ent["points"].values())
    if not n:
        return "no batch had finished: nothing was saved"
    return f"{cache} holds {n} finished batch{'' if n == 1 else 'es'}; rerun the same command to resume"


def _search(args, rxs, sc) -> dict:
    """``--search``: :func:`effinrx.link.search.search` over the ``--ebno lo:hi:res`` bracket."""
    parts = args.ebno.split(":")
    if len(parts) != 3:
        raise ConfigError(f"--search needs --ebno lo:hi:resolution, got {args.ebno!r}")
    lo, hi, res = (float(v) for v in parts)
    if args.executor != "serial":
        raise ConfigError("--search runs serially (its points depend on each other); drop --executor")
    return search(rxs, sc, target=args.search, lo=lo, hi=hi, resolution_db=res, max_blocks=args.max_blocks,
                  target_errors=args.target_errors, batch_size=args.batch, seed=args.seed, cache=args.cache)


def _check_executor(args) -> None:
    """Executor options: one-line errors before any work (Ray missing, options without ray)."""
    if getattr(args, "executor", "serial") != "ray":
        if any(getattr(args, k, None) is not None for k in ("address", "workers", "split")):
            raise ConfigError("--address, --workers and --split need --executor ray")
        return
    import importlib.util

    if importlib.util.find_spec("ray") is None:
        raise ConfigError(f"--executor ray: {RAY_EXTRA}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")


def _executor(args, specs: dict):
    """None (serial) or a RayExecutor whose workers rebuild each receiver from its spec (paths
    made absolute: workers may run in another folder)."""
    if getattr(args, "executor", "serial") != "ray":
        return None

    def absolute(s: str) -> str:
        return str(Path(s).resolve()) if s not in ("auto", "reference", "packaged") and Path(s).exists() else s

    weights = absolute(str(args.weights))
    return RayExecutor(args.address, args.workers, specs={n: absolute(s) for n, s in specs.items()}, weights=weights,
                       split=args.split or "point")


def _print_table(name, pts, sc) -> None:
    print(f"{name}, {sc.num_prbs} PRBs, {sc.channel}, {sc.num_tx} UE(s); Eb/N0 rate-adjusted")
    print(f"{'Eb/N0 dB':>8} {'errors':>7} {'blocks':>7} {'TBLER':>9} {'95% CI':>21} {'BER':>9} {'CRC fail':>8}")
    for p in pts:
        if not p.blocks:
            print(f"{p.ebno_db:8.2f}  skipped (TBLER below --tbler-floor at a lower Eb/N0)")
            continue
        lo, hi = p.interval()
        print(f"{p.ebno_db:8.2f} {p.errors:7d} {p.blocks:7d} {p.tbler:9.4f} [{lo:8.4f}, {hi:8.4f}] "
              f"{p.ber:9.2e} {p.crc_failures:8d}")
