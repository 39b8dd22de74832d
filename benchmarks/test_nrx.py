"""NRX reproduction check with the reference weights (fp32 rows of Q1 / Q4) and forward latency.

TBLER: NRX-RT and NRX-Large (reference weights, fp32) vs LS/lin+LMMSE through the one engine
(:mod:`effinrx.link.sweep` -> ``effinrx.link.montecarlo.simulate_many``) on NVIDIA's evaluation
scenario (default ``Scenario``: 4 PRBs, 2 UEs, MCS 14, DoubleTDL: TDL-B100 400 Hz / TDL-C300 100 Hz,
no per-slot normalisation), every receiver on the same slots. Goldens are TB error counts per
Eb/N0 (keys ``<receiver>/ebno=<x>``), each recording the ``effinrx simulate`` command that gives
the same counts. The notes say whether the NRX has significantly fewer TB errors than
LS/lin+LMMSE (pooled one-sided Fisher p < 0.01); the claims themselves (fp16 vs LMMSE+K-best) are
judged in benchmarks/test_quantized_tbler*.py, so these rows leave ``reproduced`` unset.

Latency: batch-1 forward of the CGNN in TF eager, TF graph (tf.function), TF XLA (jit_compile) and
ONNX Runtime CPU. These are CPU numbers of this machine, reported in pytest-benchmark; no paper
claim is checked.
"""
import functools

import numpy as np
import pytest

from effinrx.link import sweep
from effinrx.stats import one_sided_less

pytestmark = pytest.mark.reference_weights

MODELS = {"nrx-rt": "Q1", "nrx-large": "Q4"}
LINK_SIZES = {"smoke": {"ebno": [2.0, 4.0], "max_blocks": 192, "batch": 32},
              "nightly": {"ebno": [-2.0, 0.0, 2.0, 4.0, 6.0], "max_blocks": 1024, "batch": 32},
              "paper": {"ebno": [float(e) for e in range(-2, 9)], "max_blocks": 4096, "batch": 32}}


@functools.lru_cache(maxsize=None)
def _receivers():
    from effinrx.receivers.nrx import NRXReceiver

    return {m: NRXReceiver(m, "reference") for m in MODELS}


def _tier(request):
    return request.config.getoption("--tier")


@pytest.mark.parametrize("model", list(MODELS))
def test_tbler_link_eval_channel(request, model, claim_check, report_dir, report_artifact, golden_background):
    tier, seed = _tier(request), request.config.getoption("--seed")
    sz = LINK_SIZES[tier]
    names = [model, "ls-lmmse"] + (["lmmse-kbest"] if tier != "smoke" else [])  # K-best: too slow for smoke
    curves, cmd = sweep.counts(names, ebno=sz["ebno"], batch=sz["batch"], max_blocks=sz["max_blocks"], seed=seed)
    nrx, ls = curves[model], curves["ls-lmmse"]
    (ea, na), (eb, nb) = sweep.pool(nrx), sweep.pool(ls)
    assert na == nb > 0 and eb > 0, (nrx, ls)
    p_all = one_sided_less(ea, na, eb, nb)
    won = bool(p_all < 0.01)
    claim = MODELS[model]
    meta = {"command": cmd}
    for a, b in zip(nrx, ls):
        p = one_sided_less(a.errors, a.blocks, b.errors, b.blocks)
        lo, hi = a.interval()
        claim_check(f"{model}/fp32/ebno={a.ebno_db:g}", sweep.as_counts(a), kind="counts", claim=claim,
                    reproduced=None, meta=meta,
                    note=f"DoubleTDL: TBLER {a.tbler:.3f} [{lo:.3f}, {hi:.3f}] vs LS/lin+LMMSE {b.tbler:.3f} "
                         f"(one-sided p={p:.2g}); pooled {ea}/{na} vs {eb}/{nb}, p={p_all:.2g}; "
                         f"fp32 beats LS/lin+LMMSE (pooled p<0.01): {'yes' if won else 'no'}; "
                         f"the claim itself (fp16 vs LMMSE+K-best) is judged in test_quantized_tbler*")
        claim_check(f"ls-lmmse/fp32/ebno={b.ebno_db:g}", sweep.as_counts(b), kind="counts", claim=claim,
                    meta=meta, note=f"baseline LS/lin+LMMSE TBLER {b.tbler:.3f}")
    if "lmmse-kbest" in curves:
        for a, c in zip(nrx, curves["lmmse-kbest"]):
            claim_check(f"lmmse-kbest/fp32/ebno={c.ebno_db:g}", sweep.as_counts(c), kind="counts", claim=claim,
                        meta=meta, note=f"LMMSE+K-best TBLER {c.tbler:.3f} vs {model} fp32 {a.tbler:.3f}")
    from effinrx.link.plots import plot_tbler

    out = report_dir / "plots" / f"nrx_tbler_{model}_link.png"
    # the higher tier's curves underneath (smoke has no K-best: the nightly one is drawn there)
    bg, bg_tier = golden_background(claim, {n: f"{n}/fp32" for n in (model, "ls-lmmse", "lmmse-kbest")})
    plot_tbler(curves, out, f"{model} fp32 (reference weights) vs baselines; 4 PRBs, DoubleTDL, 2 UEs",
               background=bg, background_label=f"{bg_tier} golden")
    report_artifact(out, f"TBLER with 95 % intervals, reference weights, 4 PRBs DoubleTDL (NVIDIA's evaluation "
                         f"channel), 2 UEs, MCS 14, {sz['max_blocks']} TBs per point; reproduce: {cmd}",
                    claim=claim)


