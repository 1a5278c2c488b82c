"""Figures of the chapter 4-5 studies, each drawn from plain data.

As :mod:`nord.analysis.figures`: every function draws on a figure of its own
(no pyplot, no backend chosen), saves it when given a path, and returns it.
The studies call them from their ``analyse``; the heatmaps of the ranking
study are :func:`nord.analysis.figures.draw_heatmap`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Mapping, Optional, Sequence

import numpy as np

from nord.analysis.figures import new_figure, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["draw_rastrigin", "draw_accuracy_histograms", "draw_bootstrap_distributions",
           "draw_fidelity_budgets"]


def draw_rastrigin(original: np.ndarray, noisy: np.ndarray, achieved_tau: float,
                   bound: float = 5.12, path=None) -> "Figure":
    """Figures 4.6/5.4: a 2-D Rastrigin mesh beside its noisy copy."""
    points = original.shape[0]
    fig = new_figure(9, 4)
    for axes, values, title in zip(fig.subplots(1, 2), (original, noisy),
                                   ("original", f"perturbed, τ = {achieved_tau:.3f}")):
        image = axes.imshow(values, cmap="gray", origin="lower", extent=(-bound, bound) * 2)
        axes.set_title(f"Rastrigin 2-D {points}×{points}, {title}")
        fig.colorbar(image, ax=axes, shrink=0.8)
    if path is not None:
        save_figure(fig, path)
    return fig


def draw_accuracy_histograms(groups: Mapping[str, Sequence[float]], xlabel: str, title: str,
                             path=None, bins: Optional[np.ndarray] = None) -> "Figure":
    """Figures 5.5 and 5.9: one step histogram of accuracies per labelled group."""
    fig = new_figure(8, 4.5)
    axes = fig.subplots()
    for label, values in groups.items():
        axes.hist(np.asarray(values, dtype=float), bins=30 if bins is None else bins,
                  histtype="step", linewidth=1.5, label=label)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("count")
    axes.set_title(title)
    axes.legend(loc="upper left")
    if path is not None:
        save_figure(fig, path)
    return fig


def draw_bootstrap_distributions(distributions: Mapping[str, Dict[str, Sequence[float]]],
                                 standard_errors: Mapping[str, Dict[str, float]],
                                 path=None) -> "Figure":
    """Figures 5.10/5.11: a histogram of bootstrap taus per group (columns) and kind
    (rows, e.g. 'raw' and 'rounded'), the standard error in each title."""
    kinds = list(distributions)
    groups = list(next(iter(distributions.values())))
    fig = new_figure(3.2 * len(groups), 2.75 * len(kinds))
    grid = fig.subplots(len(kinds), len(groups), squeeze=False)
    for row, kind in enumerate(kinds):
        for column, group in enumerate(groups):
            axes = grid[row][column]
            axes.hist(np.asarray(distributions[kind][group], dtype=float), bins=30,
                      color=f"C{column}")
            axes.set_title(f"{group}, {kind} [{standard_errors[kind][group]:.2e}]",
                           fontsize="medium")
            axes.tick_params(labelsize="small")
            if row == len(kinds) - 1:
                axes.set_xlabel("bootstrap tau-b")
    if path is not None:
        save_figure(fig, path)
    return fig


def draw_fidelity_budgets(budgets: Sequence[Mapping], target: float, title: str,
                          path=None) -> "Figure":
    """Each budget's tau against its cost ratio (log scale), the target as a line."""
    fig = new_figure(6.5, 4.5)
    axes = fig.subplots()
    for b in budgets:
        if b.get("tau") is None or b.get("cost_ratio") is None:
            continue
        axes.errorbar(b["cost_ratio"], b["tau"], yerr=b.get("standard_error") or 0.0,
                      fmt="o", color="C0")
        axes.annotate(f"{b['epochs']} ep, {100 * b['share']:g} %", (b["cost_ratio"], b["tau"]),
                      fontsize="x-small", xytext=(4, 4), textcoords="offset points")
    axes.axhline(target, color="C3", linestyle="--", label=f"target {target:g}")
    axes.set_xscale("log")
    axes.set_xlabel("training time relative to the largest budget")
    axes.set_ylabel("bootstrap tau-b against the largest (rounded)")
    axes.set_title(title)
    axes.legend()
    if path is not None:
        save_figure(fig, path)
    return fig
