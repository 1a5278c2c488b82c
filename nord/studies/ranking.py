"""Ranking retention under reduced training (thesis chapters 4 and 5).

``architectures`` DeepNEAT networks are each trained with each of the seven
optimizers (Adadelta, Adam, Adamax, RMSprop, SGD, SGD with momentum, SGD
with Nesterov momentum), and their accuracy is recorded after each epoch
budget. A training has no learning-rate schedule, so a budget's score is read
off the one training run of the largest budget (scoring after epoch ``e``
changes nothing in the training; :meth:`LocalEvaluator.descriptor_evaluate`'s
``score_at``): one trial per (architecture, optimizer). With
``independent_budgets=True`` each budget is trained on its own, from its own
seed, as the thesis did: one trial per (architecture, optimizer, budget), and
the budgets' costs add up instead of sharing one run.

The analysis ranks the architectures by each (optimizer, budget) and compares
every partially-trained group (PTG) with each optimizer's fully-trained group
(FTG, the largest budget) by Kendall's tau-b: raw (Figures 4.4, 5.6 without
bootstrap), on accuracies rounded to the integer percent (Figure 5.7), with
800 bootstrap resamples (Figure 5.6, the standard errors of Figure 5.8), and
on a subset: chapter 4's youngest architectures of the lineage (Figure 4.5)
or, for chapter 5's unordered sample, the better half by the FTG. Beside
them: the accuracy distributions (Figure 5.5), the mean accuracies (table 5.3)
and the mean training times (table 4.2).

Architectures come from chapter 5's scheme (``scheme='chapter5'``:
:func:`~nord.design.spaces.deepneat.diverse_sample`, Table 5.2's ranges) or
chapter 4's (``'chapter4'``: one network evolved generation by generation,
:func:`~nord.design.spaces.deepneat.evolve_lineage`, Table 4.1's settings);
``space_options`` change the DeepNEAT space (``{'filters': [8, 16]}``).
A training that diverges is a result, not a fault: its accuracy counts as 0
from the epoch it failed (the thesis's fitness of failed networks); a trial
that raises stops the analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from nord.errors import SettingsError, StatisticsInputError, StudyError
from nord.execution.objectives import Objective, Outcome
from nord.studies.base import Study, StudyOutcome, Trial, check_resamples, check_seed

__all__ = ["RankingStudy", "RankingObjective", "SEVEN_OPTIMIZERS", "accuracy_lists",
           "scores_by_budget",
           "THESIS_TABLE_5_3"]

#: chapter 4's seven optimizers, by their names in nord.neural_nets.optimizers
SEVEN_OPTIMIZERS = ("adadelta", "adam", "adamax", "rmsprop", "sgd", "sgd_momentum",
                    "sgd_nesterov")
LABELS = {"adadelta": "Adadelta", "adam": "Adam", "adamax": "Adamax", "rmsprop": "RMSprop",
          "sgd": "SGD", "sgd_momentum": "SGD-M", "sgd_nesterov": "SGD-NM"}
#: table 5.3: mean CIFAR-10 test accuracy (%) after 1, 5, 10, 20, 50 epochs
THESIS_TABLE_5_3 = {
    "adadelta": (33.51, 37.07, 39.08, 39.60, 39.81), "adam": (38.87, 41.78, 42.28, 42.35, 42.90),
    "adamax": (38.84, 42.02, 42.62, 42.44, 42.45), "rmsprop": (29.55, 31.05, 32.66, 33.16, 33.79),
    "sgd": (35.41, 38.82, 39.32, 40.48, 41.40), "sgd_momentum": (38.30, 41.88, 43.07, 42.23, 43.65),
    "sgd_nesterov": (39.39, 42.33, 43.36, 43.67, 44.03),
}


def _space(scheme: str, options: Optional[dict] = None):
    from nord.design.spaces.deepneat import DeepNEATSpace
    options = dict(options or {})
    return DeepNEATSpace.chapter4(**options) if scheme == "chapter4" else DeepNEATSpace(**options)


def scores_by_budget(result, budgets: Sequence[int]):
    """``({'1': accuracy after 1 epoch, ...}, {'1': training seconds, ...})`` of one
    training scored at ``budgets``; a budget after the training diverged scores 0
    (and has no time)."""
    accuracy = {str(b): float(result.checkpoints[b]["accuracy"]) if b in result.checkpoints
                else 0.0 for b in budgets}
    seconds = {str(b): float(result.checkpoints[b]["train_seconds"])
               for b in budgets if b in result.checkpoints}
    return accuracy, seconds


class RankingObjective(Objective):
    """Trains one (architecture, optimizer) trial and scores it at every budget."""

    name = "ranking"

    def __init__(self, scheme: str, dataset: str, percentage: float, budgets: Sequence[int],
                 batch_size: int, seed: int, split: str,
                 data_options: Optional[dict] = None,
                 space_options: Optional[dict] = None) -> None:
        self.scheme, self.dataset, self.percentage = scheme, dataset, float(percentage)
        self.space_options = dict(space_options or {})
        self.budgets = tuple(int(b) for b in budgets)
        self.batch_size, self.seed, self.split = int(batch_size), int(seed), split
        self.data_options = dict(data_options or {})
        self._evaluators: Dict[str, Any] = {}

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_evaluators"] = {}
        return state

    def trainer(self, optimizer: str, seed: Optional[int] = None):
        """The LocalEvaluator of ``optimizer`` seeded with ``seed`` (default: the
        study's); all share one loaded dataset."""
        key = (optimizer, self.seed if seed is None else int(seed))
        if key not in self._evaluators:
            from nord.neural_nets import LocalEvaluator
            evaluator = LocalEvaluator(optimizer, batch_size=self.batch_size, seed=key[1],
                                       split=self.split, data_options=self.data_options)
            if self._evaluators:
                next(iter(self._evaluators.values())).share_data_with(evaluator)
            self._evaluators[key] = evaluator
        return self._evaluators[key]

    def prepare(self) -> None:
        trainer = self.trainer(SEVEN_OPTIMIZERS[1])
        trainer.configs[self.dataset]  # an unknown dataset fails now
        trainer.load_data(self.dataset, self.percentage)

    def evaluate(self, trial) -> Outcome:
        space = _space(self.scheme, self.space_options)
        descriptor = space.to_descriptor(space.decode(trial.params["genome"]))
        if "budget" in trial.params:  # one budget, trained on its own from its own seed
            budgets = (int(trial.params["budget"]),)
            trainer = self.trainer(trial.params["optimizer"], self.seed * 1009 + budgets[0])
        else:  # every budget read off one training
            budgets, trainer = self.budgets, self.trainer(trial.params["optimizer"])
        result = trainer.descriptor_evaluate(descriptor, max(budgets), self.dataset,
                                             self.percentage, score_at=budgets)
        accuracy, seconds = scores_by_budget(result, budgets)
        metrics = {"accuracy": accuracy, "train_seconds": seconds,
                   "parameters": result.parameters, "failed": bool(result.failed)}
        if result.failed:
            metrics["error"] = result.error
        return Outcome(accuracy[str(max(budgets))], metrics, result.total_time)

    def key(self, trial) -> str:
        return trial.canonical_hash()

    def settings(self) -> dict:
        return {"scheme": self.scheme, "dataset": self.dataset, "percentage": self.percentage,
                "budgets": list(self.budgets), "batch_size": self.batch_size,
                "seed": self.seed, "split": self.split, "data_options": self.data_options,
                "space_options": self.space_options}


def accuracy_lists(records, optimizers: Sequence[str], budgets: Sequence[int],
                   architectures: int) -> Dict[str, np.ndarray]:
    """``{'adam_5': accuracies of architecture 0..n-1 after 5 epochs with Adam, ...}``."""
    lists = {f"{o}_{b}": np.full(architectures, np.nan) for o in optimizers for b in budgets}
    for record in records:
        params = Trial.from_json(record.descriptor).params
        optimizer, index = params.get("optimizer"), params.get("architecture")
        accuracy = (record.metrics or {}).get("accuracy")
        if (optimizer not in optimizers or not isinstance(index, int)
                or not 0 <= index < architectures or not isinstance(accuracy, dict)):
            raise StudyError(f"trial {record.id} of the store ({optimizer!r}, architecture "
                             f"{index!r}) is not one of this study's; the store is damaged or "
                             f"from other settings: run the study in another --out")
        own = [int(params["budget"])] if "budget" in params else budgets
        for b in own:
            value = accuracy.get(str(b))
            if b not in budgets or not isinstance(value, (int, float)):
                raise StudyError(f"trial {record.id} holds no accuracy after {b} epochs; the "
                                 f"store is damaged: run the study in another --out")
            lists[f"{optimizer}_{b}"][index] = float(value)
    missing = [name for name, values in lists.items() if np.isnan(values).any()]
    if missing:
        raise StatisticsInputError(f"the study's store lacks results for {missing[:5]}; "
                                   f"resume the study to finish it")
    return lists


@dataclass
class RankingStudy(Study):
    """Chapters 4/5: architectures x optimizers x epoch budgets; see the module docs.

    Defaults are small (12 architectures, budgets 1, 2 and 5 epochs, 1 % of
    Fashion-MNIST's training set, scored on a 2 % validation split: about 7
    minutes on 2 cores); the thesis's chapter 5 is ``architectures=140,
    budgets=(1, 5, 10, 20, 50), dataset='cifar10', percentage=1.0,
    split='test'`` and chapter 4 ``scheme='chapter4', architectures=20``.
    """

    architectures: int = 12
    optimizers: Sequence[str] = SEVEN_OPTIMIZERS
    budgets: Sequence[int] = (1, 2, 5)
    dataset: str = "fashion-mnist"
    percentage: float = 0.01
    scheme: str = "chapter5"
    batch_size: int = 64
    split: str = "validation"
    validation_fraction: Optional[float] = 0.02
    youngest: Optional[int] = None
    resamples: int = 800
    seed: int = 0
    space_options: Optional[Dict[str, Any]] = None
    independent_budgets: bool = False
    _genomes: Optional[list] = field(default=None, repr=False, compare=False)

    name = "ranking"

    def __post_init__(self) -> None:
        from nord.data_curators.splits import check_percentage
        from nord.neural_nets.optimizers import resolve_optimizer
        self.architectures = int(self.architectures)
        if self.architectures < 3:
            raise SettingsError(f"a ranking needs at least 3 architectures, got "
                                f"{self.architectures}")
        self.optimizers = tuple(self.optimizers)
        for name in self.optimizers:
            resolve_optimizer(name)  # an unknown optimizer fails now, with the choices
        self.budgets = tuple(sorted({int(b) for b in self.budgets}))
        if len(self.budgets) < 2 or self.budgets[0] < 1:
            raise SettingsError(f"budgets must hold at least two epoch counts >= 1 (the "
                                f"largest is the fully-trained group), got {list(self.budgets)}")
        self.percentage = check_percentage(self.percentage)
        if self.scheme not in ("chapter5", "chapter4"):
            raise SettingsError(f"scheme is 'chapter5' (random diverse architectures) or "
                                f"'chapter4' (one evolving lineage), got {self.scheme!r}")
        if self.split not in ("test", "validation"):
            raise SettingsError(f"split is 'test' (the thesis's) or 'validation', got "
                                f"{self.split!r}")
        if self.youngest is not None and not 2 <= int(self.youngest) <= self.architectures:
            raise SettingsError(f"youngest must lie in 2..{self.architectures}, got "
                                f"{self.youngest}")
        self.resamples, self.seed = check_resamples(self.resamples), check_seed(self.seed)

    def settings(self) -> dict:
        return {"architectures": self.architectures, "optimizers": list(self.optimizers),
                "budgets": list(self.budgets), "dataset": self.dataset,
                "percentage": self.percentage, "scheme": self.scheme,
                "batch_size": self.batch_size, "split": self.split,
                "validation_fraction": self.validation_fraction, "youngest": self.youngest,
                "resamples": int(self.resamples), "seed": int(self.seed),
                "space_options": dict(self.space_options or {}),
                "independent_budgets": bool(self.independent_budgets)}

    def genomes(self) -> list:
        """The architectures, seeded: chapter 5's sample or chapter 4's lineage."""
        if self._genomes is None:
            from nord.design.spaces.deepneat import diverse_sample, evolve_lineage
            space = _space(self.scheme, self.space_options)
            rng = np.random.default_rng(int(self.seed))
            self._genomes = (evolve_lineage(space, rng, self.architectures)
                             if self.scheme == "chapter4" else
                             diverse_sample(space, rng, self.architectures))
        return self._genomes

    def trials(self) -> List[dict]:
        space = _space(self.scheme, self.space_options)
        encoded = [space.encode(g) for g in self.genomes()]
        if self.independent_budgets:
            return [{"architecture": i, "optimizer": o, "budget": b, "genome": encoded[i]}
                    for i in range(self.architectures) for o in self.optimizers
                    for b in self.budgets]
        return [{"architecture": i, "optimizer": o, "genome": encoded[i]}
                for i in range(self.architectures) for o in self.optimizers]

    def objective(self) -> RankingObjective:
        options = ({} if self.validation_fraction is None
                   else {"validation_fraction": float(self.validation_fraction)})
        return RankingObjective(self.scheme, self.dataset, self.percentage, self.budgets,
                                self.batch_size, int(self.seed), self.split, options,
                                self.space_options)

    # ------------------------------------------------------------ analysis
    def subset_rule(self) -> str:
        if self.scheme == "chapter4":
            return f"the {self.youngest_k()} youngest architectures of the lineage"
        return "the better half by each row's FTG accuracy"

    def youngest_k(self) -> int:
        return int(self.youngest or min(10, max(2, self.architectures // 2)))

    def tables(self, lists: Dict[str, np.ndarray]) -> Dict[str, Any]:
        """The tau tables of the heatmaps: ``raw`` (Figure 4.4), ``rounded``,
        ``bootstrap_raw`` (Figure 5.6), ``bootstrap`` (rounded accuracies, Figure 5.7;
        its standard errors Figure 5.8) and ``subset`` (raw, Figure 4.5)."""
        from nord.analysis.ranking import (CorrelationTable, correlation_table, kendall_tau,
                                           top_fraction, youngest)
        full = max(self.budgets)
        rows = {f"{o}_{full}": lists[f"{o}_{full}"] for o in self.optimizers}
        columns = {f"{o}_{b}": lists[f"{o}_{b}"] for o in self.optimizers
                   for b in self.budgets if b != full}
        tables = {"raw": correlation_table(rows, columns),
                  "rounded": correlation_table(rows, columns, rounded=True),
                  "bootstrap_raw": correlation_table(rows, columns, bootstrap=True,
                                                     resamples=int(self.resamples),
                                                     seed=int(self.seed)),
                  "bootstrap": correlation_table(rows, columns, rounded=True, bootstrap=True,
                                                 resamples=int(self.resamples),
                                                 seed=int(self.seed))}
        values = np.full((len(rows), len(columns)), np.nan)
        pvalues = np.full_like(values, np.nan)
        for i, (row, x) in enumerate(rows.items()):
            subset = (youngest(np.arange(self.architectures), self.youngest_k())
                      if self.scheme == "chapter4" else top_fraction(x, 0.5))
            for j, y in enumerate(columns.values()):
                result = kendall_tau(x, y, subset=subset)
                values[i, j], pvalues[i, j] = result.statistic, result.pvalue
        tables["subset"] = CorrelationTable(list(rows), list(columns), values, pvalues)
        return tables

    def analyse(self, records, folder: Path) -> StudyOutcome:
        from nord.analysis.figures import draw_heatmap
        lists = accuracy_lists(records, self.optimizers, self.budgets, self.architectures)
        tables = self.tables(lists)
        failed = sum(1 for r in records if (r.metrics or {}).get("failed"))
        files = []
        titles = {"raw": "Kendall tau-b, FTG (rows) against PTGs (columns)",
                  "rounded": "Kendall tau-b, accuracies rounded to the integer percent",
                  "bootstrap_raw": f"bootstrap tau-b ({self.resamples} resamples)",
                  "bootstrap": f"bootstrap tau-b ({self.resamples} resamples), rounded",
                  "subset": f"tau-b on {self.subset_rule()}"}
        for kind, table in tables.items():
            path = folder / f"tau_{kind}.png"
            draw_heatmap(table.values, _labels(table.rows), _labels(table.columns),
                         titles[kind], path)
            files.append(path)
        path = folder / "tau_bootstrap_se.png"
        draw_heatmap(tables["bootstrap"].standard_errors, _labels(tables["bootstrap"].rows),
                     _labels(tables["bootstrap"].columns),
                     "bootstrap standard error of tau-b (rounded)", path, value_range=None,
                     colormap="magma_r")
        files.append(path)
        files.append(self.distributions_figure(lists, folder / "accuracy_distributions.png"))
        text = self.report(lists, tables, records, failed)
        files.insert(0, folder / "ranking_study.md")
        files[0].write_text(text + "\n")
        results = {"settings": self.settings(), "failed_trainings": failed,
                   "tau": {k: t.to_dict() for k, t in tables.items()},
                   "mean_accuracy": self.mean_accuracy(lists),
                   "mean_train_seconds": self.mean_seconds(records)}
        return StudyOutcome(text, files, results)

    def mean_accuracy(self, lists) -> Dict[str, Dict[str, float]]:
        return {o: {str(b): float(100 * lists[f"{o}_{b}"].mean()) for b in self.budgets}
                for o in self.optimizers}

    def mean_seconds(self, records) -> Dict[str, Dict[str, float]]:
        sums: Dict[str, Dict[str, list]] = {o: {str(b): [] for b in self.budgets}
                                            for o in self.optimizers}
        for record in records:
            optimizer = Trial.from_json(record.descriptor).params["optimizer"]
            for b, s in (record.metrics or {}).get("train_seconds", {}).items():
                sums[optimizer][b].append(s)
        return {o: {b: (float(np.mean(v)) if v else float("nan")) for b, v in row.items()}
                for o, row in sums.items()}

    def report(self, lists, tables, records, failed: int) -> str:
        full = max(self.budgets)
        head = "| optimizer | " + " | ".join(f"{b} ep" for b in self.budgets) + " |"
        rule = "|---|" + "---|" * len(self.budgets)
        means, seconds = self.mean_accuracy(lists), self.mean_seconds(records)
        lines = [f"Ranking study: {self.architectures} DeepNEAT architectures "
                 f"({self.scheme}) x {len(self.optimizers)} optimizers, budgets "
                 f"{list(self.budgets)} epochs, {self.dataset} {100 * self.percentage:g} % "
                 f"(scored on {self.split}), {failed} trainings diverged", "",
                 "Mean accuracy (%, table 5.3):", "", head, rule]
        lines += [_table_row(LABELS.get(o, o), (f"{means[o][str(b)]:.2f}" for b in self.budgets))
                  for o in self.optimizers]
        lines += ["", "Mean training seconds per architecture (table 4.2):", "", head, rule]
        lines += [_table_row(LABELS.get(o, o), (f"{seconds[o][str(b)]:.1f}" for b in self.budgets))
                  for o in self.optimizers]
        boot = tables["bootstrap"]
        lines += ["", f"Bootstrap tau-b (rounded, {self.resamples} resamples) of each "
                  f"optimizer's FTG ({full} epochs, rows) against the PTGs (columns):", "",
                  "| FTG \\ PTG | " + " | ".join(_labels(boot.columns)) + " |",
                  "|---|" + "---|" * len(boot.columns)]
        for i, row in enumerate(boot.rows):
            lines.append(f"| {_label(row)} | " + " | ".join(
                "–" if not np.isfinite(v) else f"{v:.2f}±{e:.2f}"
                for v, e in zip(boot.values[i], boot.standard_errors[i])) + " |")
        if np.isfinite(boot.values).any():
            best = np.nanargmax(np.where(np.isfinite(boot.values), boot.values, -np.inf))
            i, j = np.unravel_index(best, boot.values.shape)
            lines += ["", f"Highest: {_label(boot.rows[i])} against {_label(boot.columns[j])}"
                      f", tau {boot.values[i, j]:.3f} ± {boot.standard_errors[i, j]:.3f}"]
        else:
            lines += ["", "No tau is defined: every ranking is one tie (constant accuracies)"]
        if self.independent_budgets:
            lines += ["", "Each budget was trained on its own, from its own seed (initial "
                      "weights and data order), as the thesis did."]
        else:
            lines += ["", "Each budget is read off its optimizer's one training run, so a PTG "
                      "and its FTG share initial weights and data order (the thesis trained "
                      "each budget anew, --independent-budgets): same-optimizer taus are "
                      "higher than independent trainings would give."]
        return "\n".join(lines)

    def distributions_figure(self, lists, path: Path) -> Path:
        """Figure 5.5: accuracies after each budget, all optimizers pooled."""
        from nord.studies.figures import draw_accuracy_histograms
        pooled = {f"{b} epochs": 100 * np.concatenate([lists[f"{o}_{b}"] for o in self.optimizers])
                  for b in self.budgets}
        draw_accuracy_histograms(pooled, f"{self.split} accuracy (%)",
                                 f"{self.architectures} architectures x "
                                 f"{len(self.optimizers)} optimizers, {self.dataset}", path)
        return path


def _table_row(label: str, cells) -> str:
    return f"| {label} | " + " | ".join(cells) + " |"


def _label(name: str) -> str:
    optimizer, _, budget = name.rpartition("_")
    return f"{LABELS.get(optimizer, optimizer)}_{int(budget):02d}"


def _labels(names) -> List[str]:
    return [_label(n) for n in names]
