"""Large -> RT distillation (claim D1): a RT student distilled from the NRX-Large teacher (reference
weights, frozen) vs the same RT trained alone, at RT latency.

Method (``effinrx.training.distill``): one shared start, NVIDIA's RT weights degraded by seeded Gaussian
noise (``distill.weakened_start``, ``start_noise`` x each array's std, drawn from ``--seed``): from a
random init the CPU budget left both students at TBLER ~1 (511/512, saturated), which decides
nothing. Two copies of the start are trained with the
same :class:`~effinrx.training.nrx.TrainRecipe` (same seed, so the same slots, Eb/N0 and active-UE draws):
"alone" with the reference loss (BCE + 0.02 x channel MSE), "distilled" with
``0.5 x BCE + 0.5 x T^2 KL(teacher || student)`` (T = 1) + the same channel MSE (training on UMi
slots). Both are then evaluated, with the teacher as a reference, on the same held-out slots of the
evaluation scenario (NVIDIA's DoubleTDL, 2 UEs, an engine seed the training never uses) by the
Monte-Carlo engine (``distill.evaluate`` = ``simulate_many`` with LLRs): per-TB BCE and TB error
counts (any wrong information bit) after the LDPC decoder.

Verdicts (D1 says "beats", our reading fixed before measuring):
* TBLER: paired per-TB test on the same slots (exact McNemar, ``effinrx.stats.beats_verdict``,
  margin 10 %); both students saturated (TBLER >= 0.95) -> inconclusive;
* BCE: one-sided paired Wilcoxon test over the same TBs at p < 0.01 AND a mean reduction of at
  least 1 % (a statistically detectable but negligible gain is not "beats").
"At RT latency": the student has RT's architecture, hence RT's parameter count and FLOPs; asserted.
The training budgets are tiny next to the reference recipe (nightly: a few hundred steps; the
module is nightly-only), so "not reproduced" here says the gain does not show at these budgets, nothing more.
Goldens: counts, mean BCE (abs tolerance 0.02: CPU training is not bit-reproducible across
machines), the same-first-batch check and the parameter counts.
"""
import functools

import numpy as np
import pytest

from effinrx.claims.registry import param
from effinrx.stats import one_sided_less

# nightly-only (~60 s of smoke budget): smoke covers distillation with tests/test_distill_units.py
# (frozen teacher, total loss, one CLI step); a 10-step distillation decides nothing about D1
pytestmark = [pytest.mark.claim("D1"), pytest.mark.nightly,
              pytest.mark.reference_weights]

SIZES = {"nightly": {"steps": 300, "batch": 16, "ebno": 4.0, "eval_batches": 8, "eval_batch": 32},
         "paper": {"steps": 3000, "batch": 16, "ebno": 4.0, "eval_batches": 32, "eval_batch": 32}}
START_NOISE = param("D1", "start_noise")  # degradation of the shared start (golden/claims.toml)
ALPHA = param("D1", "alpha")
MIN_BCE_GAIN = param("D1", "min_bce_gain")  # relative; a BCE gain that counts (golden/claims.toml)
MARGIN = param("D1", "margin")  # "beats" in TBLER: smallest win (effinrx.stats.beats_verdict)
BCE_TOL = 0.02  # nats, golden tolerance of a mean held-out BCE


@functools.lru_cache(maxsize=None)
def _run(tier: str, seed: int, folder: str):
    from effinrx.receivers.nrx import NRXReceiver, load_model
    from effinrx.training.distill import DistillConfig, evaluate, train_pair, weakened_start
    from effinrx.training.nrx import TrainRecipe

    sz = SIZES[tier]
    # the paper tier's hours of training checkpoint every 100 steps and resume exactly (per-step data
    # seeds, Adam state): a stopped run continues from $EFFINRX_TRAIN_DIR and ends with the weights
    # of an unbroken one; nightly keeps the default data stream its goldens were trained on
    exact = tier == "paper"
    recipe = TrainRecipe(model="nrx-rt", steps=sz["steps"], batch_size=sz["batch"], seed=seed,
                         log_every=1, ckpt_every=100 if exact else sz["steps"], exact_resume=exact)
    start = weakened_start("nrx-rt", START_NOISE, seed)
    pair = train_pair(recipe, DistillConfig(), folder, init=start, resume=exact)
    rxs = {n: NRXReceiver("nrx-rt", net=pair[n]["net"], num_prbs=4, name=f"rt-{n}")
           for n in ("alone", "distilled")}
    rxs["start"] = NRXReceiver("nrx-rt", net=load_model("nrx-rt", [w.copy() for w in start]), num_prbs=4,
                               name="rt-start")
    rxs["teacher"] = pair["teacher"]
    ev = evaluate(rxs, sz["ebno"], sz["eval_batches"], sz["eval_batch"], seed=seed + 7919)
    return pair, ev, sz


def _get(request, tmp_path_factory, seed):
    from effinrx.training.resume import train_dir

    tier = request.config.getoption("--tier")
    base = train_dir() or tmp_path_factory.getbasetemp()
    return _run(tier, seed, str(base / f"distill-{tier}-{seed}"))


