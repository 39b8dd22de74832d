"""``effinrx kaq``: train PGD-Net in fp32, with standard QAT and with KAQ; print the BER table,
convergence and (optionally) the ONNX Runtime fp32 vs int8 latency; write plots and a JSON summary."""
from __future__ import annotations

from pathlib import Path

from effinrx.errors import ConfigError
from effinrx.export import mimo_onnx
from effinrx.io import atomic_write_json, check_writable
from effinrx.quant import kaq
from effinrx.training import kaq_experiment


def add_arguments(p) -> None:
    p.add_argument("--tier", choices=("smoke", "nightly", "paper"), default="smoke",
                   help="training/evaluation size (see effinrx.training.kaq_experiment)")
    p.add_argument("--seed", type=int, default=42, help="seed of data, init and training")
    p.add_argument("--arch", choices=("pgd", "admm"), default="pgd", help="PGD-Net or ADMM-Net (K=5)")
    p.add_argument("--out", type=Path, default=Path("reports/kaq"), help="folder for plots, ONNX and JSON")
    p.add_argument("--latency", action="store_true", help="also export to ONNX and time fp32 vs int8 on ORT CPU")
    p.add_argument("--batch", type=int, default=1024, help="batch size of the latency measurement")


def run(args) -> int:
    if args.batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {args.batch}")
    if args.latency and args.arch != "pgd":
        raise ConfigError("--latency is implemented for --arch pgd only (ADMM-Net's per-sample linear "
                          "solve has no ONNX operator)")

    out = Path(args.out)
    check_writable(out, "--out", kind="dir")
    for name in (f"kaq_{args.arch}_summary.json", "kaq_ber.png", "kaq_convergence.png"):
        check_writable(out / name, "--out")
    res = kaq_experiment.run_experiment(args.tier, args.seed, progress=True, arch=args.arch)
    print(kaq_experiment.ber_table(res))
    thr = res["fp32"]["val_mse"] * 1.05
    summary = {"arch": args.arch, "tier": args.tier, "seed": args.seed, "size": res["size"], "fp32_val_mse": res["fp32"]["val_mse"],
               "fp32_seconds": res["fp32"]["seconds"], "fp32_params": res["fp32"]["net"].describe(), "runs": {}}
    print(f"\nconvergence: epochs to validation MSE <= {thr:.4f} (1.05 x fp32)")
    for (m, b), r in res["runs"].items():
        ep = kaq.epochs_to_threshold(r["val_mse"], thr)
        print(f"  {m:3s} {b}-bit: {ep} epochs, final val MSE {r['val_mse'][-1]:.4f}, {r['seconds']:.1f} s")
        summary["runs"][f"{m}-{b}"] = {"ber": r["ber"], "val_mse": r["val_mse"], "seconds": r["seconds"],
                                       "epochs_to_threshold": ep, "quant": r["quant"].describe()}
    for b in sorted({b for _, b in res["runs"]}):
        g = kaq.convergence_gap(res["runs"][("kaq", b)], res["runs"][("qat", b)])
        summary[f"convergence_gap_{b}bit"] = g
        print(f"  {b}-bit: mean validation MSE over the epochs, KAQ - QAT {g['diff']:+.5f} "
              f"[{g['lo']:+.5f}, {g['hi']:+.5f}] (95 %, {g['vectors']} paired vectors)")
    # the numbers first: a plot or the ONNX/latency step failing late must not lose the training
    summary_path = atomic_write_json(out / f"kaq_{args.arch}_summary.json", summary)
    print(f"summary: {summary_path}")
    for p in kaq_experiment.plot(res, out):
        print(f"plot: {p}")
    if args.latency:
        f32 = mimo_onnx.export_fp32(res["fp32"]["net"], res["cfg"], out / "pgdnet_fp32.onnx")
        i8 = mimo_onnx.quantize_int8(f32, out / "pgdnet_int8.onnx", res["cfg"])
        lat = {n: mimo_onnx.time_ort(p, res["cfg"], args.batch) for n, p in (("fp32", f32), ("int8", i8))}
        summary["latency"] = lat
        print(f"ORT CPU batch {args.batch}: fp32 {lat['fp32']['median_ms']:.3f} ms, int8 "
              f"{lat['int8']['median_ms']:.3f} ms, speed-up {lat['fp32']['median_ms'] / lat['int8']['median_ms']:.2f}x")
        atomic_write_json(summary_path, summary)
        print(f"summary (with latency): {summary_path}")
    return 0
