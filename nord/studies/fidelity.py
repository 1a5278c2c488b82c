"""The fidelity advisor: how little training can a search get away with, here?

Chapters 4-5 answer once, for their spaces: a proxy whose ranking agrees with
full training to a Kendall tau of about 0.75 (on rounded accuracies) already
finds solutions nearly as good, at a fraction of the cost (table 5.4). This
study asks the same question of *your* space and dataset, before a search:

1. a small seeded sample of the space's architectures is trained at several
   budgets, each an (epochs, share of the training data) pair; the budgets
   of one share are read off one training run (``score_at``), and each
   budget's training time is measured;
2. each budget's bootstrap tau-b against the largest budget (rounded
   accuracies, 800 resamples) is estimated;
3. the cheapest budget whose tau reaches ``target`` (default 0.75, the
   thesis's practical threshold) is recommended, with its cost ratio to the
   largest budget.

``nord search ... --fidelity-from <study folder>`` then trains its
candidates at the recommended epochs and share. Like every study, it runs
through the run loop and store: resumable, parallel on any executor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from nord.errors import SettingsError, StatisticsInputError, StudyError
from nord.execution.objectives import Objective, Outcome
from nord.studies.base import Study, StudyOutcome, Trial, check_seed
from nord.studies.ranking import scores_by_budget

__all__ = ["FidelityStudy", "FidelityObjective", "Recommendation", "recommend",
           "load_recommendation", "DEFAULT_TARGET"]

#: the thesis's practical threshold of rank agreement (§5.3.3)
DEFAULT_TARGET = 0.75


def _check_target(target: float) -> float:
    if not -1.0 < float(target) < 1.0:
        raise StatisticsInputError(f"a target tau must lie in (-1, 1), got {target}; the "
                                   f"thesis's practical threshold is {DEFAULT_TARGET}")
    return float(target)


class FidelityObjective(Objective):
    """Trains one architecture on one data share, scoring it after each epoch budget."""

    name = "fidelity"

    def __init__(self, space: str, space_options: dict, dataset: str, epochs: Sequence[int],
                 optimizer: str, batch_size: int, seed: int, split: str,
                 data_options: Optional[dict] = None) -> None:
        self.space, self.space_options = space, dict(space_options)
        self.dataset, self.epochs = dataset, tuple(int(e) for e in epochs)
        self.optimizer, self.batch_size = optimizer, int(batch_size)
        self.seed, self.split = int(seed), split
        self.data_options = dict(data_options or {})

    def _make_evaluator(self):
        from nord.neural_nets import LocalEvaluator
        return LocalEvaluator(self.optimizer, batch_size=self.batch_size, seed=self.seed,
                              split=self.split, data_options=self.data_options)

    def prepare(self) -> None:
        self.evaluator.configs[self.dataset]  # an unknown dataset fails now

    def evaluate(self, trial) -> Outcome:
        from nord.design.spaces import get_space
        space = get_space(self.space, **self.space_options)
        descriptor = space.to_descriptor(space.decode(trial.params["architecture"]))
        result = self.evaluator.descriptor_evaluate(
            descriptor, max(self.epochs), self.dataset, trial.params["share"],
            score_at=self.epochs)
        accuracy, seconds = scores_by_budget(result, self.epochs)
        return Outcome(accuracy[str(max(self.epochs))],
                       {"accuracy": accuracy, "train_seconds": seconds,
                        "failed": bool(result.failed)}, result.total_time)

    def key(self, trial) -> str:
        return trial.canonical_hash()


@dataclass(frozen=True)
class Recommendation:
    """The cheapest budget whose tau reaches the target."""

    epochs: int
    share: float
    tau: float
    standard_error: float
    cost_ratio: float
    target: float

    def line(self) -> str:
        return (f"{self.epochs} epochs on {100 * self.share:g} % of the training data: tau "
                f"{self.tau:.3f} ± {self.standard_error:.3f} against the largest budget "
                f"(target {self.target:g}) at {self.cost_ratio:.3f} of its training time "
                f"({1 / self.cost_ratio:.1f}x cheaper)")


def recommend(budgets: Sequence[dict], target: float = DEFAULT_TARGET) -> Recommendation:
    """The cheapest of ``budgets`` (dicts with epochs, share, tau, standard_error,
    cost_ratio; the largest budget has cost ratio 1) whose tau reaches ``target``."""
    target = _check_target(target)
    for budget in budgets:
        if (not isinstance(budget, dict) or not isinstance(budget.get("epochs"), int)
                or not all(isinstance(budget.get(k), (int, float, type(None)))
                           for k in ("share", "tau", "standard_error", "cost_ratio"))):
            raise StudyError(f"a budget {str(budget)[:80]} is not (epochs, share, tau, "
                             f"standard_error, cost_ratio); the study's results are damaged: "
                             f"run nord report on its folder to write them again")
    reduced = [b for b in budgets if b["cost_ratio"] is not None and b["cost_ratio"] < 1.0
               and b["tau"] is not None]
    reaching = [b for b in reduced if b["tau"] >= target]
    if not reaching:
        best = max(reduced, key=lambda b: b["tau"], default=None)
        closest = ("" if best is None else
                   f"; the closest is {best['epochs']} epochs on {100 * best['share']:g} % "
                   f"with tau {best['tau']:.3f}")
        raise StudyError(f"no reduced budget reaches tau {target:g} against the largest"
                         f"{closest}: train longer budgets (more --epochs or --shares) or "
                         f"accept a lower --target")
    best = min(reaching, key=lambda b: (b["cost_ratio"], -b["tau"]))
    return Recommendation(int(best["epochs"]), float(best["share"]), float(best["tau"]),
                          float(best["standard_error"]), float(best["cost_ratio"]), target)


@dataclass
class FidelityStudy(Study):
    """Budgets = ``epochs`` x ``shares`` for ``architectures`` sampled from ``space``.

    The defaults (12 DeepNEAT architectures, epochs 1, 2, 4 on 1 % and 2 % of
    Fashion-MNIST, scored on a 2 % validation split) take a few minutes on 2
    cores; for a real search, study the budgets it would use (``epochs`` up to
    the search's, ``shares`` up to 1.0)."""

    space: str = "deepneat"
    dataset: str = "fashion-mnist"
    architectures: int = 12
    epochs: Sequence[int] = (1, 2, 4)
    shares: Sequence[float] = (0.01, 0.02)
    optimizer: str = "adam"
    batch_size: int = 64
    split: str = "validation"
    validation_fraction: Optional[float] = 0.02
    target: float = DEFAULT_TARGET
    resamples: int = 800
    seed: int = 0
    space_options: Optional[Dict[str, Any]] = None
    _sample: Optional[list] = field(default=None, repr=False, compare=False)

    name = "fidelity"

    def __post_init__(self) -> None:
        from nord.data_curators.splits import check_percentage
        from nord.design.spaces import SPACES
        from nord.neural_nets.optimizers import resolve_optimizer
        SPACES[self.space]  # an unknown space fails now, with the close names
        resolve_optimizer(self.optimizer)
        self.space_options = dict(self.space_options or {})
        self.architectures = int(self.architectures)
        if self.architectures < 4:
            raise SettingsError(f"a fidelity study needs at least 4 architectures to rank, "
                                f"got {self.architectures}")
        self.epochs = tuple(sorted({int(e) for e in self.epochs}))
        self.shares = tuple(sorted({check_percentage(s) for s in self.shares}))
        if self.epochs[0] < 1 or len(self.epochs) * len(self.shares) < 2:
            raise SettingsError(f"the budgets (epochs {list(self.epochs)} x shares "
                                f"{list(self.shares)}) must hold at least two, all with "
                                f">= 1 epoch")
        self.target = _check_target(self.target)
        self.seed = check_seed(self.seed)
        if self.split not in ("validation", "test"):
            raise SettingsError(f"split is 'validation' or 'test', got {self.split!r}")

    def settings(self) -> dict:
        return {"space": self.space, "dataset": self.dataset,
                "architectures": self.architectures, "epochs": list(self.epochs),
                "shares": list(self.shares), "optimizer": self.optimizer,
                "batch_size": int(self.batch_size), "split": self.split,
                "validation_fraction": self.validation_fraction, "target": self.target,
                "resamples": int(self.resamples), "seed": int(self.seed),
                "space_options": self.space_options}

    def sample(self) -> List[Any]:
        """``architectures`` distinct encoded architectures of the space, seeded (drawn
        once per study object)."""
        if self._sample is None:
            self._sample = self._draw()
        return self._sample

    def _draw(self) -> List[Any]:
        from nord.design.spaces import get_space
        space = get_space(self.space, **self.space_options)
        rng = np.random.default_rng(int(self.seed))
        chosen, seen = [], set()
        for _ in range(100 * self.architectures):
            architecture = space.sample(rng)
            key = space.to_descriptor(architecture).canonical_hash()
            if key not in seen:
                seen.add(key)
                chosen.append(json.loads(json.dumps(space.encode(architecture))))
                if len(chosen) == self.architectures:
                    return chosen
        raise SettingsError(f"the {self.space} space gave only {len(chosen)} distinct "
                            f"architectures in {100 * self.architectures} draws")

    def trials(self) -> List[dict]:
        return [{"index": i, "share": share, "architecture": a}
                for share in self.shares for i, a in enumerate(self.sample())]

    def objective(self) -> FidelityObjective:
        options = ({} if self.validation_fraction is None
                   else {"validation_fraction": float(self.validation_fraction)})
        return FidelityObjective(self.space, self.space_options, self.dataset, self.epochs,
                                 self.optimizer, self.batch_size, int(self.seed), self.split,
                                 options)

    def budgets(self, records) -> List[dict]:
        """Each budget's accuracies' tau against the largest, and its cost."""
        from nord.analysis.ranking import bootstrap_correlation, kendall_tau, round_accuracies
        accuracy: Dict[tuple, np.ndarray] = {}
        seconds: Dict[tuple, list] = {}
        for record in records:
            p = Trial.from_json(record.descriptor).params
            for e in self.epochs:
                key = (e, p["share"])
                accuracy.setdefault(key, np.full(self.architectures, np.nan))[p["index"]] = (
                    record.metrics.get("accuracy", {}).get(str(e), 0.0))
                if str(e) in record.metrics.get("train_seconds", {}):
                    seconds.setdefault(key, []).append(record.metrics["train_seconds"][str(e)])
        largest = (max(self.epochs), max(self.shares))
        reference = round_accuracies(accuracy[largest])
        full_cost = float(np.mean(seconds.get(largest, [np.nan])))
        rows = []
        for i, key in enumerate(sorted(accuracy)):
            cost = float(np.mean(seconds.get(key, [np.nan])))
            row = {"epochs": key[0], "share": key[1], "seconds": cost,
                   "cost_ratio": 1.0 if key == largest else cost / full_cost,
                   "mean_accuracy": float(np.mean(accuracy[key]))}
            if key == largest:
                row.update(tau=1.0, standard_error=0.0, raw_tau=1.0)
            else:
                values = round_accuracies(accuracy[key])
                boot = bootstrap_correlation(values, reference, resamples=int(self.resamples),
                                             seed=int(self.seed) * 1009 + i)
                row.update(tau=None if not np.isfinite(boot.estimate) else boot.estimate,
                           standard_error=boot.standard_error,
                           raw_tau=kendall_tau(accuracy[key], accuracy[largest]).statistic)
            if not np.isfinite(row["cost_ratio"]):
                row["cost_ratio"] = None  # no timing (every training of it diverged)
            rows.append(row)
        return rows

    def analyse(self, records, folder: Path) -> StudyOutcome:
        rows = self.budgets(records)
        lines = [f"Fidelity study: {self.architectures} {self.space} architectures on "
                 f"{self.dataset} ({self.optimizer}), bootstrap tau-b of rounded "
                 f"{self.split} accuracies against the largest budget "
                 f"({max(self.epochs)} epochs, {100 * max(self.shares):g} %)", "",
                 "| epochs | share | train s | cost ratio | mean acc | tau raw | "
                 "tau rounded ± SE |", "|---|---|---|---|---|---|---|"]
        for r in sorted(rows, key=lambda r: (r["cost_ratio"] is None, r["cost_ratio"] or 0)):
            tau = "–" if r["tau"] is None else f"{r['tau']:.3f} ± {r['standard_error']:.3f}"
            lines.append(f"| {r['epochs']} | {100 * r['share']:g} % | {r['seconds']:.2f} | "
                         f"{_number(r['cost_ratio'])} | {100 * r['mean_accuracy']:.1f} | "
                         f"{r['raw_tau']:.3f} | {tau} |")
        results: Dict[str, Any] = {"settings": self.settings(), "budgets": rows}
        try:
            chosen = recommend(rows, self.target)
        except StudyError as error:  # reported in the table and raised by --fidelity-from
            lines += ["", f"No recommendation: {error}"]
            results["recommendation"] = None
            results["unreachable"] = str(error)
        else:
            lines += ["", f"Recommendation: {chosen.line()}", "",
                      f"Use it: nord search --space {self.space} --dataset {self.dataset} "
                      f"--fidelity-from {folder}"]
            results["recommendation"] = {
                "epochs": chosen.epochs, "share": chosen.share, "tau": chosen.tau,
                "standard_error": chosen.standard_error, "cost_ratio": chosen.cost_ratio,
                "target": chosen.target}
        text = "\n".join(lines)
        path = folder / "fidelity.md"
        path.write_text(text + "\n")
        figure = self.budgets_figure(rows, folder / "fidelity.png")
        return StudyOutcome(text, [path, figure], results)

    def budgets_figure(self, rows, path: Path) -> Path:
        """Tau against cost ratio, one point per budget, the target as a line."""
        from nord.studies.figures import draw_fidelity_budgets
        draw_fidelity_budgets(rows, self.target, f"{self.space} on {self.dataset}", path)
        return path


def _number(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def load_recommendation(folder, target: Optional[float] = None) -> tuple:
    """``(recommendation, study settings)`` of the fidelity study in ``folder``
    (``target`` re-decides it at another threshold)."""
    from nord.studies.base import load_study_records
    name, settings, records = load_study_records(folder)
    if name != FidelityStudy.name:
        raise StudyError(f"{folder} holds a {name!r} study, not a fidelity study; run nord "
                         f"study fidelity --out {folder} first")
    path = Path(folder) / "results.json"
    if not path.exists():
        raise StudyError(f"{folder} holds an unfinished fidelity study (no results.json); "
                         f"finish it with nord study fidelity --resume --out {folder}")
    try:
        results = json.loads(path.read_text())
        budgets = results["budgets"]
    except (ValueError, KeyError, TypeError) as error:
        raise StudyError(f"{path} is not a fidelity study's results ({error}); run the "
                         f"study again in another folder") from error
    return recommend(budgets, settings.get("target", DEFAULT_TARGET)
                     if target is None else target), settings
