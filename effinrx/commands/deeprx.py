"""``effinrx deeprx``: the DeepRx-style ResNet receiver. ``sizes`` prints the exact weight-storage
table of weight-only PTQ formats for a given width/depth/grid; ``train`` trains a DeepRx on the SIMO
CDL link (:mod:`effinrx.training.deeprx`, progress bar) and writes ``deeprx-<w>x<d>.npz`` +
``.json`` sidecar (default into ``effinrx/data``)."""
from __future__ import annotations

from effinrx.errors import ConfigError
from effinrx.io import check_writable
from effinrx.quant import deeprx as deeprx_quant
from effinrx.receivers import deeprx
from effinrx.training.deeprx import Recipe, shipped_path, train_and_save


def add_arguments(p) -> None:
    p.add_argument("action", choices=("sizes", "train"),
                   help="sizes: PTQ byte table; train: train on the SIMO CDL link and save the checkpoint")
    p.add_argument("--width", type=int, default=None, help="channels (paper 128; train default 32)")
    p.add_argument("--depth", type=int, default=None, help="residual blocks (paper 8; train default 4)")
    p.add_argument("--prbs", type=int, default=4, help="PRBs (12 subcarriers each) of the grid")
    p.add_argument("--steps", type=int, default=3000, help="train: Adam steps (cosine LR decay over them)")
    p.add_argument("--batch-size", type=int, default=32, help="train: slots per step")
    p.add_argument("--lr", type=float, default=2e-3, help="train: initial learning rate")
    p.add_argument("--max-minutes", type=float, default=25.0, help="train: stop after this wall time")
    p.add_argument("--lr-end", type=float, default=None, help="train: final learning rate of the cosine "
                   "decay (default: min(1e-4, --lr))")
    p.add_argument("--snr-db", default="-2,15", help="train: SNR range LO,HI (dB) drawn uniformly per slot")
    p.add_argument("--init", default=None, help="train: start from this DeepRx checkpoint (.npz of the same "
                   "width/depth/grid, e.g. a -partial.npz of a stopped run) instead of random weights")
    p.add_argument("--seed", type=int, default=7, help="train: seed of channels, bits, noise, init")
    p.add_argument("--out", default=None, help="train: output .npz (default effinrx/data/deeprx-<w>x<d>.npz)")


def run(args) -> int:
    train = args.action == "train"
    width = args.width if args.width is not None else (32 if train else deeprx.PAPER_WIDTH)
    depth = args.depth if args.depth is not None else (4 if train else deeprx.PAPER_DEPTH)
    if width < 1 or depth < 0 or args.prbs < 1:
        raise ConfigError(f"need --width >= 1, --depth >= 0, --prbs >= 1; got {width}, {depth}, {args.prbs}")
    if train:
        from pathlib import Path

        out = Path(args.out) if args.out else shipped_path(width, depth)
        base = out.with_suffix("") if out.suffix == ".npz" else out
        for sfx in (".npz", ".json"):  # written after the training (up to --max-minutes)
            check_writable(base.with_name(base.name + sfx), "--out")

        try:
            snr = tuple(float(x) for x in args.snr_db.split(","))
        except ValueError:
            raise ConfigError(f"--snr-db must be LO,HI in dB, got {args.snr_db!r}") from None
        if len(snr) != 2:
            raise ConfigError(f"--snr-db must be LO,HI in dB, got {args.snr_db!r}")
        init = None if args.init is None else Path(args.init)
        if init is not None and not (init if init.suffix == ".npz" else init.with_name(init.name + ".npz")).is_file():
            raise ConfigError(f"--init: checkpoint {args.init} does not exist")
        lr_end = min(1e-4, args.lr) if args.lr_end is None else args.lr_end
        recipe = Recipe(width=width, depth=depth, num_prbs=args.prbs, batch_size=args.batch_size,
                        steps=args.steps, lr=args.lr, lr_end=lr_end, seed=args.seed,
                        max_minutes=args.max_minutes, snr_db=snr, init=args.init)
        path, meta = train_and_save(recipe, args.out, progress=True)
        print(f"wrote {path} (+ .json): {meta['steps']} steps in {meta['train_seconds_wall']:.0f} s, "
              f"BCE {meta['bce_first100']:.4f} (first 100) -> {meta['bce_last100']:.4f} (last 100)")
        return 0
    grid = (14, 12 * args.prbs)
    m = deeprx.build_deeprx(grid, width, depth)
    print(f"DeepRx width {width}, depth {depth}, grid {grid}: {m.count_params():,} parameters")
    print("| format | kernel bytes | scale bytes | float bytes (bias+LayerNorm) | total bytes | "
          "kernel ratio | total ratio |")
    print("|---|---|---|---|---|---|---|")
    for fmt in deeprx_quant.FORMATS:
        s = deeprx_quant.storage_bytes(m, fmt)
        print(f"| {fmt} | {s['kernel_bytes']:,} | {s['scale_bytes']:,} | {s['float_bytes']:,} | "
              f"{s['total_bytes']:,} | {s['ratio_kernels']:.2f}x | {s['ratio_total']:.2f}x |")
    return 0
