"""Plots of a capsule's life, as ``thermogram demo`` writes them.

:func:`write_report` draws three panels into one PNG: entries per thermal
layer over ticks, the strength histogram of each layer, and the
concept-versus-prototype confusion matrix of the spiking network. The
``plot_*`` functions draw one panel each onto a given matplotlib axes, for
notebooks.

matplotlib is imported only when a plot is drawn, with the non-interactive
Agg backend for files.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import ThermogramError

__all__ = ["write_report", "plot_layers", "plot_strengths", "plot_confusion", "confusion_order",
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


def plot_layers(ax: Any, history: Sequence[Mapping[str, int]]) -> None:
    """Entries per layer (lines) against ``history[i]["tick"]``."""
    ticks = [h["tick"] for h in history]
    for layer in LAYERS:
        ax.plot(ticks, [h[layer] for h in history], marker="o", markersize=3, label=layer,
                color=LAYER_COLORS[layer])
    ax.set_title("Layer populations")
    ax.set_xlabel("tick")
    ax.set_ylabel("entries")
    ax.grid(alpha=0.3)
    ax.legend(title="layer", fontsize="small")


def plot_strengths(ax: Any, strengths_by_layer: Mapping[str, Any]) -> None:
    """Histogram of strength magnitudes (0-255), one bar per layer in each bin of 16;
    the count axis turns logarithmic when counts span more than two decades."""
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
        ax.legend(title="layer (entries)", fontsize="small", loc="upper left")
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
                 strengths_by_layer: Mapping[str, Any], confusion: Any) -> str:
    """Write the three-panel PNG to ``path`` and return the path.

    Parameters
    ----------
    history : sequence of mappings
        One row per sample time: ``tick`` and the entries of each layer
        (``hot``, ``warm``, ``cool``, ``cold``), e.g. ``Thermogram.layer_counts()``
        plus the tick.
    strengths_by_layer : mapping
        Layer name -> strength magnitudes (e.g. ``t.strengths("hot")["magnitude"]``).
    confusion : 2-D array
        ``confusion[c, r]``: ticks of concept ``c`` won by neuron ``r``.
    """
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(17, 5.2), layout="constrained")
    FigureCanvasAgg(fig)  # Agg, whatever the session's default backend
    a1, a2, a3 = fig.subplots(1, 3, width_ratios=[1, 1, 1.35])
    plot_layers(a1, history)
    plot_strengths(a2, strengths_by_layer)
    im = plot_confusion(a3, confusion)
    fig.colorbar(im, ax=a3, label="ticks")
    fig.suptitle("thermogram demo: activation stream -> spiking network -> capsule", fontsize="large")
    path = os.fspath(path)
    fig.savefig(path, dpi=110)
    return path
