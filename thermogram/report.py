"""Plots of a capsule's life, as ``thermogram demo`` writes them.

:func:`write_report` draws the panels into one PNG: entries per thermal
layer over ticks (with the consolidations and the forgetting phase marked),
the entries of the concept that leaves the stream, the strength histogram of
each layer with the thermal thresholds, and the concept-versus-prototype
confusion matrix of the spiking network (with a baseline's purity). The
``plot_*`` functions draw one panel each onto a given matplotlib axes, for
notebooks.

matplotlib is imported only when a plot is drawn, with the non-interactive
Agg backend for files.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence, Tuple

import numpy as np

from .errors import ThermogramError

__all__ = ["write_report", "plot_layers", "plot_forgotten", "plot_strengths", "plot_confusion", "confusion_order",
           "require_matplotlib", "LAYERS", "LAYER_COLORS"]

LAYERS = ("hot", "warm", "cool", "cold")
LAYER_COLORS = {"hot": "#d62728", "warm": "#ff7f0e", "cool": "#17becf", "cold": "#1f4e9c"}


def require_matplotlib():
    """The ``matplotlib`` module, or a :class:`ThermogramError` saying how to get it."""
    try:
        import matplotlib
    except ImportError:
        raise ThermogramError("plots need matplotlib: pip install matplotlib "
                              "(or run the demo with --no-plot)") from None
    return matplotlib


def _mark_forgetting(ax: Any, forget_at: Optional[int], last_tick: int, label: bool = True) -> None:
    if forget_at is not None and forget_at < last_tick:
        ax.axvspan(forget_at, last_tick, color="0.85", alpha=0.6, zorder=0,
                   label="forgetting phase" if label else None)


def plot_layers(ax: Any, history: Sequence[Mapping[str, int]], forget_at: Optional[int] = None) -> None:
    """Entries per layer (lines) against ``history[i]["tick"]``; a dotted vertical line
    at every consolidation (every row after the first) and, with ``forget_at``, the
    forgetting phase shaded."""
    ticks = [h["tick"] for h in history]
    for n, tick in enumerate(ticks[1:]):
        ax.axvline(tick, color="0.6", linestyle=":", linewidth=0.8, label="consolidation" if n == 0 else None)
    if ticks:
        _mark_forgetting(ax, forget_at, ticks[-1])
    for layer in LAYERS:
        ax.plot(ticks, [h[layer] for h in history], marker="o", markersize=3, label=layer,
                color=LAYER_COLORS[layer])
    ax.set_title("Layer populations")
    ax.set_xlabel("tick")
    ax.set_ylabel("entries")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize="small", loc="upper left")


def plot_forgotten(ax: Any, history: Sequence[Mapping[str, int]], forgotten: Sequence[Mapping[str, int]],
                   concept: int, forget_at: Optional[int] = None) -> None:
    """Entries per layer of one concept's keys (``forgotten[i]``) against the ticks of
    ``history``, with the forgetting phase shaded."""
    ticks = [h["tick"] for h in history]
    if ticks:
        _mark_forgetting(ax, forget_at, ticks[-1])
    for layer in LAYERS:
        ax.plot(ticks, [f[layer] for f in forgotten], marker="o", markersize=3, label=layer,
                color=LAYER_COLORS[layer])
    ax.set_title(f"Entries of concept {concept}, which leaves the stream")
    ax.set_xlabel("tick")
    ax.set_ylabel("entries")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize="small", loc="upper left")


def plot_strengths(ax: Any, strengths_by_layer: Mapping[str, Any], thermal_config: Any = None) -> None:
    """Histogram of strength magnitudes (0-255), one bar per layer in each bin of 16;
    the count axis turns logarithmic when counts span more than two decades.

    With ``thermal_config`` (a :class:`~thermogram.thermal.ThermalConfig`), vertical
    lines in each layer's colour mark where its entries move: solid at the promotion
    threshold (hot, warm, cool: at or above it, with enough updates, an entry moves one
    layer colder), dashed at the demotion threshold (warm, cool and, if allowed, cold:
    below it an entry moves one layer hotter), and a black dotted line at the prune
    threshold (entries below it, in any layer, are dropped)."""
    from matplotlib.ticker import MaxNLocator
    edges = np.arange(0, 257, 16)
    present = [(layer, np.asarray(strengths_by_layer.get(layer, ()), dtype=np.int64)) for layer in LAYERS]
    present = [(layer, m) for layer, m in present if m.size]
    width = 16 / max(len(present), 1)
    top = 0
    for n, (layer, m) in enumerate(present):
        counts, _ = np.histogram(m, bins=edges)
        top = max(top, int(counts.max()))
        ax.bar(edges[:-1] + n * width, counts, width=width, align="edge", color=LAYER_COLORS[layer],
               label=f"{layer} ({m.size})")
    if thermal_config is not None:
        promote = thermal_config.mags("promotion_thresholds")
        demote = thermal_config.mags("demotion_thresholds")
        for i, layer in enumerate(LAYERS):
            if i < 3:
                ax.axvline(int(promote[i]), color=LAYER_COLORS[layer], linestyle="-", linewidth=1.6,
                           label=f"{layer}: promote at {int(promote[i])}")
            if i > 0 and thermal_config.allow_demotion[i]:
                ax.axvline(int(demote[i]), color=LAYER_COLORS[layer], linestyle="--", linewidth=1.6,
                           label=f"{layer}: demote below {int(demote[i])}")
        prune = int(thermal_config.prune_threshold.magnitude)
        ax.axvline(prune, color="black", linestyle=":", linewidth=1.6, label=f"prune below {prune}")
    ax.set_title("Strength per layer (end)")
    ax.set_xlabel("strength magnitude (0-255)")
    ax.set_ylabel("entries")
    ax.set_xlim(0, 256)
    ax.set_xticks(range(0, 257, 32))
    if present:
        if top > 100:
            ax.set_yscale("log")
        else:
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(title="layer (entries), thresholds", fontsize="x-small", loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    else:
        ax.text(0.5, 0.5, "no entries", ha="center", va="center", transform=ax.transAxes)
    ax.grid(alpha=0.3, axis="y")


def confusion_order(confusion: Any) -> np.ndarray:
    """Columns (neurons) that won any tick, grouped by their majority concept,
    most-winning first within a concept."""
    c = np.asarray(confusion)
    used = np.flatnonzero(c.sum(axis=0) > 0)
    if used.size == 0:
        return used
    major = c[:, used].argmax(axis=0)
    total = c[:, used].sum(axis=0)
    return used[np.lexsort((-total, major))]


def plot_confusion(ax: Any, confusion: Any) -> Any:
    """Concept x prototype counts (only neurons that won a tick), with the purity in
    the title. Returns the image (for a colorbar)."""
    c = np.asarray(confusion, dtype=np.int64)
    cols = confusion_order(c)
    m = c[:, cols] if cols.size else np.zeros((c.shape[0], 1), np.int64)
    total = c.sum()
    purity = c.max(axis=0).sum() / total if total else 0.0
    im = ax.imshow(m, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_title(f"Concept vs prototype (purity {purity:.2f})")
    ax.set_xlabel("prototype (neuron id; only neurons that won a tick)")
    ax.set_ylabel("true concept")
    ax.set_yticks(range(c.shape[0]))
    if cols.size:
        step = max(1, int(np.ceil(cols.size / 24)))
        ax.set_xticks(range(0, cols.size, step))
        ax.set_xticklabels([str(int(x)) for x in cols[::step]], rotation=90, fontsize="small")
        if m.size <= 400:
            hi = m.max() if m.size else 0
            for (i, j), v in np.ndenumerate(m):
                if v:
                    ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                            color="black" if v > 0.6 * hi else "white")
    return im


def write_report(path: Any, history: Sequence[Mapping[str, int]],
                 strengths_by_layer: Mapping[str, Any], confusion: Any, *, thermal_config: Any = None,
                 forgotten: Optional[Sequence[Mapping[str, int]]] = None, forget: int = -1,
                 forget_at: Optional[int] = None,
                 baseline: Optional[Tuple[str, Any]] = None) -> str:
    """Write the report PNG to ``path`` and return the path.

    Parameters
    ----------
    history : sequence of mappings
        One row per sample time: ``tick`` and the entries of each layer
        (``hot``, ``warm``, ``cool``, ``cold``), e.g. ``Thermogram.layer_counts()``
        plus the tick. Every row after the first is marked as a consolidation.
    strengths_by_layer : mapping
        Layer name -> strength magnitudes (e.g. ``t.strengths("hot")["magnitude"]``).
    confusion : 2-D array
        ``confusion[c, r]``: ticks of concept ``c`` won by neuron ``r``.
    thermal_config : ThermalConfig, optional
        Draws its promotion, demotion and prune thresholds on the histogram.
    forgotten, forget, forget_at : optional
        Per row of ``history``, the entries per layer of concept ``forget``, which
        leaves the stream at tick ``forget_at``: a fourth panel (2 x 2 layout), and the
        forgetting phase shaded.
    baseline : (name, confusion), optional
        A baseline's confusion on the same stream; its purity goes in the title.
    """
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    four = forgotten is not None and len(forgotten) == len(history)
    if four:
        fig = Figure(figsize=(15, 10), layout="constrained")
        (a1, a4), (a2, a3) = fig.subplots(2, 2)
    else:
        fig = Figure(figsize=(17, 5.2), layout="constrained")
        a1, a2, a3 = fig.subplots(1, 3, width_ratios=[1, 1, 1.35])
    FigureCanvasAgg(fig)  # Agg, whatever the default backend is
    plot_layers(a1, history, forget_at=forget_at)
    if four:
        plot_forgotten(a4, history, forgotten, forget, forget_at=forget_at)
    plot_strengths(a2, strengths_by_layer, thermal_config)
    im = plot_confusion(a3, confusion)
    if baseline is not None:
        name, other = baseline
        c = np.asarray(other)
        total = c.sum()
        base = c.max(axis=0).sum() / total if total else 0.0
        a3.set_title(f"{a3.get_title()}; baseline {base:.2f}\n(baseline: {name})", fontsize="medium")
    fig.colorbar(im, ax=a3, label="ticks")
    fig.suptitle("thermogram demo: activation stream -> spiking network -> capsule", fontsize="large")
    path = os.fspath(path)
    fig.savefig(path, dpi=90 if four else 110)
    return path
