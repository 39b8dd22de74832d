"""Shared set-up of the pruning benchmarks: ``test_pruning.py`` (P1-P7, the engine's 4-PRB
evaluation scenario) and ``test_pruning_132prb.py`` (P4-P6 at NVIDIA's evaluation size, 132 PRBs).

One recipe table, one cached fine-tune per variant (both files judge the *same* pruned weights),
one TBLER sweep per (model, PRBs) and one decision rule per claim: the two sizes differ only in
their slots and golden keys (``132prb/...``).
"""
from __future__ import annotations

import functools

from effinrx.claims.registry import param
from effinrx.link import sweep
from effinrx.link.cache import env_path
from effinrx.stats import one_sided_less

# steps: fine-tuning steps per model (batch ``batch``, Adam 1e-3 as the reference training);
# end: step where the unstructured schedule reaches the target (None: 3/4 of steps; the paper's
# PolynomialDecay used end_step=10000). TBLER: ``batches`` x ``tb_batch`` slots of 2 UEs per point.
# Smoke budgets are far too short to recover from pruning: smoke checks the pipeline and regression
# counts, nightly the claims. Measured once on CPU (RT, batch 16, Adam 1e-3, seed 0, 128 TBs per
# point at 2/4/6/8 dB; fp32 50/14/2/1 errors): magnitude 0.8 after 300 steps 124/112/110/-, after
# 800 steps 106/88/76/69; 2:4 after 800 steps 84/40/19/20; movement 0.8 after 800 steps 128 x 4.
SIZES = {"smoke": {"steps": {"nrx-rt": 12}, "end": None, "batch": 8, "ebno": [4.0],
                   "batches": 2, "tb_batch": 32},
         "nightly": {"steps": {"nrx-rt": 2000, "nrx-large": 2000}, "end": None, "batch": 16,
                     "ebno": [float(e) for e in range(-2, 8)], "batches": 8, "tb_batch": 32},
         "paper": {"steps": {"nrx-rt": 12000, "nrx-large": 12000}, "end": 10000, "batch": 16,
                   "ebno": [float(e) for e in range(-2, 8)], "batches": 32, "tb_batch": 32}}
#: 132-PRB evaluation of the nightly fine-tunes: 128 TBs a point (2 UEs x 64 slots, batch 16: the
#: slots of the quantization claims' 132-PRB tier, so fp32 and the baselines can come from its
#: resume cache); pruned variants over 2..8 dB (they need more Eb/N0 than fp32), the baselines
#: LS/lin+LMMSE and LMMSE+K-best over 2..5 dB (their crossings)
AT_132 = {"prbs": 132, "ebno": [float(e) for e in range(2, 9)], "baseline_ebno": [2.0, 3.0, 4.0, 5.0],
          "max_blocks": 128, "batch": 16}
VARIANTS = {"nrx-rt": [("magnitude", "unstructured"), ("magnitude", "2:4"), ("movement", "unstructured")],
            "nrx-large": [("magnitude", "unstructured"), ("magnitude", "2:4")]}
TARGET = 0.8
LS, KB = "ls-lmmse", "lmmse-kbest"

ALPHA = param("P7", "alpha")
MARGIN_BEATS = param("P6", "margin")  # "beats": smallest win (golden/claims.toml)
MARGIN_EQUIV = param("P7", "margin")  # P7 "an alternative": movement within +-margin of magnitude's TBLER
WORDS = {True: "reproduced",
         False: "not reproduced (with these fine-tunes; the paper's far longer fine-tuning may differ)",
         None: "inconclusive (an interval straddles its bound; longer fine-tuning / more TBs would decide)"}


def tag(method, pattern):
    return f"{method}-{TARGET:g}" if pattern == "unstructured" else f"{method}-{pattern}"


def recipe(model, method, pattern, tier, seed):
    from effinrx.prune.recipe import PruneRecipe

    sz = SIZES[tier]
    return PruneRecipe(model=model, method=method, pattern=pattern, target=TARGET,
                       steps=sz["steps"][model], end_step=sz["end"], batch_size=sz["batch"],
                       learning_rate=1e-3, seed=seed, init="reference")


@functools.lru_cache(maxsize=None)
def pruned(model, method, pattern, tier, seed):
    """PruneResult of one variant, computed once per session; with ``EFFINRX_PRUNE_CACHE=<folder>``
    also kept on disk, so a nightly run cut off after some fine-tunes redoes only the rest
    (:mod:`effinrx.prune.cache`; the folder holds weights derived from the reference weights:
    never commit it)."""
    from effinrx.prune.cache import prune_cached

    return prune_cached(recipe(model, method, pattern, tier, seed), progress=tier != "smoke")


@functools.lru_cache(maxsize=None)
def reference_net(model):
    from effinrx.receivers.nrx import load_model

    return load_model(model, "reference")