def _first_row(log: str) -> dict:
    import csv
    import io

    return next(csv.DictReader(io.StringIO(log)))


def test_d1_same_start_and_rt_size(request, tmp_path_factory, claim_check, seed):
    """Both students start from the same weights on the same first batch, and the distilled student
    has exactly RT's parameter count (same architecture: RT latency by construction)."""
    from effinrx.receivers.nrx import load_model

    pair, _, _ = _get(request, tmp_path_factory, seed)
    a, d = _first_row(pair["alone"]["log"]), _first_row(pair["distilled"]["log"])
    # step-1 BCE/MSE are computed before the first update: equal only if init and batch are equal
    same = a["bce"] == d["bce"] and a["mse"] == d["mse"] and a["num_active"] == d["num_active"]
    assert same, f"students did not see the same first batch / init: {a} vs {d}"
    claim_check("d1/same-init-and-first-batch", {"same": bool(same)}, kind="exact",
                note=f"step-1 BCE {a['bce']} / {d['bce']}, MSE {a['mse']} / {d['mse']}")
    n_rt = int(load_model("nrx-rt", None).count_params())
    n_s, n_a = (int(pair[k]["net"].count_params()) for k in ("distilled", "alone"))
    n_t = int(pair["teacher"].net.count_params())
    assert n_s == n_a == n_rt < n_t, (n_s, n_a, n_rt, n_t)
    assert pair["distilled"]["net"].cfg == pair["alone"]["net"].cfg
    claim_check("d1/params", {"student": n_s, "rt": n_rt, "teacher": n_t}, kind="exact",
                note=f"distilled student = NRX-RT architecture ({n_s} params, "
                     f"{pair['distilled']['net'].cfg.num_it} CGNN iterations) vs teacher {n_t}: RT latency")


def test_d1_distilled_beats_alone(request, tmp_path_factory, claim_check, seed):
    from scipy.stats import wilcoxon

    pair, ev, sz = _get(request, tmp_path_factory, seed)
    e = sz["ebno"]
    for n in ("alone", "distilled", "teacher", "start"):
        r = ev[n]
        claim_check(f"d1/{n}/ebno={e:g}", {"errors": r["errors"], "blocks": r["blocks"]}, kind="counts",
                    note=f"held-out TBLER {r['errors'] / r['blocks']:.3f}, mean BCE {r['bce'].mean():.4f}")
        claim_check(f"d1/{n}/bce/ebno={e:g}", round(float(r["bce"].mean()), 6), kind="abs", tol=BCE_TOL,
                    note=f"mean held-out BCE over {r['bce'].size} TBs")
    (ea, na), (ed, nd) = ((ev[n]["errors"], ev[n]["blocks"]) for n in ("alone", "distilled"))
    assert na == nd == ev["teacher"]["blocks"] > 0
    train_note = "; ".join(
        f"{n}: {pair[n]['summary']['steps_done']} steps x batch {sz['batch']}, "
        f"{pair[n]['summary']['train_seconds_this_run']} s, final train BCE {pair[n]['summary']['final_bce']:.4f}"
        for n in ("alone", "distilled"))
    from effinrx.stats import beats_verdict, saturation_note

    ta, td = ev["alone"]["tb_error"], ev["distilled"]["tb_error"]
    a_only, b_only = int((td & ~ta).sum()), int((ta & ~td).sum())  # distilled only / alone only
    why = saturation_note({"distilled": ed / nd, "alone": ea / na},
                          "longer fine-tuning or a less degraded shared start would decide")
    v_tb = None
    if why is None:
        v_tb, why = beats_verdict(a_only, b_only, nd, ea / na, alpha=ALPHA, margin=MARGIN)
    claim_check("d1/tbler-distilled-beats-alone", {"decided": v_tb is not None}, kind="verdict", reproduced=v_tb,
                note=f"{why}; {e:g} dB: distilled {ed}/{nd} vs alone {ea}/{na} (teacher "
                     f"{ev['teacher']['errors']}/{ev['teacher']['blocks']}, shared start "
                     f"{ev['start']['errors']}/{ev['start']['blocks']}), one-sided Fisher "
                     f"p={one_sided_less(ed, nd, ea, na):.3g}; {train_note}")
    ba, bd = ev["alone"]["bce"], ev["distilled"]["bce"]
    assert ba.shape == bd.shape and np.all(np.isfinite(ba)) and np.all(np.isfinite(bd))
    diff = ba - bd  # > 0 where the distilled student is better on that TB
    p_bce = 1.0 if not np.any(diff) else float(wilcoxon(diff, alternative="greater").pvalue)
    gain = float(diff.mean() / ba.mean())
    # 98 % t-interval of the relative gain: above the threshold's reach -> not reproduced
    from scipy.stats import t as student_t

    half = float(student_t.ppf(1 - ALPHA, diff.size - 1) * diff.std(ddof=1) / np.sqrt(diff.size)) / ba.mean()
    if p_bce < ALPHA and gain >= MIN_BCE_GAIN:
        v_bce, word = True, "reproduced"
    elif gain + half < MIN_BCE_GAIN:
        v_bce, word = False, "not reproduced (the gain's upper bound is below the threshold)"
    else:
        v_bce, word = None, "inconclusive (the gain's interval admits the threshold; more TBs would decide)"
    claim_check("d1/bce-distilled-lower", {"decided": v_bce is not None}, kind="verdict", reproduced=v_bce,
                note=f"{word}: held-out mean BCE distilled {bd.mean():.5f} vs alone {ba.mean():.5f} (teacher "
                     f"{ev['teacher']['bce'].mean():.5f}), relative gain {gain:+.2%} +- {half:.2%} (want >= "
                     f"{MIN_BCE_GAIN:.0%}), paired one-sided Wilcoxon p={p_bce:.3g} over {ba.size} TBs")


