"""``effinrx deeprx``: the DeepRx-style ResNet receiver. ``sizes`` prints the exact weight-storage
table of weight-only PTQ formats for a given width/depth/grid; ``train`` needs the link scenario."""
from __future__ import annotations

from effinrx.errors import ConfigError, NotAvailableError

HELP = "DeepRx-style ResNet receiver: train, PTQ, BLER per mobility class"


def add_arguments(p) -> None:
    p.add_argument("action", choices=("sizes", "train"), help="sizes: PTQ byte table; train: train + PTQ + BLER")
    p.add_argument("--width", type=int, default=128, help="channels (paper 128)")
    p.add_argument("--depth", type=int, default=8, help="residual blocks (paper 8)")
    p.add_argument("--prbs", type=int, default=4, help="PRBs (12 subcarriers each) of the grid")


def run(args) -> int:
    from effinrx.receivers import deeprx, deeprx_quant

    if args.width < 1 or args.depth < 0 or args.prbs < 1:
        raise ConfigError(f"need --width >= 1, --depth >= 0, --prbs >= 1; got {args.width}, {args.depth}, {args.prbs}")
    if args.action == "train":
        try:
            import effinrx.link.scenario  # noqa: F401
        except ImportError as e:
            raise NotAvailableError(f"deeprx train needs the SIMO CDL link scenario (effinrx.link): {e}") from e
        raise NotAvailableError("deeprx train is not wired to effinrx.link yet (issue 7)")
    grid = (14, 12 * args.prbs)
    m = deeprx.build_deeprx(grid, args.width, args.depth)
    print(f"DeepRx width {args.width}, depth {args.depth}, grid {grid}: {m.count_params():,} parameters")
    print("| format | kernel bytes | scale bytes | float bytes (bias+LayerNorm) | total bytes | "
          "kernel ratio | total ratio |")
    print("|---|---|---|---|---|---|---|")
    for fmt in deeprx_quant.FORMATS:
        s = deeprx_quant.storage_bytes(m, fmt)
        print(f"| {fmt} | {s['kernel_bytes']:,} | {s['scale_bytes']:,} | {s['float_bytes']:,} | "
              f"{s['total_bytes']:,} | {s['ratio_kernels']:.2f}x | {s['ratio_total']:.2f}x |")
    return 0
