"""Predictors study (thesis §7.4, tables 7.3 and 7.4, Figures 7.3–7.8).

How well do the chapter-7 rankers order NAS-Bench-101 cells they never saw?
Each trial trains one model with one seed on the training split of an
architecture dataset and scores Kendall's tau and the top-50 % tau of its
ranking of the test split (§7.4.3: 450 train / 1050 test cells, equality
margin ε = 0.003). The models (``models``):

* ``egraph``: the thesis's selected network
  (:func:`~nord.design.predictors.egraph.egraph_architecture`: two
  ``SAGE_LSTM.H`` layers, max pooling, the ternary head), AdamW lr 1e-3, weight
  decay 1e-2, batch 32, ``epochs`` epochs (Table 7.2: 2; the "EGraph 5
  Epochs" row: 5);
* ``egraph-regression``: the same network with one output, the margin ranking
  loss, ``regression_epochs`` (20) epochs;
* ``renas-32``, ``renas-1024``: ReNAS (:func:`~nord.design.predictors.renas.train_renas`:
  Adam lr 1e-3, weight decay 5e-4, ``renas_epochs`` epochs, thesis 200) with
  batches of 32 and 1024;
* ``search-best``: the best genome of a ``nord search --space gcn`` run
  (``search``: its folder; the genome with the highest mean tau over its
  evaluations), trained as ``egraph``.

The analysis writes table 7.4 (``table_7_4.csv`` / ``.md``: each model's tau
and top-50 % tau, mean ± standard deviation over the seeds, and its seconds).
Given ``search``, it also writes table 7.3 (``table_7_3.csv`` / ``.md``: the
search's best genomes and their tau) and draws from the search's evaluations
Figure 7.3/7.4 (tau per evaluation and the best so far,
``search_progress.png``), 7.5/7.6 (tau by global pooling and by layer type,
``tau_by_pooling.png``, ``tau_by_layer.png``) and 7.7/7.8 (tau against the
parameter count, coloured by the top-50 % tau, ``tau_vs_parameters.png``).

The defaults are a CPU's (100 train / 200 test cells, one seed, F = 32, one
EGraph epoch, 20 ReNAS epochs: about a minute on 2 cores); ``--preset
table-7.4`` gives the thesis's (450/1050, F = 300, 2 EGraph epochs, 200 ReNAS
epochs, 5 seeds).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from nord.errors import SettingsError, StudyError
from nord.execution.objectives import Objective, Outcome
from nord.studies.base import Study, StudyOutcome, Trial, check_seed

__all__ = ["PredictorsStudy", "PredictorsObjective", "MODELS", "THESIS_TABLE_7_4",
           "THESIS_SETTINGS", "load_gcn_search", "best_genomes"]

#: model name -> (label, batch size setting, what it is)
MODELS = {"egraph": "EGraph", "egraph-regression": "EGraph-Regression",
          "renas-32": "ReNAS", "renas-1024": "ReNAS", "search-best": "search best"}
DEFAULT_MODELS = ("egraph", "renas-32", "renas-1024")
#: table 7.4 (450/1050, ε 0.003): model -> (tau, top-50 % tau)
THESIS_TABLE_7_4 = {"renas-32": (0.828, 0.57), "renas-1024": (0.856, 0.64),
                    "egraph-regression": (0.872, 0.71), "egraph": (0.907, 0.853)}
#: ``--preset table-7.4``
THESIS_SETTINGS = {"train": 450, "test": 1050, "epsilon": 0.003, "epochs": 2, "filters": 300,
                   "renas_epochs": 200, "regression_epochs": 20, "seeds": [0, 1, 2, 3, 4]}


def load_gcn_search(folder) -> list:
    """The finished evaluations (ok or cached) of the ``nord search --space gcn`` run in
    ``folder``, in the order they were asked."""
    from nord.execution.store import RunStore
    path = Path(folder) / "run.sqlite"
    if not path.exists():
        raise StudyError(f"{folder} holds no run (no run.sqlite); give the --out folder of "
                         f"a nord search --space gcn run")
    with RunStore(path, create=False) as store:
        meta = store.meta()
        records = store.finished()
    settings = meta.get("settings")
    if not isinstance(settings, dict) or settings.get("space") != "gcn":
        what = (f"a search of the {settings.get('space')!r} space"
                if isinstance(settings, dict) else "no gcn search")
        raise StudyError(f"{folder} holds {what}; give the --out folder of a nord search "
                         f"--space gcn run")
    kept = [r for r in records if r.status in ("ok", "cached") and r.fitness is not None
            and isinstance(r.architecture, dict) and "tau" in r.metrics]
    if not kept:
        raise StudyError(f"the gcn search in {folder} holds no successful evaluation; run it "
                         f"(longer) first")
    return sorted(kept, key=lambda r: r.id)


def best_genomes(records, top: int = 10) -> List[dict]:
    """The ``top`` distinct genomes of a gcn search by their mean tau (evaluations of
    one genome, cached repeats included, pooled; ties: more evaluations first)."""
    from nord.design.predictors.egraph import GCNArchitecture
    groups: Dict[str, dict] = {}
    for r in records:
        key = r.hash or json.dumps(r.architecture, sort_keys=True)
        entry = groups.setdefault(key, {"architecture": r.architecture, "taus": [],
                                        "top50": [], "first": r.id,
                                        "parameters": r.metrics.get("parameters")})
        entry["taus"].append(float(r.metrics["tau"]))
        entry["top50"].append(float(r.metrics.get("top50_tau", float("nan"))))
    rows = []
    for entry in groups.values():
        architecture = GCNArchitecture.from_json(entry["architecture"])
        rows.append({"genome": architecture.describe(), "pooling": architecture.pooling,
                     "architecture": entry["architecture"], "evaluations": len(entry["taus"]),
                     "tau": float(np.mean(entry["taus"])), "best_tau": max(entry["taus"]),
                     "top50_tau": float(np.mean(entry["top50"])),
                     "parameters": entry["parameters"], "first": entry["first"]})
    rows.sort(key=lambda row: (-row["tau"], -row["evaluations"], row["first"]))
    return rows[:int(top)]


class PredictorsObjective(Objective):
    """One trial: train one model with one seed, score its ranking of the test split."""

    name = "predictors"

    def __init__(self, dataset: str, train: int, test: int, epsilon: float, data_seed: int,
                 table: Optional[str], epochs: int, batch_size: int, filters: int,
                 regression_epochs: int, renas_epochs: int, device: Optional[str] = None
                 ) -> None:
        self.dataset, self.train, self.test = dataset, int(train), int(test)
        self.epsilon, self.data_seed, self.table = float(epsilon), int(data_seed), table
        self.epochs, self.batch_size, self.filters = int(epochs), int(batch_size), int(filters)
        self.regression_epochs, self.renas_epochs = int(regression_epochs), int(renas_epochs)
        self.device = device

    def _make_evaluator(self):
        from nord.execution.predictor_objective import RankingSplit, load_architecture_dataset
        data = load_architecture_dataset(self.dataset, self.train + self.test, self.data_seed,
                                         self.table)
        train, test = data.split(self.train, self.test, seed=self.data_seed)
        return RankingSplit(train, test)

    def prepare(self) -> None:
        from nord.design.predictors.egraph import require_torch_geometric
        require_torch_geometric()
        self.evaluator  # noqa: B018 (builds the split once)

    def evaluate(self, trial) -> Outcome:
        model, seed = trial.params["model"], int(trial.params["seed"])
        started = time.perf_counter()
        if model.startswith("renas-"):
            quality, parameters, epochs, batch = self._renas(int(model[6:]), seed)
        else:
            quality, parameters, epochs, batch = self._egraph(trial.params, seed)
        seconds = time.perf_counter() - started
        return Outcome(quality.tau, {"model": model, "tau": quality.tau,
                                     "top50_tau": quality.top50_tau, "parameters": parameters,
                                     "epochs": epochs, "batch_size": batch,
                                     "seconds": seconds}, seconds)

    def _renas(self, batch: int, seed: int):
        from nord.design.predictors.renas import renas_quality, train_renas
        split = self.evaluator
        model = train_renas(split.train, epochs=self.renas_epochs, batch_size=batch, seed=seed)
        parameters = sum(p.numel() for p in model.parameters())
        return renas_quality(model, split.validation), parameters, self.renas_epochs, batch

    def _egraph(self, params, seed: int):
        import torch

        from nord.design.predictors.egraph import GCNArchitecture, SiameseGCN, \
            egraph_architecture
        from nord.design.predictors.training import evaluate_ranker, train_ranker
        split = self.evaluator
        if params["model"] == "search-best":
            architecture = GCNArchitecture.from_json(params["architecture"])
        else:
            head = "regression" if params["model"] == "egraph-regression" else "ternary"
            architecture = egraph_architecture(self.filters, head)
        epochs = self.regression_epochs if architecture.head == "regression" else self.epochs
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        network = SiameseGCN(architecture, len(split.vocabulary), seed=seed).to(device)
        train_ranker(network, split.train, epochs=epochs, batch_size=self.batch_size,
                     epsilon=self.epsilon, seed=seed)
        return (evaluate_ranker(network, split.validation), network.num_parameters(), epochs,
                self.batch_size)

    def key(self, trial) -> str:
        return trial.canonical_hash()


def _mean_std(values: Sequence[float]) -> tuple:
    values = np.asarray(values, dtype=float)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return float(np.mean(values)), std


@dataclass
class PredictorsStudy(Study):
    """EGraph against ReNAS on NAS-Bench-101 (table 7.4); see the module docstring."""

    models: Optional[Sequence[str]] = None
    seeds: Sequence[int] = (0,)
    train: int = 100
    test: int = 200
    epsilon: float = 0.003
    epochs: int = 1
    batch_size: int = 32
    filters: int = 32
    regression_epochs: int = 20
    renas_epochs: int = 20
    dataset: str = "nasbench101"
    data_seed: int = 0
    table: Optional[str] = None
    search: Optional[str] = None
    top: int = 10
    _search_records: Optional[list] = field(default=None, repr=False, compare=False)

    name = "predictors"

    def __post_init__(self) -> None:
        if self.models is None:
            self.models = list(DEFAULT_MODELS) + (["search-best"] if self.search else [])
        self.models = [str(m) for m in self.models]
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models or len(set(self.models)) != len(self.models):
            raise SettingsError(f"models are distinct names among {', '.join(MODELS)}; got "
                                f"{self.models}")
        if "search-best" in self.models and not self.search:
            raise SettingsError("the search-best model is the best genome of a gcn search: "
                                "give its run folder with --search")
        self.seeds = [check_seed(s) for s in self.seeds]
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise SettingsError(f"seeds must be distinct and at least one, got {self.seeds}")
        for name in ("train", "test"):
            if int(getattr(self, name)) < 4:
                raise SettingsError(f"{name} must hold at least 4 architectures (the top-50 % "
                                    f"tau needs 2), got {getattr(self, name)}")
            setattr(self, name, int(getattr(self, name)))
        if not (isinstance(self.epsilon, (int, float)) and math.isfinite(self.epsilon)
                and self.epsilon >= 0):
            raise SettingsError(f"epsilon must be a number >= 0, got {self.epsilon!r}")
        self.epsilon = float(self.epsilon)
        for name in ("epochs", "batch_size", "regression_epochs", "renas_epochs", "top"):
            if int(getattr(self, name)) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
            setattr(self, name, int(getattr(self, name)))
        if int(self.filters) < 2 or int(self.filters) % 2:
            raise SettingsError(f"filters (F) must be an even whole number >= 2, got "
                                f"{self.filters}")
        self.filters = int(self.filters)
        self.data_seed = check_seed(self.data_seed)
        self.search = None if self.search is None else str(self.search)
        self.table = None if self.table is None else str(self.table)

    def settings(self) -> dict:
        return {"models": list(self.models), "seeds": list(self.seeds), "train": self.train,
                "test": self.test, "epsilon": self.epsilon, "epochs": self.epochs,
                "batch_size": self.batch_size, "filters": self.filters,
                "regression_epochs": self.regression_epochs,
                "renas_epochs": self.renas_epochs, "dataset": self.dataset,
                "data_seed": self.data_seed, "table": self.table, "search": self.search,
                "top": self.top}

    # ---------------------------------------------------------------- trials
    def search_records(self) -> list:
        """The gcn search's evaluations (read once per study object)."""
        if self._search_records is None:
            self._search_records = load_gcn_search(self.search)
        return self._search_records

    def trials(self) -> List[dict]:
        trials = []
        for model in self.models:
            extra = ({"architecture": best_genomes(self.search_records(), 1)[0]["architecture"]}
                     if model == "search-best" else {})
            trials += [{"model": model, "seed": seed, **extra} for seed in self.seeds]
        return trials

    def _search_best(self):
        from nord.design.predictors.egraph import GCNArchitecture
        return GCNArchitecture.from_json(best_genomes(self.search_records(), 1)[0]
                                         ["architecture"])

    def objective(self) -> PredictorsObjective:
        return PredictorsObjective(self.dataset, self.train, self.test, self.epsilon,
                                   self.data_seed, self.table, self.epochs, self.batch_size,
                                   self.filters, self.regression_epochs, self.renas_epochs)

    # ---------------------------------------------------------------- analysis
    def table_rows(self, records) -> List[dict]:
        """Table 7.4's rows, one per model, in the order of ``models``."""
        by_model: Dict[str, list] = {}
        for record in records:
            params = Trial.from_json(record.descriptor).params
            by_model.setdefault(params["model"], []).append(record.metrics)
        rows = []
        for model in self.models:
            metrics = by_model[model]
            tau, tau_std = _mean_std([m["tau"] for m in metrics])
            top, top_std = _mean_std([m["top50_tau"] for m in metrics])
            thesis = THESIS_TABLE_7_4.get(model, (None, None))
            rows.append({"model": model, "name": MODELS[model],
                         "batch_size": metrics[0]["batch_size"], "train": self.train,
                         "test": self.test, "epsilon": self.epsilon,
                         "epochs": metrics[0]["epochs"], "seeds": len(metrics),
                         "tau_mean": tau, "tau_std": tau_std, "top50_tau_mean": top,
                         "top50_tau_std": top_std,
                         "seconds_mean": float(np.mean([m["seconds"] for m in metrics])),
                         "parameters": metrics[0]["parameters"],
                         "thesis_tau": thesis[0], "thesis_top50_tau": thesis[1]})
        return rows

    def analyse(self, records, folder: Path) -> StudyOutcome:
        rows = self.table_rows(records)
        source = "NAS-Bench-101" if self.dataset == "nasbench101" else self.dataset
        lines = [f"Table 7.4: rankers on {source}, {self.train} train / {self.test} test "
                 f"architectures, ε = {self.epsilon:g}, tau mean ± std over "
                 f"{len(self.seeds)} seed{'s' if len(self.seeds) > 1 else ''}", "",
                 "| model | batch | train/test | ε | epochs | τ | top-50 % τ | seconds | "
                 "parameters | thesis τ / top-50 % |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            thesis = ("–" if r["thesis_tau"] is None
                      else f"{r['thesis_tau']:.3f} / {r['thesis_top50_tau']:.3f}")
            lines.append(f"| {r['name']} | {r['batch_size']} | {r['train']}/{r['test']} | "
                         f"{r['epsilon']:g} | {r['epochs']} | {r['tau_mean']:.3f} ± "
                         f"{r['tau_std']:.3f} | {r['top50_tau_mean']:.3f} ± "
                         f"{r['top50_tau_std']:.3f} | {r['seconds_mean']:.1f} | "
                         f"{_count(r['parameters'])} | {thesis} |")
        if "search-best" in self.models:
            lines += ["", f"search best: {self._search_best().describe()}, the genome with the "
                      f"highest mean tau in {self.search}"]
        files = _write_table(folder / "table_7_4", rows, lines)
        results: Dict[str, Any] = {"settings": self.settings(), "table_7_4": rows}
        if self.search:
            best = best_genomes(self.search_records(), self.top)
            text = self._table_7_3(best)
            files += _write_table(folder / "table_7_3", best, text)
            files += self.search_figures(folder)
            lines += [""] + text
            results["table_7_3"] = best
        text = "\n".join(lines)
        return StudyOutcome(text, files, results)

    def _table_7_3(self, best: List[dict]) -> List[str]:
        lines = [f"Table 7.3: the best genomes of the gcn search in {self.search} "
                 f"({len(self.search_records())} evaluations), by mean tau", "",
                 "| # | genome | evaluations | τ (mean) | τ (best) | top-50 % τ | parameters |",
                 "|---|---|---|---|---|---|---|"]
        for i, row in enumerate(best, 1):
            lines.append(f"| {i} | {_cell(row['genome'])} | {row['evaluations']} | "
                         f"{row['tau']:.3f} | "
                         f"{row['best_tau']:.3f} | {row['top50_tau']:.3f} | "
                         f"{_count(row['parameters'])} |")
        return lines

    def search_figures(self, folder: Path) -> List[Path]:
        """Figures 7.3–7.8 of the gcn search: progress, boxplots, tau vs parameters."""
        from nord.design.predictors.egraph import LAYER_CHOICES, POOLINGS, GCNArchitecture
        from nord.studies.figures import (draw_grouped_boxplots, draw_search_progress,
                                          draw_tau_vs_parameters)
        records = self.search_records()
        evaluated = [r for r in records if r.status == "ok"]  # each network once
        where = f"gcn search ({Path(self.search).name})"
        paths = [folder / name for name in ("search_progress.png", "tau_by_pooling.png",
                                            "tau_by_layer.png", "tau_vs_parameters.png")]
        draw_search_progress([r.fitness for r in records], "Kendall tau (validation)",
                             f"Figure 7.3/7.4: {where}", paths[0])
        by_pooling = {p: [r.fitness for r in evaluated if r.architecture["pooling"] == p]
                      for p in POOLINGS}
        draw_grouped_boxplots({k: v for k, v in by_pooling.items() if v}, "Kendall tau",
                              f"Figure 7.5/7.6: tau by global pooling, {where}", paths[1])
        by_layer: Dict[str, list] = {c: [] for c in LAYER_CHOICES}
        for r in evaluated:
            architecture = GCNArchitecture.from_json(r.architecture)
            active = set(architecture.genome.active_nodes())
            for choice in {g.layer.choice for g in architecture.genome.layers
                           if g.node in active}:
                by_layer[choice].append(r.fitness)
        draw_grouped_boxplots({k: v for k, v in by_layer.items() if v}, "Kendall tau",
                              f"tau by layer type used (a network counts for each), {where}",
                              paths[2])
        draw_tau_vs_parameters([r.metrics["parameters"] for r in evaluated],
                               [r.fitness for r in evaluated],
                               [r.metrics["top50_tau"] for r in evaluated],
                               f"Figure 7.7/7.8: {where}", paths[3])
        return paths


def _cell(text: str) -> str:
    """``text`` as one Markdown table cell (a genome's description holds ``|``)."""
    return text.replace("|", "\\|")


def _count(value) -> str:
    return "–" if value is None else f"{int(value):,}"


def _write_table(stem: Path, rows: List[dict], lines: List[str]) -> List[Path]:
    """``<stem>.csv`` (the rows, nested values as JSON) and ``<stem>.md`` (``lines``)."""
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    columns = list(rows[0]) if rows else []
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list))
                             else v for k, v in row.items()})
    md_path.write_text("\n".join(lines) + "\n")
    return [csv_path, md_path]