def p6_nonzeros(tier, seed) -> dict:
    """P6's size comparison: non-zero parameters of the Large magnitude-0.8 fine-tune and of the
    unpruned reference RT (``sparsity_report``'s count over all core weights)."""
    from effinrx.prune.recipe import sparsity_report

    return {"nrx-large/magnitude-0.8": pruned("nrx-large", "magnitude", "unstructured", tier, seed).report["nonzeros"],
            "nrx-rt/fp32": sparsity_report(reference_net("nrx-rt"))["nonzeros"]}


def tier_of(request):
    return request.config.getoption("--tier")


def names_of(model):
    """Curve names of ``model``: ``model/fp32`` and one ``model/<tag>`` per pruned variant."""
    return [f"{model}/fp32"] + [f"{model}/{tag(m, p)}" for m, p in VARIANTS[model]]


def _receiver(tier, seed, name, prbs):
    """The receiver behind curve ``name`` (``model/fp32`` or ``model/<tag>``); a pruned one costs its
    fine-tune (cached, :func:`pruned`), fp32 does not."""
    from effinrx.receivers.nrx import NRXReceiver

    model, variant = name.split("/")
    if variant == "fp32":
        return NRXReceiver(model, net=reference_net(model), num_prbs=prbs)
    method, pattern = next((m, p) for m, p in VARIANTS[model] if tag(m, p) == variant)
    return NRXReceiver(model, net=pruned(model, method, pattern, tier, seed).net, num_prbs=prbs, name=name)


#: (tier, seed, PRBs, curve name) -> [PointCounts]: each receiver is swept once per session
_CURVES: dict = {}


def _curves(tier, seed, prbs, names):
    """name -> [PointCounts per Eb/N0] (per-TB outcomes kept: paired tests) of the named curves, on
    the slots of the one engine (evaluation scenario; 4 PRBs: ``SIZES[tier]`` points and blocks,
    132 PRBs: :data:`AT_132`). Only the curves not swept yet this session are swept, together. The
    slots depend only on (seed, scenario, Eb/N0, batch), so curves swept apart are paired all the
    same, and a claim that needs only fp32 of a model (P6: unpruned RT) needs none of its
    fine-tunes. At 132 PRBs ``EFFINRX_SWEEP_CACHE=<file>`` keeps finished batches (resumable; fp32
    entries of the same slots are shared with the quantization claims' 132-PRB tier)."""
    missing = [n for n in names if (tier, seed, prbs, n) not in _CURVES]
    if missing:
        rxs = {n: _receiver(tier, seed, n, prbs) for n in missing}
        if prbs == AT_132["prbs"]:
            cache = env_path()
            ebno, size = AT_132["ebno"], {"max_blocks": AT_132["max_blocks"], "batch_size": AT_132["batch"],
                                          "cache": cache, "progress": cache is not None}
        else:
            sz = SIZES[tier]
            ebno, size = sz["ebno"], {"max_blocks": 2 * sz["batches"] * sz["tb_batch"], "batch_size": sz["tb_batch"]}
        curves, _ = sweep.collect(rxs, sweep.scenario(prbs), ebno, target_errors=10**9, seed=seed, **size)
        for n in missing:
            _CURVES[(tier, seed, prbs, n)] = curves[n]
    return {n: _CURVES[(tier, seed, prbs, n)] for n in names}


def _selected(models, names):
    """``names`` if given, else every curve of ``models`` (:func:`names_of`)."""
    return names or [n for m in models for n in names_of(m)]


def tbler(tier, seed, models=("nrx-rt",), names=None):
    """``(curves, sizes)`` at 4 PRBs: every curve of ``models`` (:func:`names_of`), or only ``names``."""
    return _curves(tier, seed, 4, _selected(models, names)), SIZES[tier]


def tbler_132(tier, seed, models=("nrx-rt",), names=None):
    """``(curves, command)``: the 132-PRB curves of ``models`` (or only ``names``) and of the two
    baselines (LS/lin+LMMSE, LMMSE+K-best over ``AT_132["baseline_ebno"]``, through
    :func:`sweep.counts`; ``command`` reproduces the baselines' counts)."""
    curves = _curves(tier, seed, AT_132["prbs"], _selected(models, names))
    base, cmd = sweep.counts((LS, KB), ebno=AT_132["baseline_ebno"], batch=AT_132["batch"],
                             max_blocks=AT_132["max_blocks"], seed=seed, prbs=AT_132["prbs"])
    curves.update(base)
    return curves, cmd


def pool(res, name):
    return sweep.pool(res[name])


def paired(res, a, b):
    """(a_only, b_only, n) over the Eb/N0 points ``a`` and ``b`` share (same slots)."""
    return sweep.discordant({n: {p.ebno_db: p.tb for p in res[n]} for n in (a, b)}, a, b)


