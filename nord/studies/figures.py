"""Figures of the studies (chapters 4, 5 and 7), each drawn from plain data.

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
           "draw_fidelity_budgets", "draw_grouped_boxplots", "draw_tau_vs_parameters",
           "draw_search_progress"]


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


def draw_search_progress(fitness: Sequence[float], ylabel: str, title: str,
                         path=None) -> "Figure":
    """Figures 7.3/7.4: every evaluation's fitness in the order evaluated (points)
    and the best found so far (a line)."""
    values = np.asarray(fitness, dtype=float)
    fig = new_figure(8, 4.5)
    axes = fig.subplots()
    steps = np.arange(1, len(values) + 1)
    axes.scatter(steps, values, s=8, alpha=0.4, color="C0", label="evaluated")
    if len(values):
        axes.plot(steps, np.fmax.accumulate(values), color="C3", linewidth=2,
                  label="best so far")
    axes.set_xlabel("evaluation")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.legend(loc="lower right")
    if path is not None:
        save_figure(fig, path)
    return fig


def draw_grouped_boxplots(groups: Mapping[str, Sequence[float]], ylabel: str, title: str,
                          path=None) -> "Figure":
    """Figures 7.5/7.6: one box per group (e.g. the final aggregation layer), the
    group's size under its name."""
    names = list(groups)
    fig = new_figure(max(5.0, 1.3 * len(names) + 2), 4.5)
    axes = fig.subplots()
    data = [np.asarray(groups[n], dtype=float) for n in names]
    axes.boxplot(data, showfliers=True)
    axes.set_xticks(range(1, len(names) + 1),
                    [f"{n}\n(n={len(d)})" for n, d in zip(names, data)])
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if path is not None:
        save_figure(fig, path)
    return fig


def draw_tau_vs_parameters(parameters: Sequence[float], tau: Sequence[float],
                           top_tau: Sequence[float], title: str, path=None) -> "Figure":
    """Figures 7.7/7.8: each network's Kendall tau against its parameter count,
    coloured by its tau on the top 50 % of the test architectures."""
    fig = new_figure(7.5, 4.5)
    axes = fig.subplots()
    points = axes.scatter(np.asarray(parameters, dtype=float), np.asarray(tau, dtype=float),
                          c=np.asarray(top_tau, dtype=float), cmap="viridis", s=14)
    fig.colorbar(points, ax=axes, label="top-50 % Kendall tau")
    axes.set_xscale("log")
    axes.set_xlabel("trainable parameters")
    axes.set_ylabel("Kendall tau")
    axes.set_title(title)
    if path is not None:
        save_figure(fig, path)
    return fig
