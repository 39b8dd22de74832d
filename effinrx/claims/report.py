"""Tolerance report: one row per check, one summary row per claim, written as Markdown and JSON.

Inputs are the :class:`~effinrx.claims.check.Verdict` rows a run recorded plus what was collected
(which claims have tests, in which tier, and which are explicitly "not implemented yet"), so every
claim of the registry appears with a verdict or the reason it has none.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from effinrx.claims.check import NEW_DEVICE, NOT_COMPARABLE
from effinrx.claims.registry import Claim
from effinrx.io import atomic_write_json, atomic_write_text


#: longest note / value the Markdown tables show (the full text stays in tolerance.json)
MAX_NOTE = 300
MAX_VALUE = 160


def _short(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending in "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, dict) and {"errors", "blocks"} <= set(v):
        rate = v["errors"] / v["blocks"] if v["blocks"] else float("nan")
        return f"{v['errors']}/{v['blocks']} ({rate:.3g})"
    if isinstance(v, dict) and "median_ms" in v:
        # the gate compares best-of-n (or per-round ratios) when present: show what it compares
        best = f"best {v['min_ms']:.4g} ms, " if "min_ms" in v else ""
        return f"{best}median {v['median_ms']:.4g} ms"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return _short(", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()), MAX_VALUE)
    return _short(json.dumps(v, default=str), MAX_VALUE) if isinstance(v, list) else str(v)


def claim_summary(claims: dict[str, Claim], rows: list[dict], collected: dict[str, dict],
                  tier: str) -> list[dict]:
    """One row per registry claim: its overall status in this run."""
    by_claim: dict[str, list[dict]] = {}
    for r in rows:
        by_claim.setdefault(r["claim"], []).append(r)
    out = []
    for cid, c in claims.items():
        rs = by_claim.get(cid, [])
        info = collected.get(cid, {})
        if rs:
            verdicts = Counter(r["verdict"] for r in rs)
            # a latency on a device with no golden yet is expected (goldens are per device), and a
            # golden of another seed/configuration is not compared: they decide the status only
            # when nothing else was checked
            def unjudged(r):
                return r["verdict"] == NEW_DEVICE or r["golden_status"] == NOT_COMPARABLE

            judged = [r for r in rs if not unjudged(r)] or rs
            jv = Counter(r["verdict"] for r in judged)
            if all(r["verdict"] == NEW_DEVICE for r in judged):
                status = f"{NEW_DEVICE} (latency goldens are per device)"
            elif all(unjudged(r) for r in judged):
                nc = [r for r in judged if r["golden_status"] == NOT_COMPARABLE]
                status = nc[0]["verdict"] if len({r["verdict"] for r in nc}) == 1 else (
                    f"{NOT_COMPARABLE} ({len(nc)} checks; first: {nc[0]['verdict']})")
            elif any(r["golden_status"] in ("regressed", "no golden", "regenerated", "error") for r in judged):
                status = "regressed / golden problem"
            elif jv.get("not reproduced"):
                status = "not reproduced"
            elif all(v.startswith("not measurable") for v in jv.elements()):
                status = judged[0]["verdict"]
            elif jv.get("reproduced"):
                status = "reproduced"
            elif any(r["golden_status"] == "advisory" for r in judged):
                n_adv = sum(r["golden_status"] == "advisory" for r in judged)
                status = (f"pass, {n_adv} latency check(s) advisory (shared runner: slower than golden, "
                          f"not failed; set EFFINRX_BENCHMARK_RUNNER=1 on a dedicated runner)")
            elif jv.get("inconclusive"):
                why = next(r["note"] for r in judged if r["verdict"] == "inconclusive").split(";")[0]
                status = why if why.startswith("inconclusive") else f"inconclusive ({why})"
            else:
                status = "pass (golden only)"
            detail = ", ".join(f"{k}: {n}" for k, n in sorted(verdicts.items()))
        elif info.get("not_implemented"):
            status, detail = "not implemented yet", info["not_implemented"]
        elif info.get("tiers") and tier not in info["tiers"] and not info.get("ran"):
            status, detail = "not run in this tier", f"tests in tier(s) {', '.join(sorted(info['tiers']))}"
        elif info.get("skipped"):
            status, detail = "not measurable here", info["skipped"]
        elif info.get("tiers") and not info.get("ran") and set(info.get("nodeids", ())) <= set(
                info.get("deselected", ())):
            n = len(set(info["nodeids"]))
            status, detail = "not selected in this run (-k/-m)", f"{n} test(s), all deselected"
        elif info.get("tiers"):
            status, detail = "no check recorded", "tests ran but recorded no claim_check"
        else:
            status, detail = "not implemented yet", f"no benchmark carries claim({cid}) (issue {c.issue})"
        out.append({"claim": cid, "family": c.family, "statement": c.statement, "paper": c.paper,
                    "status": status, "detail": detail, "checks": len(rs), "why": _why(rs) or detail})
    return out


def _why(rs: list[dict]) -> str:
    """The measured value against the rule: the note of the claim's verdict row, else of its first
    judged check (one line for the claims table)."""
    for pick in (lambda r: r.get("golden_status") == "derived",
                 lambda r: r.get("verdict") in ("reproduced", "not reproduced", "inconclusive", "regressed"),
                 lambda r: bool(r.get("note"))):
        for r in rs:
            if pick(r) and (r.get("note") or r.get("message")):
                return (r.get("note") or r.get("message")).replace("|", "/").replace("\n", " ")
    return ""


def _count_rule(tolerance: str) -> str:
    for head, name in (("exact", "exact (same setup)"), ("paired McNemar", "paired McNemar (same seed, other host)"),
                       ("Fisher", "unpaired Fisher (no per-TB outcomes in the golden)")):
        if tolerance.startswith(head):
            return name
    return "other"


def render_markdown(summary: list[dict], rows: list[dict], meta: dict) -> str:
    lines = [f"# effinrx tolerance report — tier `{meta.get('tier')}`", "",
             f"Run `{meta.get('run')}` on `{meta.get('device')}`; seed {meta.get('seed')}; "
             f"golden mode `{meta.get('golden_mode')}`"
             + (f"; commit `{meta['git_commit'][:12]}`" + (" (uncommitted changes)" if meta.get("git_dirty") else "")
                if meta.get("git_commit") else "") + ".", ""]
    vers = meta.get("versions") or {}
    if vers:
        lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(vers.items())) + ".", ""]
    rules = Counter(_count_rule(r["tolerance"]) for r in rows
                    if r.get("kind") == "counts" and r.get("golden_status") in ("pass", "regressed"))
    if rules:
        lines += ["Count goldens compared: " + ", ".join(f"{v} {k}" for k, v in sorted(rules.items()))
                  + " (rules: `[regression]` in golden/claims.toml).", ""]
    nc = [r for r in rows if r.get("golden_status") == NOT_COMPARABLE]
    if nc:
        lines += [f"{len(nc)} checks are **not comparable** with their goldens (another seed or "
                  "configuration): they are neither passes nor regressions; rerun with the golden's "
                  "seed/configuration or regenerate with `--force-regen`.", ""]
    counts = Counter(s["status"].split(" (")[0] for s in summary)
    figs = meta.get("_figures") or {}
    lines += ["## Claims", "", "Totals: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())), "",
              "| claim | statement | paper | verdict | measured against the rule | checks | figure |",
              "|---|---|---|---|---|---|---|"]
    for s in summary:
        fig = ", ".join(f"Fig. {n}" for n in figs.get(s["claim"], [])) or "—"
        lines.append(f"| {s['claim']} | {s['statement']} | {s['paper']} | **{s['status']}** | "
                     f"{_short(s['why'], MAX_NOTE)} | "
                     f"{s['detail'] if s['checks'] else '—'} | {fig} |")
    lines += ["", "<!-- checks -->", "## Checks (grouped by claim)", "",
              "| claim | key | metric | golden | measured | tolerance | margin | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    order = {s["claim"]: i for i, s in enumerate(summary)}
    for r in sorted(rows, key=lambda r: order.get(r["claim"], len(order))):
        margin = "—" if r.get("margin") is None else f"{r['margin']:.3g}"
        lines.append(f"| {r['claim']} | `{r['key']}` | {r['metric']} | "
                     f"{_fmt(r.get('golden'))} | {_fmt(r.get('measured'))} | {r['tolerance']} | {margin} | "
                     f"**{r['verdict']}** |")
        if r.get("note"):
            note = _short(str(r["note"]).replace("|", "/").replace("\n", " "), MAX_NOTE)
            lines[-1] = lines[-1][:-1] + f" {note} |"
    left = meta.get("unchecked_goldens") or []
    if left:
        lines += ["", "## Golden entries no check read", "",
                  f"{len(left)} entries are left over (a renamed key, or a test that moved to a higher "
                  "tier); nothing compares them any more: delete them from the file.", "",
                  "| file | key | test | why |", "|---|---|---|---|"]
        lines += [f"| `{u['file']}` | `{u['key']}` | `{u['test']}` | {u['why']} |" for u in left]
    return "\n".join(lines) + "\n"


def write_reports(out_dir: Path, claims: dict[str, Claim], rows: list[dict], collected: dict[str, dict],
                  meta: dict, artifacts: Iterable[dict] = ()) -> dict[str, Path]:
    """Write ``tolerance.md``, ``tolerance.json`` and ``report.md`` (with plots) into ``out_dir``."""
    out_dir = Path(out_dir)
    summary = claim_summary(claims, rows, collected, meta.get("tier", "smoke"))
    arts = list(artifacts)
    figs: dict = {}
    for n, a in enumerate(arts, 1):
        figs.setdefault(a.get("claim") or "", []).append(n)
    md = render_markdown(summary, rows, {**meta, "_figures": figs})
    paths = {
        "tolerance_md": atomic_write_text(out_dir / "tolerance.md", md),
        "tolerance_json": atomic_write_json(out_dir / "tolerance.json",
                                            {"meta": meta, "claims": summary, "checks": rows}),
    }
    head, _, checks = md.replace("# effinrx tolerance report", "# effinrx claims report", 1).partition("<!-- checks -->")
    rep = [head.rstrip(), ""]
    if arts:
        rep += ["## Figures", ""]
        for n, a in enumerate(arts, 1):
            rel = os.path.relpath(a["path"], out_dir)
            rep += [f"### Fig. {n} ({a.get('claim') or '-'}): {a['caption']}", "", f"![{a['caption']}]({rel})", ""]
            if a.get("table"):
                rep += [a["table"], ""]
    rep += [checks.strip()]
    paths["report_md"] = atomic_write_text(out_dir / "report.md", "\n".join(rep) + "\n")
    summary_env = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_env:
        with open(summary_env, "a", encoding="utf-8") as fh:  # append-only by GitHub's contract
            fh.write(md)
    return paths