# ---------------------------------------------------------------- latency -----
def _inputs(prbs, seed=0):
    from effinrx.export.onnx import io_shapes

    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s).astype(np.float32) for k, s in io_shapes(prbs).items() if k != "llr"}


@functools.lru_cache(maxsize=None)
def _onnx(model, prbs, folder):
    from effinrx.export.onnx import export_nrx_onnx

    return export_nrx_onnx(model, _receivers()[model].net, prbs, f"{folder}/{model}_{prbs}prb.onnx")


def _prbs(request):
    return [4] if _tier(request) == "smoke" else [4, 132]


@pytest.mark.parametrize("prbs", [4, pytest.param(132, marks=pytest.mark.nightly)])
@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("engine", ["tf-eager", "tf-graph", "tf-xla", "ort-cpu"])
def test_forward_latency(benchmark, tmp_path_factory, model, engine, prbs):
    from effinrx.export.onnx import make_tf_wrapper, ort_session

    if engine == "tf-eager" and model == "nrx-large" and prbs == 132:
        pytest.skip("eager Large at 132 PRBs is minutes on 2 CPU cores; graph and ORT numbers cover it")
    net = _receivers()[model].net
    inp = _inputs(prbs)
    if engine == "ort-cpu":
        sess = ort_session(_onnx(model, prbs, str(tmp_path_factory.getbasetemp())))
        fn = lambda: sess.run(["llr"], inp)[0]
    else:
        from effinrx._tf import tf

        g = make_tf_wrapper(net, prbs)
        f = {"tf-eager": g.python_function, "tf-graph": g,
             "tf-xla": tf().function(g.python_function, jit_compile=True)}[engine]
        fn = lambda: f(**inp).numpy()
    out = benchmark.pedantic(fn, rounds=5 if prbs == 4 else 3, iterations=1, warmup_rounds=1)
    assert out.shape == (1, 2, 12 * prbs, 14, 4) and np.all(np.isfinite(out))
    benchmark.extra_info.update({"model": model, "engine": engine, "prbs": prbs, "batch": 1,
                                 "params": int(net.count_params())})


@pytest.mark.nightly
@pytest.mark.parametrize("model", list(MODELS))
def test_tbler_own_checkpoint(request, model, claim_check):
    """Our own checkpoint (effinrx/data/<model>.npz, trained by 'effinrx train') vs the reference
    weights on the same slots; counts recorded, no paper verdict (these are not the paper's weights)."""
    from effinrx.receivers.nrx import packaged_weights_path

    path = packaged_weights_path(model)
    if not path.is_file():
        pytest.skip(f"no packaged checkpoint {path} (train with 'effinrx train --package')")
    sz = LINK_SIZES["nightly"]
    curves, cmd = sweep.counts([str(path), model], ebno=sz["ebno"], batch=sz["batch"], max_blocks=256,
                               seed=request.config.getoption("--seed"))
    own = curves[next(n for n in curves if n != model)]
    for a, b in zip(own, curves[model]):
        claim_check(f"fp32/{model}-own-checkpoint/ebno={a.ebno_db:g}", sweep.as_counts(a), kind="counts",
                    claim=MODELS[model], meta={"command": cmd},
                    note=f"own checkpoint TBLER {a.tbler:.3f} vs reference weights {b.tbler:.3f}")