# NVIDIA's evaluation size (issue 15): the same two students, teacher and LS/K-best baselines on the
# 132-PRB slots of the one engine. Engine seed = --seed (the pruning claims' 132-PRB slots, so the
# baselines and the teacher come from golden/sweep-cache/pruning-132prb.json); training draws UMi
# slots from its own generator, so no evaluation slot is a training slot.
AT_132 = {"prbs": 132, "ebno": (2.0, 3.0, 4.0, 5.0, 6.0, 7.0), "baseline_ebno": (2.0, 3.0, 4.0, 5.0),
          "max_blocks": 128, "batch": 16}
LS, KB = "ls-lmmse", "lmmse-kbest"


def test_d1_distilled_beats_alone_132prb(request, tmp_path_factory, claim_check, seed, report_dir, report_artifact):
    """D1 at 132 PRBs: TB errors of both students (and the teacher) per Eb/N0 as count goldens, the
    'beats' verdict on the per-TB outcomes pooled over the shared points (the 4-PRB rule), and the
    required Eb/N0 of each with the gaps to the alone student, LMMSE+K-best and LS/lin+LMMSE.
    Cost on 2 cores: the nightly students (~20 min, shared with the 4-PRB tests) + ~8 min of
    132-PRB slots; run with ``EFFINRX_SWEEP_CACHE=<file>`` to resume."""
    from effinrx.link import sweep
    from effinrx.link.cache import env_path
    from effinrx.link.metrics import gap_interval, gap_text, gaps_table
    from effinrx.link.plots import plot_tbler
    from effinrx.receivers.nrx import NRXReceiver
    from effinrx.stats import beats_verdict, saturation_note

    pair, _, _ = _get(request, tmp_path_factory, seed)
    p = AT_132["prbs"]
    rxs = {f"rt-{n}": NRXReceiver("nrx-rt", net=pair[n]["net"], num_prbs=p, name=f"rt-{n}")
           for n in ("alone", "distilled")}
    rxs["nrx-large"] = NRXReceiver("nrx-large", net=pair["teacher"].net, num_prbs=p)
    cache = env_path()
    curves, out = sweep.collect(rxs, sweep.scenario(p), AT_132["ebno"], max_blocks=AT_132["max_blocks"],
                                target_errors=10**9, batch_size=AT_132["batch"], seed=seed, cache=cache,
                                progress=cache is not None)
    base, cmd = sweep.counts((LS, KB), ebno=AT_132["baseline_ebno"], batch=AT_132["batch"],
                             max_blocks=AT_132["max_blocks"], seed=seed, prbs=p)
    curves.update(base)
    for n, pts in curves.items():
        for pt in pts:
            claim_check(f"132prb/d1/{n}/ebno={pt.ebno_db:g}", sweep.as_counts(pt), kind="counts",
                        note=f"TBLER {pt.tbler:.3f}")
    d_only, a_only, n = sweep.discordant(out, "rt-distilled", "rt-alone")
    (ed, nd), (ea, na) = (sweep.pool(curves[k]) for k in ("rt-distilled", "rt-alone"))
    assert nd == na == n > 0
    why = saturation_note({"distilled": ed / nd, "alone": ea / na},
                          "longer fine-tuning or a less degraded shared start would decide")
    v = None
    if why is None:
        v, why = beats_verdict(d_only, a_only, n, ea / na, alpha=ALPHA, margin=MARGIN)
    g = gap_interval(curves["rt-distilled"], curves["rt-alone"])
    claim_check("132prb/d1/tbler-distilled-beats-alone", {"decided": v is not None}, kind="verdict", reproduced=v,
                note=f"{why}; pooled over {', '.join(f'{e:g}' for e in AT_132['ebno'])} dB: distilled {ed}/{nd} "
                     f"vs alone {ea}/{na}; required Eb/N0 at TBLER 10 %: distilled - alone {gap_text(g)}")
    title = f"D1 students at 132 PRBs, DoubleTDL, {AT_132['max_blocks']} TBs/point"
    png = plot_tbler(curves, report_dir / "plots" / "d1_students_tbler_132prb.png", title)
    report_artifact(png, f"D1 at 132 PRBs: required Eb/N0 and gaps to the alone student, LMMSE+K-best and "
                         f"LS/lin+LMMSE (same slots; baselines: {cmd})",
                    table=gaps_table(curves, ("rt-alone", KB, LS)))
