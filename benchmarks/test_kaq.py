"""Claims K1, K2, K3/L8 (seed 003): KAQ vs standard QAT on the K=5 PGD-Net and ADMM-Net, 16x16 real
MIMO (8x8 complex), 16-QAM. Latency (K3/L8) uses the PGD-Net (exported with ORT's com.microsoft
``Inverse`` for its preconditioner; the ADMM-Net is not exported).

The experiment (fp32, QAT and KAQ at 4 and 8 bits, BER counts, convergence curves) is trained once
per session by :func:`effinrx.unfolded.experiment.run_experiment`; sizes per tier are in that module.
Goldens are the suite's own measurements; ``reproduced`` is our verdict on the paper statement.
"""
import numpy as np
import pytest

from effinrx.claims.registry import param
from effinrx.stats import one_sided_less
from effinrx.unfolded import experiment, kaq

_LAT: dict = {}


def _res(request, arch):
    return experiment.run_experiment(request.config.getoption("--tier"), request.config.getoption("--seed"),
                                     arch=arch)


@pytest.fixture(scope="module")
def res(request):
    """PGD-Net experiment (also the detector exported for K3/L8)."""
    return _res(request, "pgd")


# ADMM-Net is nightly-only (~55 s of smoke budget); smoke trains and checks the PGD-Net, same code path
ARCH = pytest.mark.parametrize("arch", ["pgd", pytest.param("admm", marks=pytest.mark.nightly)])


@pytest.mark.claim("K1")
@ARCH
@pytest.mark.parametrize("bits", [4, 8])
def test_k1_ber_kaq_vs_qat(request, arch, bits, claim_check, report_dir, report_artifact):
    """Per SNR: KAQ and QAT bit-error counts (goldens); reproduced = KAQ significantly lower
    (one-sided Fisher p < 0.05) than QAT at that SNR; 'over the SNR range' = at every SNR."""
    res = _res(request, arch)
    qat, kq = res["runs"][("qat", bits)]["ber"], res["runs"][("kaq", bits)]["ber"]
    wins = []
    for s in res["snrs_db"]:
        a, b = kq[float(s)], qat[float(s)]
        p = one_sided_less(a["errors"], a["blocks"], b["errors"], b["blocks"])
        wins.append(p < 0.05)
        claim_check(f"{arch}/qat/{bits}bit/snr={s:g}", b, kind="counts", note=f"BER {b['errors'] / b['blocks']:.4f}")
        claim_check(f"{arch}/kaq/{bits}bit/snr={s:g}", a, kind="counts", reproduced=bool(p < 0.05),
                    note=f"BER KAQ {a['errors'] / a['blocks']:.4f} vs QAT {b['errors'] / b['blocks']:.4f}, "
                         f"one-sided p={p:.3g}")
    tot_k = sum(kq[float(s)]["errors"] for s in res["snrs_db"])
    tot_q = sum(qat[float(s)]["errors"] for s in res["snrs_db"])
    n = sum(kq[float(s)]["blocks"] for s in res["snrs_db"])
    # The golden is the pooled KAQ bit-error count (a statistical check); the number of SNR points won
    # is the verdict, not a golden: each win is a p < 0.05 test, and run-to-run training noise on CPU
    # flipped it from 0 to 2 of 6 with every per-SNR count still consistent with its golden.
    claim_check(f"{arch}/summary/{bits}bit/kaq-total", {"errors": int(tot_k), "blocks": int(n)},
                kind="counts", reproduced=all(wins),
                note=f"KAQ wins {int(sum(wins))}/{len(wins)} SNR points (one-sided Fisher p < 0.05 each); "
                     f"total bit errors KAQ {tot_k} vs QAT {tot_q} of {n} bits each")
    if bits == 4:
        for p in experiment.plot(res, report_dir / "plots"):
            report_artifact(p, f"{experiment.ARCHS[arch]} K=5: BER (fp32, QAT, KAQ, ZF, LMMSE) and validation MSE per epoch "
                            f"({res['tier']} size: {res['size']['epochs']} epochs x "
                            f"{res['size']['steps_per_epoch']} steps of batch 128)")


@pytest.mark.claim("K1")
@ARCH
def test_k1_baselines_and_fp32(request, arch, claim_check):
    """ZF, LMMSE and fp32 PGD-Net BER counts at every SNR (context for K1; no paper verdict)."""
    res = _res(request, arch)
    rows = {"zf": res["baselines"]["zf"], "lmmse": res["baselines"]["lmmse"], "fp32": res["fp32"]["ber"]}
    for name, c in rows.items():
        for s in res["snrs_db"]:
            claim_check(f"{arch}/{name}/snr={s:g}", c[float(s)], kind="counts")
    # sanity that the simulation is meaningful: LMMSE beats ZF at every SNR
    for s in res["snrs_db"]:
        assert rows["lmmse"][float(s)]["errors"] < rows["zf"][float(s)]["errors"]