def saturated(res, *names):
    """Saturation note, or None: every named receiver fails almost every TB (nothing to compare)."""
    from effinrx.stats import saturation_note

    return saturation_note({n: pool(res, n)[0] / pool(res, n)[1] for n in names},
                           "longer fine-tuning would decide")


def gap(res, a, b):
    """Gap a - b at TBLER 10 % with the conservative interval (effinrx.link.metrics.gap_interval)."""
    from effinrx.link.metrics import gap_interval

    return gap_interval(res[a], res[b])


def record(claim_check, res, names, prefix="", meta=None):
    for n in names:
        for p in res[n]:
            claim_check(f"{prefix}{n}/ebno={p.ebno_db:g}", sweep.as_counts(p), kind="counts", meta=meta,
                        note=f"TBLER {p.tbler:.3f}")


def worse_text(res, a, b):
    p = one_sided_less(*pool(res, b), *pool(res, a))
    ea, na = pool(res, a)
    return f"{a} {ea}/{na} (p[worse than {b.split('/')[-1]}]={p:.2g})"


# ---------------------------------------------------------------- decisions --------
def decide_p4(claim_check, res, prefix=""):
    """P4 "pruned RT loses ~2 dB regardless of method": the paper's two methods (magnitude 0.8 and
    2:4) both lose ``gap_db_low``..``gap_db_high`` dB at TBLER 10 %, decided on each gap's interval;
    movement is recorded beside them."""
    from effinrx.link.metrics import all_of, gap_text, within

    rt = [f"nrx-rt/{tag(m, p)}" for m, p in VARIANTS["nrx-rt"]]
    gaps = {n: gap(res, n, "nrx-rt/fp32") for n in rt}
    verdict = all_of(*(within(gaps[n][1], gaps[n][2], param("P4", "gap_db_low"), param("P4", "gap_db_high"))
                       for n in rt if "magnitude" in n))
    claim_check(f"{prefix}nrx-rt/gap-1to3dB", {"decided": verdict is not None}, kind="verdict", reproduced=verdict,
                note=WORDS[verdict] + ": gaps " + ", ".join(f"{n}: {gap_text(g)}" for n, g in gaps.items())
                + "; " + "; ".join(worse_text(res, n, "nrx-rt/fp32") for n in rt))


def decide_p5(claim_check, res, prefix=""):
    """P5: "little" = the unstructured gap interval to fp32 lies at or below ``margin_db`` (lower side
    open); "2:4 loses more" = unstructured beats 2:4 on the shared slots (paired test)."""
    from effinrx.link.metrics import all_of, gap_text, within
    from effinrx.stats import beats_verdict, compare_counts

    un, ss, fp = "nrx-large/magnitude-0.8", "nrx-large/magnitude-2:4", "nrx-large/fp32"
    p_order = one_sided_less(*pool(res, un), *pool(res, ss))
    c = compare_counts(*pool(res, un), *pool(res, fp))
    text = (f"{ss} {pool(res, ss)} vs {un} {pool(res, un)}: p[2:4 worse]={p_order:.2g}; "
            f"{un} vs fp32 {pool(res, fp)}: two-sided p={c.p_value:.2g}")
    g_un, g_ss = gap(res, un, fp), gap(res, ss, fp)
    little = within(g_un[1], g_un[2], high=param("P5", "margin_db"))
    a_only, b_only, n = paired(res, un, ss)
    order, why = beats_verdict(a_only, b_only, n, pool(res, ss)[0] / pool(res, ss)[1], alpha=ALPHA,
                               margin=MARGIN_BEATS)
    verdict = all_of(little, order)
    claim_check(f"{prefix}nrx-large/little-and-order", {"decided": verdict is not None}, kind="verdict",
                reproduced=verdict,
                note=f"{WORDS[verdict]}: gaps unstructured {gap_text(g_un)} (want <= {param('P5', 'margin_db')}), "
                     f"2:4 {gap_text(g_ss)}; unstructured beats 2:4: {why}; {text}")


def decide_p6(claim_check, res, prefix=""):
    """P6: Large magnitude 0.8 beats unpruned RT on the shared slots (paired one-sided test)."""
    from effinrx.stats import beats_verdict

    lg = "nrx-large/magnitude-0.8"
    a_only, b_only, n = paired(res, lg, "nrx-rt/fp32")
    er, nr = pool(res, "nrx-rt/fp32")
    verdict, why = beats_verdict(a_only, b_only, n, er / nr, alpha=ALPHA, margin=MARGIN_BEATS)
    claim_check(f"{prefix}large-0.8-beats-rt", {"decided": verdict is not None}, kind="verdict", reproduced=verdict,
                note=f"{why}; {lg} {pool(res, lg)} vs nrx-rt/fp32 {(er, nr)}")
