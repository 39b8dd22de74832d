"""``effinrx simulate``: TBLER vs Eb/N0 of one or more receivers on the same seeded slots; prints a
table with 95 % intervals per receiver, the required Eb/N0 at TBLER 10 % (with interval, gap to the
first receiver), and writes one PNG with every curve.

Receivers (comma-separated): the baselines ``ls-lmmse`` (``ls``), ``lmmse-kbest`` (``lmmse``),
``perfect-kbest`` (``perfect``); the NRX ``nrx-rt`` / ``nrx-large`` with ``--weights``; or a
checkpoint / compressed-model artifact ``PATH.npz`` (``effinrx compress``, ``effinrx prune``,
``effinrx train``), which runs exactly as saved (W8A8 with its saved activation scales).
Example: ``effinrx simulate --receiver ls,nrx-rt,rt-int8.npz --ebno -2:7:1``.
"""
from __future__ import annotations

from pathlib import Path

from effinrx.errors import ConfigError
from effinrx.receivers.nrx_layers import NRX_MODELS

HELP = "TBLER vs Eb/N0 of baselines, the NRX or compressed artifacts on the same slots (table + PNG)"


def parse_range(text: str) -> list[float]:
    """``"a:b:step"`` (inclusive of b) or ``"x,y,z"`` -> list of floats."""
    try:
        if ":" in text:
            a, b, s = (float(v) for v in text.split(":"))
            if s <= 0 or b < a:
                raise ValueError
            n = int(round((b - a) / s)) + 1
            return [round(a + i * s, 6) for i in range(n)]
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--ebno must be 'start:stop:step' (step > 0) or a comma list, got {text!r}") from None


def add_arguments(p) -> None:
    import re

    # let '--ebno -2:7:1' through: argparse would otherwise take '-2:7:1' for an option
    p._negative_number_matcher = re.compile(r"^-[\d.:,]+$")
    p.add_argument("--receiver", default="ls-lmmse",
                   help="comma-separated: ls-lmmse (ls), lmmse-kbest (lmmse), perfect-kbest (perfect), "
                        "nrx-rt, nrx-large, or PATH.npz (checkpoint / compressed artifact); the first "
                        "is the reference of the gap column")
    p.add_argument("--weights", default="auto",
                   help="weights of nrx-rt / nrx-large: auto | reference | packaged | PATH")
    p.add_argument("--ebno", default="-2:7:1", help="Eb/N0 points in dB, 'start:stop:step' or list")
    p.add_argument("--prbs", type=int, default=4)
    p.add_argument("--channel", default="tdl-pair")
    p.add_argument("--num-tx", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--max-blocks", type=int, default=2000)
    p.add_argument("--target-errors", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tbler-floor", type=float, default=None,
                   help="skip the higher Eb/N0 points once a point's TBLER falls below this")
    p.add_argument("--cache", type=Path, default=None,
                   help="JSON cache (resumes an interrupted sweep; one file holds every receiver, keyed by "
                        "receiver, weights digest, scenario, batch and seed)")
    p.add_argument("--plot", type=Path, default=None, help="PNG path (default tbler-<receiver>-<prbs>prb.png)")


def _receiver(spec: str, sc, weights: str):
    """Build one receiver from a ``--receiver`` item (see the module docstring)."""
    from effinrx.receivers import classical

    if spec in NRX_MODELS or spec.endswith(".npz"):
        if sc.num_tx != 2:
            raise ConfigError(f"receiver {spec!r}: the NRX is built for 2 UEs; use --num-tx 2")
        from effinrx.receivers.nrx import NRXReceiver

        if spec in NRX_MODELS:
            return NRXReceiver(spec, weights, num_prbs=sc.num_prbs, num_tx=sc.num_tx)
        from effinrx import compress as C

        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"receiver {spec!r}: file not found")
        if C.is_artifact(path):
            return C.artifact_receiver(path, num_prbs=sc.num_prbs)
        from effinrx import weights as W

        ws, meta = W.load_npz(path)
        model = (meta.get("config") or {}).get("name")
        if model not in NRX_MODELS:
            raise ConfigError(f"receiver {spec!r}: sidecar has no NRX config (key 'config.name')")
        return NRXReceiver(model, ws, num_prbs=sc.num_prbs, num_tx=sc.num_tx, name=path.stem)
    return classical.make(spec, sc)


def run(args) -> int:
    from effinrx.link.config import Scenario
    from effinrx.link.metrics import format_required, required_table
    from effinrx.link.montecarlo import simulate
    from effinrx.link.plots import plot_tbler

    ebno = parse_range(args.ebno)
    specs = [r.strip() for r in args.receiver.split(",") if r.strip()]
    if not specs:
        raise ConfigError("--receiver is empty")
    dmrs = (0, 2)[: args.num_tx]
    sc = Scenario(num_prbs=args.prbs, channel=args.channel, num_tx=args.num_tx, dmrs_ports=dmrs)
    rxs = [_receiver(s, sc, args.weights) for s in specs]  # all built first: bad input fails early
    names = [rx.name for rx in rxs]
    if len(set(names)) != len(names):
        raise ConfigError(f"--receiver names two receivers the same: {names}")
    curves = {}
    for rx in rxs:
        # same seed for every receiver: the same slots, so the curves are paired
        curves[rx.name] = pts = simulate(rx, sc, ebno, max_blocks=args.max_blocks,
                                         target_errors=args.target_errors, batch_size=args.batch,
                                         seed=args.seed, cache=args.cache,
                                         progress=True, tbler_floor=args.tbler_floor)
        print(f"{rx.name}, {sc.num_prbs} PRBs, {sc.channel}, {sc.num_tx} UE(s); Eb/N0 rate-adjusted")
        print(f"{'Eb/N0 dB':>8} {'errors':>7} {'blocks':>7} {'TBLER':>9} {'95% CI':>21} {'BER':>9}")
        for p in pts:
            if not p.blocks:
                print(f"{p.ebno_db:8.2f}  skipped (TBLER below --tbler-floor at a lower Eb/N0)")
                continue
            lo, hi = p.interval()
            print(f"{p.ebno_db:8.2f} {p.errors:7d} {p.blocks:7d} {p.tbler:9.4f} [{lo:8.4f}, {hi:8.4f}] {p.ber:9.2e}")
    done = {n: [p for p in pts if p.blocks] for n, pts in curves.items()}
    print()
    print(format_required(required_table(done, reference=names[0]), reference=names[0]))
    tag = names[0] if len(names) == 1 else f"{len(names)}rx"
    out = args.plot or Path(f"tbler-{tag}-{sc.num_prbs}prb.png")
    plot_tbler(curves, out, f"{', '.join(names)}; {sc.num_prbs} PRBs, {sc.channel}")
    print(f"plot: {out}")
    return 0

