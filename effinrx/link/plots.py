"""TBLER vs Eb/N0 plots (log y, rate-adjusted Eb/N0), one PNG per figure."""
from __future__ import annotations

from pathlib import Path

from effinrx.io import atomic_write_bytes

_STYLE = {"perfect-kbest": ("k", "--", "Perfect CSI + K-best (K=64)"),
          "lmmse-kbest": ("darkgoldenrod", "-.", "LMMSE CE + K-best (K=64)"),  # outside the default cycle
          "ls-lmmse": ("tab:gray", ":", "LS/lin + LMMSE")}


def new_figure(figsize=(6, 4.2), **subplots_kw):
    """(fig, ax) on matplotlib's Agg backend (no display needed); ``subplots_kw`` (``ncols``,
    ``sharey``, ...) go to ``plt.subplots`` (then ax is the array of axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize, **subplots_kw)


def save_png(fig, path) -> Path:
    """Render ``fig`` to PNG, close it and write ``path`` atomically; returns the path."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())


def draw_curve(ax, pts, label: str, color=None, linestyle: str = "-") -> None:
    """One error-rate curve on a log axis ``ax`` from PointCounts ``pts``: points with errors with
    95 % Clopper-Pearson error bars; zero-error points have no log-scale position and are drawn as
    open "v" at their 95 % upper bound. Points without blocks are left out."""
    pts = [p for p in pts if p.blocks > 0]
    zero = [p for p in pts if p.errors == 0]
    pts = [p for p in pts if p.errors > 0]
    if pts:
        x = [p.ebno_db for p in pts]
        y = [p.tbler for p in pts]
        ci = [p.interval() for p in pts]
        err = [[yy - c[0] for yy, c in zip(y, ci)], [c[1] - yy for yy, c in zip(y, ci)]]
        line = ax.errorbar(x, y, yerr=err, color=color, linestyle=linestyle, marker="o", ms=3, capsize=2,
                           label=label)
        color = line[0].get_color()
    if zero:
        ax.plot([p.ebno_db for p in zero], [p.interval()[1] for p in zero], "v", color=color, ms=5,
                mfc="none", label=None if pts else f"{label} (0 errors: 95 % upper bound)")


def plot_tbler(curves: dict, path, title: str = "", background: dict | None = None,
               background_label: str = "nightly golden") -> Path:
    """``curves``: name -> list of PointCounts. Draws the TBLER with 95 % Clopper-Pearson error bars
    (points without errors as open triangles at their upper bound);
    baselines in the usual dashed/dotted styles. Writes a PNG atomically, returns its path.
    ``background``: name -> PointCounts of a higher tier's goldens, drawn as thin faded curves with
    their intervals as bands, under this run's points (a smoke run's few points read against the
    nightly curves). When every curve has the same single Eb/N0 point and there is no background,
    a curve plot would stack all error bars on one x: the receivers are drawn as rows of a
    dot-and-interval chart instead."""
    xs = {p.ebno_db for pts in curves.values() for p in pts if p.blocks > 0}
    if len(xs) == 1 and not background:
        return _plot_one_point(curves, path, title, xs.pop())
    fig, ax = new_figure((6, 4.2))
    colors = {}
    for name, pts in (background or {}).items():
        pts = [p for p in pts if p.blocks > 0 and p.errors > 0]
        if len(pts) < 2:
            continue
        color, ls, label = _STYLE.get(name, (None, "-", name))
        line, = ax.plot([p.ebno_db for p in pts], [p.tbler for p in pts], color=color, linestyle=ls, lw=1,
                        alpha=0.45, label=f"{label} ({background_label})")
        ci = [p.interval() for p in pts]
        ax.fill_between([p.ebno_db for p in pts], [c[0] for c in ci], [c[1] for c in ci],
                        color=line.get_color(), alpha=0.12, lw=0)
        colors[name] = line.get_color()
    for name, pts in curves.items():
        color, ls, label = _STYLE.get(name, (None, "-", name))
        draw_curve(ax, pts, label, colors.get(name, color), ls)  # same colour as its background curve
    ax.set_yscale("log")
    ax.set_xlabel("Eb/N0 (dB, rate-adjusted)")
    ax.set_ylabel("TBLER")
    ax.grid(True, which="both", alpha=0.3)
    if background:  # twice the entries: the legend goes beside the axes, not over the points
        fig.set_size_inches(9.0, 4.2)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return save_png(fig, path)


def _plot_one_point(curves: dict, path, title: str, ebno_db: float) -> Path:
    rows = [(n, p) for n, pts in curves.items() for p in pts if p.blocks > 0]
    fig, ax = new_figure((6, 0.9 + 0.35 * len(rows)))
    for k, (name, p) in enumerate(rows):
        lo, hi = p.interval()
        color = _STYLE.get(name, (None,))[0]
        if p.errors:
            line = ax.errorbar([p.tbler], [k], xerr=[[p.tbler - lo], [hi - p.tbler]], fmt="o", color=color, capsize=3)
        else:  # no lower bound on a log axis: the upper bound alone, open marker
            line = ax.errorbar([hi], [k], fmt="<", color=color, mfc="none")
        ax.annotate(f"{p.errors}/{p.blocks}", (hi, k), xytext=(4, -3), textcoords="offset points", fontsize=7,
                    color=line[0].get_color())
    ax.set_yticks(range(len(rows)), [_STYLE.get(n, (None, None, n))[2] for n, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    lows = [p.interval()[0] for _, p in rows if p.errors] + [p.interval()[1] for _, p in rows]
    ax.set_xlim(min(lows) / 1.5, max(p.interval()[1] for _, p in rows) * 1.8)  # room for the count labels
    ax.set_xlabel(f"TBLER at Eb/N0 = {ebno_db:g} dB (95 % interval; open < = 0 errors, its upper bound)")
    ax.grid(True, which="both", axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    return save_png(fig, path)
