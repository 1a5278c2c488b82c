"""``nord report``: plots and a Markdown summary of a finished (or running) search."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Sequence

import numpy as np

from nord.analysis.curves import best_so_far, ecdf, incumbent_indices
from nord.analysis.figures import DPI, new_figure, save_figure
from nord.errors import NordError
from nord.execution.store import EvaluationRecord, RunStore

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["write_report", "Report", "plot_best_so_far", "plot_fitness_ecdf"]

FIGURES = ("best_so_far.png", "fitness_ecdf.png")


class Report:
    """What a report says about one run store (pure summary of its rows)."""

    def __init__(self, store: RunStore) -> None:
        self.meta = store.meta()
        self.records: List[EvaluationRecord] = store.finished()
        self.pending = store.count("pending")
        self.settings = self.meta.get("settings", {})

    @property
    def fitness(self) -> np.ndarray:
        return np.array([r.fitness for r in self.records], dtype=float)

    @property
    def best(self) -> Optional[EvaluationRecord]:
        if not self.records:
            return None
        return self.records[int(incumbent_indices(self.fitness)[-1])]

    def statuses(self) -> dict:
        return dict(Counter(r.status for r in self.records))

    def markdown(self) -> str:
        s = self.settings
        lines = [f"# Search report: {s.get('strategy', '?')} on {s.get('space', '?')}", ""]
        lines += ["| setting | value |", "|---|---|"]
        for key in ("space", "strategy", "budget", "population", "sample", "seed", "fitness",
                    "cache", "executor", "workers", "threads", "synchronous", "cycle_size"):
            if s.get(key) is not None:
                lines.append(f"| {key} | {s[key]} |")
        for key, value in {**self.meta.get("space_settings", {}),
                           **(s.get("objective_options") or {})}.items():
            if value is not None and not isinstance(value, (dict, list)):
                lines.append(f"| {key} | {value} |")
        lines.append("")
        best = self.best
        if best is None:
            lines.append("No evaluation has finished yet.")
            return "\n".join(lines) + "\n"
        if best.status not in ("ok", "cached"):
            lines += ["## No successful evaluation", "",
                      f"All {len(self.records)} finished evaluations failed or were invalid; "
                      f"the first reasons are listed below.", ""]
        else:
            lines += ["## Best architecture", "",
                      f"Evaluation #{best.id} (result {self._position(best) + 1} of "
                      f"{len(self.records)} to arrive), fitness **{best.fitness:.6g}**.", ""]
        if best.metrics:
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {k} | {_cell(v)} |" for k, v in best.metrics.items()]
            lines.append("")
        lines += ["Architecture:", "", "```", self.describe_architecture(best.architecture),
                  "```", ""]
        counts = self.statuses()
        ok = [r for r in self.records if r.status in ("ok", "cached")]
        logic = [(r.ask_seconds or 0) + (r.tell_seconds or 0) for r in self.records]
        evaluating = [r.eval_seconds for r in self.records
                      if r.eval_seconds is not None and r.status != "cached"]
        lines += ["## Counts and time", "", "| quantity | value |", "|---|---|",
                  f"| evaluations finished | {len(self.records)} |",
                  f"| pending | {self.pending} |"]
        lines += [f"| {status} | {n} |" for status, n in sorted(counts.items())]
        if counts.get("cached"):
            lines.append(f"| share of the budget spent on repeats (cached) | "
                         f"{counts['cached'] / len(self.records):.0%} |")
        lines += [f"| mean fitness of successful evaluations | {np.mean([r.fitness for r in ok]):.6g} |"
                  if ok else "| mean fitness | - |",
                  f"| wall time | {self.meta.get('wall_seconds', float('nan')):.2f} s |",
                  f"| time in evaluations | {sum(evaluating):.2f} s |",
                  f"| search-logic overhead (ask + tell) | {1000 * np.mean(logic):.3f} ms per step |",
                  self._training_time_row(),
                  ""]
        failures = [r for r in self.records if r.status in ("invalid", "not_in_table", "failed")]
        if failures:
            lines += ["## Failed and invalid evaluations (first 5)", ""]
            for r in failures[:5]:
                first = (r.error or "").strip().splitlines()[0] if r.error else ""
                lines.append(f"- #{r.id} {r.status}: {first}")
            lines.append("")
        lines += ["## Figures", "", "![best so far](best_so_far.png)", "",
                  "![fitness ECDF](fitness_ecdf.png)", ""]
        return "\n".join(lines)

    def describe_architecture(self, architecture) -> str:
        """The space's own description of an architecture (table 6.1 names for
        REMNet genomes, ...), or its stored JSON where the space cannot say (a
        space no longer registered, or changed since the run: a warning says so)."""
        from nord.design.spaces import get_space
        try:
            space = get_space(self.settings["space"], **self.meta.get("space_settings", {}))
            return space.describe(space.decode(architecture))
        except (NordError, LookupError, TypeError, ValueError) as error:
            logging.getLogger(__name__).warning(
                "the %s space cannot describe a stored architecture (%s); showing its "
                "stored form", self.settings.get("space"), error)
            return _pretty(architecture)

    def _training_time_row(self) -> str:
        costs = [r.cost for r in self.records if r.cost]
        if self.settings.get("space") in ("nasbench101", "nasbench201"):
            if not costs:
                return "| simulated training time | - (the table holds no training times) |"
            return f"| simulated training time (the table's) | {sum(costs):.0f} s |"
        return f"| training and scoring time (measured) | {sum(costs):.1f} s |"

    def _position(self, record: EvaluationRecord) -> int:
        return [r.id for r in self.records].index(record.id)


def _cell(value) -> str:
    """A value that cannot break a Markdown table row."""
    text = f"`{value}`" if isinstance(value, str) and "|" in value else str(value)
    return text.replace("|", "\\|")


def _pretty(architecture) -> str:
    if isinstance(architecture, str) and architecture.startswith("{"):
        try:
            return json.dumps(json.loads(architecture), indent=1)
        except ValueError:
            pass
    return str(architecture)


def plot_best_so_far(fitness: Sequence[float], path=None, title: str = "",
                     dpi: int = DPI) -> "Figure":
    """Each evaluation's fitness (dots) and the best so far (line), in evaluation
    order; saved to ``path`` when given, and returned."""
    fitness = np.asarray(fitness, dtype=float)
    steps = np.arange(1, fitness.size + 1)
    fig = new_figure(6, 4)
    ax = fig.subplots()
    ax.plot(steps, fitness, ".", alpha=0.35, label="evaluation")
    ax.plot(steps, best_so_far(fitness), "-", label="best so far")
    ax.set_xlabel("evaluations")
    ax.set_ylabel("fitness")
    ax.set_title(title)
    ax.legend(loc="lower right")
    if path is not None:
        save_figure(fig, path, dpi)
    return fig


def plot_fitness_ecdf(fitness: Sequence[float], path=None, title: str = "",
                      dpi: int = DPI) -> "Figure":
    """The empirical CDF of the fitness of successful evaluations; saved to
    ``path`` when given, and returned."""
    x, y = ecdf(fitness)
    fig = new_figure(6, 4)
    ax = fig.subplots()
    ax.step(x, y, where="post")
    ax.set_xlabel("fitness (successful evaluations)")
    ax.set_ylabel("share of evaluations ≤ fitness")
    ax.set_title(title)
    if path is not None:
        save_figure(fig, path, dpi)
    return fig


def write_report(out, dpi: int = DPI) -> Path:
    """Write ``summary.md``, ``best_so_far.png`` and ``fitness_ecdf.png`` into ``out``."""
    out = Path(out)
    with RunStore(out / "run.sqlite", create=False) as store:
        report = Report(store)
    title = f"{report.settings.get('strategy', '')} on {report.settings.get('space', '')}"
    plot_best_so_far(report.fitness, out / FIGURES[0], title, dpi)
    ok = [r.fitness for r in report.records if r.status in ("ok", "cached")]
    plot_fitness_ecdf(ok, out / FIGURES[1], title, dpi)

    path = out / "summary.md"
    path.write_text(report.markdown() + f"\n_Report written {time.strftime('%Y-%m-%d %H:%M:%S')}._\n")
    return path
