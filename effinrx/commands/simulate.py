"""``effinrx simulate``: TBLER sweep of a classical baseline; prints a table with 95 % intervals and
writes a PNG. Example: ``effinrx simulate --receiver lmmse --ebno -2:7:1 --prbs 4``."""
from __future__ import annotations

from pathlib import Path

from effinrx.errors import ConfigError

HELP = "TBLER vs Eb/N0 of a baseline receiver (table with intervals + PNG)"


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
                   help="ls-lmmse (ls), lmmse-kbest (lmmse), perfect-kbest (perfect)")
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
    p.add_argument("--cache", type=Path, default=None, help="JSON cache (resumes an interrupted sweep)")
    p.add_argument("--plot", type=Path, default=None, help="PNG path (default tbler-<receiver>-<prbs>prb.png)")


def run(args) -> int:
    from effinrx.link.config import Scenario
    from effinrx.link.montecarlo import simulate
    from effinrx.link.plots import plot_tbler
    from effinrx.receivers.classical import make

    ebno = parse_range(args.ebno)
    dmrs = (0, 2)[: args.num_tx]
    sc = Scenario(num_prbs=args.prbs, channel=args.channel, num_tx=args.num_tx, dmrs_ports=dmrs)
    rx = make(args.receiver, sc)
    pts = simulate(rx, sc, ebno, max_blocks=args.max_blocks, target_errors=args.target_errors,
                   batch_size=args.batch, seed=args.seed, cache=args.cache, progress=True,
                   tbler_floor=args.tbler_floor)
    print(f"{rx.name}, {sc.num_prbs} PRBs, {sc.channel}, {sc.num_tx} UE(s); Eb/N0 rate-adjusted")
    print(f"{'Eb/N0 dB':>8} {'errors':>7} {'blocks':>7} {'TBLER':>9} {'95% CI':>21} {'BER':>9}")
    for p in pts:
        if not p.blocks:
            print(f"{p.ebno_db:8.2f}  skipped (TBLER below --tbler-floor at a lower Eb/N0)")
            continue
        lo, hi = p.interval() if p.blocks else (float("nan"), float("nan"))
        print(f"{p.ebno_db:8.2f} {p.errors:7d} {p.blocks:7d} {p.tbler:9.4f} [{lo:8.4f}, {hi:8.4f}] {p.ber:9.2e}")
    out = args.plot or Path(f"tbler-{rx.name}-{sc.num_prbs}prb.png")
    plot_tbler({rx.name: pts}, out, f"{rx.name}, {sc.num_prbs} PRBs, {sc.channel}")
    print(f"plot: {out}")
    return 0
