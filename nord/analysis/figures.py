"""Figures: searches compared (Figure 6.4), architectures overlaid (6.5) and the
rank-correlation heatmaps of chapters 4-5 (Figures 4.4, 4.5, 5.6-5.8).

Each function draws on a :class:`matplotlib.figure.Figure` of its own (never
pyplot's global figures, never ``matplotlib.use``), saves it when given a
path, and returns it so that it can be adjusted and saved again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np

from nord.analysis.curves import best_so_far, ecdf

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_search_comparison", "plot_architecture_overlay", "layer_depths", "new_figure",
           "save_figure", "draw_heatmap", "plot_epoch_curves"]

#: resolution of the PNG files the figure functions write
DPI = 120


def new_figure(width: float, height: float) -> "Figure":
    """A figure outside pyplot's registry: nothing global to close or leak."""
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height))


def save_figure(fig: "Figure", path, dpi: int = DPI) -> None:
    """Lay ``fig`` out tightly and write it to ``path`` (format from the suffix)."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)


def _finish(fig: "Figure", title: str, path) -> "Figure":
    """Title ``fig`` (when given one), save it to ``path`` (when given), return it."""
    if title:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_search_comparison(fitness: Dict[str, Sequence[float]], path=None,
                           ylabel: str = "fitness", title: str = "") -> "Figure":
    """Best so far against evaluations, and the empirical CDF, one line per search.

    Saved to ``path`` when given; the figure is returned either way.
    """
    fig = new_figure(11, 4)
    left, right = fig.subplots(1, 2)
    for name, values in fitness.items():
        values = np.asarray(values, dtype=float)
        left.plot(np.arange(1, values.size + 1), best_so_far(values), label=name)
        x, y = ecdf(values)
        right.step(x, y, where="post", label=name)
    left.set_xlabel("evaluations")
    left.set_ylabel(f"best {ylabel} so far")
    right.set_xlabel(ylabel)
    right.set_ylabel("share of evaluations ≤ value")
    for ax in (left, right):
        ax.legend()
    return _finish(fig, title, path)


def plot_epoch_curves(panels: Dict[str, Dict[str, Sequence[float]]], path=None,
                      title: str = "") -> "Figure":
    """Per-epoch curves, one panel per measure (its y label) and one line per run:
    ``{"training accuracy": {"serial": [...], "2 ranks": [...]}, ...}`` (the
    final-training curves of Figures 8.6/8.7). Saved to ``path`` when given."""
    fig = new_figure(5.5 * max(1, len(panels)), 4)
    axes = fig.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (ylabel, lines) in zip(axes, panels.items()):
        for name, values in lines.items():
            values = np.asarray(values, dtype=float)
            ax.plot(np.arange(1, values.size + 1), values, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if lines:
            ax.legend()
    return _finish(fig, title, path)


def layer_depths(descriptor) -> Dict[str, int]:
    """Longest-path depth of each active layer from the input (input = 0)."""
    from nord.neural_nets.graph import active_nodes, topological_order
    active = set(active_nodes(descriptor))
    depth: Dict[str, int] = {}
    incoming = descriptor.incoming_connections
    for name in topological_order(descriptor):
        if name not in active:
            continue
        parents = [p for p in incoming.get(name, []) if p in depth]
        depth[name] = 1 + max((depth[p] for p in parents), default=-1)
    return depth


def plot_architecture_overlay(descriptors: Iterable, path=None,
                              label_of: Optional[Callable] = None, alpha: float = 0.08,
                              title: str = "", label_order: Sequence[str] = ()) -> "Figure":
    """All architectures on one canvas: x = depth, y = layer type, each drawn faintly.

    Frequent paths show as dark strokes (thesis Figure 6.5). Inactive layers
    are left out; descriptors that do not validate are skipped. ``label_order``
    fixes the rows (bottom to top) of the labels it names. Saved to ``path``
    when given; the figure is returned either way.
    """
    from nord.neural_nets.visualization import layer_label
    label_of = label_of or (lambda spec: layer_label(spec.layer))
    drawn: List[tuple] = []
    labels: Dict[str, int] = {label: i for i, label in enumerate(label_order)}
    for descriptor in descriptors:
        if not descriptor.is_valid():
            continue
        depth = layer_depths(descriptor)
        names = {n: label_of(descriptor.layers[n]) for n in depth}
        for label in sorted(set(names.values())):
            labels.setdefault(label, len(labels))
        drawn.append((descriptor, depth, names))
    fig = new_figure(9, max(3.0, 0.45 * len(labels) + 1.5))
    ax = fig.subplots()
    rng = np.random.default_rng(0)  # small fixed jitter so coincident strokes stay visible
    for descriptor, depth, names in drawn:
        jitter = rng.uniform(-0.12, 0.12)
        position = {n: (depth[n], labels[names[n]] + jitter) for n in depth}
        for src, dst in descriptor.edges():
            if src in position and dst in position:
                (x0, y0), (x1, y1) = position[src], position[dst]
                ax.plot([x0, x1], [y0, y1], color="tab:blue", alpha=alpha, linewidth=1.5)
        xs, ys = zip(*position.values()) if position else ((), ())
        ax.scatter(xs, ys, color="tab:red", alpha=min(1.0, 2 * alpha), s=12)
    used = sorted({labels[n] for _, _, names in drawn for n in names.values()})
    ax.set_yticks(used)
    ax.set_yticklabels([label for label, row in labels.items() if row in used])
    ax.set_xlabel("depth (longest path from the input)")
    ax.set_title(title or f"{len(drawn)} architectures overlaid")
    if path is not None:
        save_figure(fig, path)
    return fig


def draw_heatmap(values, rows: Sequence[str], columns: Sequence[str], title: str, path=None,
                 value_range: Optional[tuple] = (-1.0, 1.0),
                 colormap: str = "RdYlGn") -> "Figure":
    """A matrix of values (taus, standard errors) with its numbers written in each
    cell: Figures 4.4/4.5 and 5.6-5.8. NaN cells stay blank."""
    matrix = np.asarray(values, dtype=float)
    fig = new_figure(max(6.0, 0.45 * len(columns) + 2.5), max(3.0, 0.45 * len(rows) + 1.8))
    axes = fig.subplots()
    finite = matrix[np.isfinite(matrix)]
    if value_range is not None:
        low, high = value_range
    else:
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    image = axes.imshow(np.ma.masked_invalid(matrix), cmap=colormap, vmin=low, vmax=high,
                        aspect="auto")
    axes.set_xticks(range(len(columns)), list(columns), rotation=90, fontsize="small")
    axes.set_yticks(range(len(rows)), list(rows), fontsize="small")
    small = matrix.size <= 400
    for (i, j), value in np.ndenumerate(matrix):
        if small and np.isfinite(value):
            axes.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6)
    axes.set_title(title, fontsize="medium")
    fig.colorbar(image, ax=axes, shrink=0.8)
    if path is not None:
        save_figure(fig, path)
    return fig