@pytest.mark.claim("K2")
@ARCH
@pytest.mark.parametrize("bits", [4, 8])
def test_k2_convergence(request, arch, bits, claim_check):
    """Golden: epochs until the quantised model's validation MSE <= 1.05 x the trained fp32 model's
    (``epochs + 1`` = never reached), for context. Verdict: the area under the validation-MSE curve
    (mean over epochs) of KAQ minus QAT, paired per validation vector (``kaq.convergence_gap``):
    reproduced when the interval lies below 0, not reproduced when above 0, else inconclusive. An
    epoch count alone ties whenever both cross in the same epoch (every K2 golden was a tie)."""
    res = _res(request, arch)
    runs = {m: res["runs"][(m, bits)] for m in kaq.METHODS}
    thr = 1.05 * res["fp32"]["val_mse"]
    ep = {m: kaq.epochs_to_threshold(runs[m]["val_mse"], thr) for m in kaq.METHODS}
    final = {m: runs[m]["val_mse"][-1] for m in kaq.METHODS}
    secs = {m: runs[m]["seconds"] for m in kaq.METHODS}
    assert all(np.isfinite(runs[m]["val_mse"]).all() for m in kaq.METHODS)
    claim_check(f"{arch}/epochs-to-1.05xfp32/{bits}bit", ep, kind="abs",
                note=f"threshold {thr:.4f}; final val MSE qat {final['qat']:.4f} kaq {final['kaq']:.4f}; "
                     f"CPU training s qat {secs['qat']:.1f} kaq {secs['kaq']:.1f}")
    gap = kaq.convergence_gap(runs["kaq"], runs["qat"], alpha=param("K2", "alpha"))
    verdict = True if gap["hi"] < 0 else False if gap["lo"] > 0 else None
    why = ("" if verdict is not None else
           "; inconclusive: the interval contains 0 (validation sampling only; more epochs, a larger "
           "validation set or a seed sweep would decide)")
    claim_check(f"{arch}/val-mse-auc/{bits}bit", {"decided": verdict is not None}, kind="verdict",
                reproduced=verdict,
                note=f"mean validation MSE over {gap['epochs']} epochs KAQ {gap['auc_a']:.5f} vs QAT "
                     f"{gap['auc_b']:.5f}: KAQ - QAT {gap['diff']:+.5f} [{gap['lo']:+.5f}, {gap['hi']:+.5f}] "
                     f"({100 * (1 - param('K2', 'alpha')):.0f} %, {gap['vectors']} paired vectors); epochs to "
                     f"1.05 x fp32 qat {ep['qat']} kaq {ep['kaq']}" + why)


@pytest.fixture(scope="module")
def onnx_models(res, tmp_path_factory):
    from effinrx.unfolded import export

    d = tmp_path_factory.mktemp("kaq_onnx")
    f32 = export.export_fp32(res["fp32"]["net"], res["cfg"], d / "pgdnet_fp32.onnx")
    i8 = export.quantize_int8(f32, d / "pgdnet_int8.onnx", res["cfg"])
    return {"fp32": f32, "int8": i8}


@pytest.mark.claim("K3", "L8")
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_k3_l8_ort_cpu_latency(res, onnx_models, precision, benchmark, claim_check):
    """ORT CPU (1 thread) latency of one batch of 1024 detections; reproduced (int8 row) = fp32/int8
    >= 1.1 (paper: ~20% faster). The int8 graph is ORT static QDQ on the MatMuls."""
    from effinrx.unfolded import export, mimo

    batch = 1024
    d = mimo.to_numpy(mimo.generate(res["cfg"], batch, (10.0, 10.0), seed=3))
    sess = export.session(onnx_models[precision], threads=1)
    x_fp = res["fp32"]["net"](d["y"], d["h"], d["snr_db"]).numpy()
    x = export.run(sess, d["y"], d["h"], d["snr_db"])
    # the exported detector must agree with the TF model (int8: at most a few symbols flip)
    flips = float(np.mean(mimo.slice_pam(x) != mimo.slice_pam(x_fp)))
    assert flips <= (0.0 if precision == "fp32" else 0.05), f"{precision} ONNX symbol flips {flips:.4f}"
    rounds = 30 if res["tier"] == "smoke" else 200
    benchmark.pedantic(export.run, args=(sess, d["y"], d["h"], d["snr_db"]), rounds=rounds, iterations=1, warmup_rounds=3)
    from effinrx.engines.ort import time_beside_probe

    # detector and machine speed probe timed alternately (goldens compare latency / probe)
    t = time_beside_probe(lambda: export.run(sess, d["y"], d["h"], d["snr_db"]), threads=1, n=rounds, warmup=3)
    m = {"median_ms": t["median_ms"], "min_ms": t["min_ms"], "batch": batch, "threads": 1,
         "probe_ms": t["probe_ms"]}
    _LAT[precision] = m["median_ms"]
    ops = export.op_counts(onnx_models[precision])
    for cid in ("K3", "L8"):
        top = ", ".join(f"{k} {n}" for k, n in sorted(ops.items(), key=lambda kv: -kv[1])[:4])
        rep, note = None, f"ops: {sum(ops.values())} nodes ({top}{', ...' if len(ops) > 4 else ''})"
        if precision == "int8" and "fp32" in _LAT:
            ratio = _LAT["fp32"] / m["median_ms"]
            rep = ratio >= 1.1
            note = f"speed-up fp32/int8 = {ratio:.2f}x (paper ~1.2x); " + note
        claim_check(f"ort-cpu/{precision}/batch={batch}", m, kind="latency", reproduced=rep, note=note,
                    claim=cid)
