"""The Fashion-MNIST architectures dataset (thesis §7.3.4; table 3.1's ``graph-f-mnist*``).

A predictor of chapter 7 learns from architectures that were trained. This
study makes such a dataset on Fashion-MNIST as the thesis did: random
architectures of a *global* space (no fixed macro-architecture: the cell is
the whole network) built from NAS-Bench-101's three operations, each trained
and scored once.

* **Architectures.** NAS-Bench-101's cells (:class:`FashionMNISTCellSpace`, the
  :class:`~nord.design.spaces.nasbench101.NASBench101Space` with its sampling,
  pruning and graph form) of at most ``max_nodes`` nodes, input and output
  included (8, so that ReNAS's fixed-size input can hold them): listing 3.6's
  initial individual, a random chain of 1 to ``max_nodes - 2`` operations with
  extra forward connections. ``architectures`` distinct ones (up to
  isomorphism) are drawn from ``seed``.
* **Networks** (:func:`cell_descriptor`). ``conv3x3-bn-relu`` nodes get
  ``channels`` filters and ``conv1x1-bn-relu`` half of them (the thesis's 32
  and 16); ``maxpool3x3`` nodes are the thesis's 2×2 max pooling (stride 2,
  ``pool='2x2'``) or NAS-Bench-101's 3×3 stride-1 pooling (``pool='3x3'``).
  Several inputs are summed after the minimum viable size policy; the dense
  head is §6.3.3's (FC1 a quarter of the output's features, FC2 half of FC1,
  ReLU after each, then 10 classes).
* **Training.** Each architecture is one trial trained by the
  :class:`~nord.execution.objectives.TrainingObjective` (a
  :class:`~nord.neural_nets.LocalEvaluator`, AdamW as in the thesis) for
  ``epochs`` epochs on ``percentage`` of the training set, scored on ``split``.
  A training that diverges is kept with accuracy 0 and marked failed; it is
  left out of the graph dataset.

The analysis writes ``architectures.md`` (one row per architecture: nodes,
edges, operations, parameters, accuracy) and ``results.json``. The run folder
loads as a graph dataset with
:meth:`~nord.design.predictors.datasets.ArchitectureDataset.from_run_store` and
through the ``graph-f-mnist3`` / ``graph-f-mnist1`` configurations.

The defaults are small (12 architectures at 8 channels, 1 epoch on 2 % of the
training set, scored on a 2 % validation split: about a minute on 2 cores);
:data:`THESIS_SETTINGS` are the thesis's (980 architectures, 32 channels,
108 epochs on the whole training set, test accuracy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from nord.design.spaces.nasbench101 import NASBench101Space
from nord.errors import SettingsError, StudyError
from nord.execution.objectives import Objective, Outcome, TrainingObjective
from nord.studies.base import Study, StudyOutcome, Trial, check_seed

__all__ = ["FashionMNISTArchitecturesStudy", "FashionMNISTCellSpace", "CellTrainingObjective",
           "cell_descriptor", "POOLS", "THESIS_SETTINGS"]

#: what a ``maxpool3x3`` node compiles to: §7.3.4's 2x2 pooling, or NAS-Bench-101's
POOLS = ("2x2", "3x3")
#: §7.3.4's settings (the search-time validation split is not used: test accuracy)
THESIS_SETTINGS = {"architectures": 980, "epochs": 108, "channels": 32, "percentage": 1.0,
                   "split": "test", "validation_fraction": 0.0}
DATASET = "fashion-mnist"


class FashionMNISTCellSpace(NASBench101Space):
    """NAS-Bench-101 cells of up to ``max_nodes`` nodes (input and output included),
    used as whole networks. Sampling, pruning, descriptors and graphs are the
    NAS-Bench-101 space's; only the node limit differs (such cells are trained,
    never looked up in the benchmark, which holds 7 vertices at most).

    >>> space = FashionMNISTCellSpace()
    >>> matrix, ops = space.to_matrix(space.sample(np.random.default_rng(0)))
    >>> len(ops) <= 8, ops[0], ops[-1]
    (True, 'input', 'output')
    """

    name = "fmnist-cells"

    def __init__(self, max_nodes: int = 8, second_connection_prob: float = 1 / 7) -> None:
        if int(max_nodes) < 3:
            raise SettingsError(f"max_nodes counts the input and the output, so it must be "
                                f"at least 3, got {max_nodes}")
        super().__init__(max_layers=1, second_connection_prob=second_connection_prob)
        self.max_nodes = int(max_nodes)
        self.max_layers = self.max_nodes - 2  # the sampler's chain of 1..max_layers ops

    def settings(self) -> dict:
        return {"max_nodes": self.max_nodes,
                "second_connection_prob": self.second_connection_prob}

    def cells(self, count: int, seed: int) -> List[Dict[str, list]]:
        """``count`` distinct pruned cells ``{'matrix', 'ops'}`` (up to isomorphism),
        drawn from ``seed``."""
        rng = np.random.default_rng(int(seed))
        chosen, seen = [], set()
        for _ in range(100 * int(count)):
            matrix, ops = self.to_matrix(self.sample(rng))
            key = self.graph_of(matrix, ops).key()
            if key not in seen:
                seen.add(key)
                chosen.append({"matrix": matrix, "ops": list(ops)})
                if len(chosen) == int(count):
                    return chosen
        raise SettingsError(f"cells of at most {self.max_nodes} nodes gave only {len(chosen)} "
                            f"distinct architectures in {100 * int(count)} draws; ask for "
                            f"fewer architectures or allow more nodes")

    def graph_of(self, matrix, ops):
        """The :class:`~nord.design.predictors.graphs.ArchitectureGraph` of a cell."""
        return self.to_graph(self.from_matrix(matrix, ops))


def cell_descriptor(matrix, ops: Sequence[str], channels: int = 32, pool: str = "2x2"):
    """The trainable :class:`~nord.neural_nets.NeuralDescriptor` of a cell used as a
    whole network: ``conv3x3-bn-relu`` with ``channels`` filters, ``conv1x1-bn-relu``
    with half of them, ``maxpool3x3`` as 2x2 max pooling (``pool='2x2'``) or
    NAS-Bench-101's stride-1 3x3 pooling (``'3x3'``), then §6.3.3's dense head.

    >>> d = cell_descriptor([[0, 1], [0, 0]], ["input", "output"])
    >>> list(d.layers)
    ['0', '1', 'flatten', 'dense_head']
    """
    import torch.nn as nn

    from nord.neural_nets.neural_descriptor import NeuralDescriptor
    from nord.neural_nets.remnet_layers import RemNetDenseHead

    if pool not in POOLS:
        raise SettingsError(f"pool is '2x2' (the thesis's 2x2 max pooling, stride 2) or "
                            f"'3x3' (NAS-Bench-101's, stride 1), got {pool!r}")
    if int(channels) < 2:
        raise SettingsError(f"channels must be at least 2 (1x1 convolutions get half), got "
                            f"{channels}")
    specs = {"conv3x3-bn-relu": ("conv3x3-bn-relu", {"out_channels": int(channels)}),
             "conv1x1-bn-relu": ("conv1x1-bn-relu", {"out_channels": int(channels) // 2}),
             "maxpool3x3": ((nn.MaxPool2d, {"kernel_size": 2}) if pool == "2x2"
                            else ("maxpool3x3", {}))}
    d = NeuralDescriptor()
    names = []
    for i, op in enumerate(ops):
        layer, params = specs.get(op, (op, {}))
        names.append(d.add_layer(layer, params, str(i)))
    output = names[-1]
    for i, row in enumerate(matrix):
        for j, edge in enumerate(row):
            if edge:
                d.connect_layers(names[i], names[j])
    d.last_layer = output
    d.add_layer_sequential(nn.Flatten, {}, "flatten")
    d.add_layer_sequential(RemNetDenseHead, {}, "dense_head")
    return d


class CellTrainingObjective(Objective):
    """Trains one cell on Fashion-MNIST with a :class:`TrainingObjective`."""

    name = "fmnist-cell-training"

    def __init__(self, channels: int, pool: str, training: TrainingObjective) -> None:
        self.channels, self.pool, self.training = int(channels), pool, training

    def prepare(self) -> None:
        self.training.prepare()  # missing data fails now, before the run store exists

    def evaluate(self, trial) -> Outcome:
        params = trial.params
        outcome = self.training.evaluate(cell_descriptor(params["matrix"], params["ops"],
                                                         self.channels, self.pool))
        metrics = {"accuracy": float(outcome.fitness), "loss": outcome.metrics.get("loss"),
                   "parameters": outcome.metrics.get("parameters"),
                   "failed": bool(outcome.failed)}
        if outcome.failed:
            metrics["error"] = outcome.error
        return Outcome(float(outcome.fitness), metrics, outcome.cost)

    def key(self, trial) -> str:
        return trial.canonical_hash()

    def settings(self) -> dict:
        return {"channels": self.channels, "pool": self.pool,
                "training": self.training.settings()}


@dataclass
class FashionMNISTArchitecturesStudy(Study):
    """§7.3.4's Fashion-MNIST architectures dataset; see the module docs."""

    architectures: int = 12
    epochs: int = 1
    percentage: float = 0.02
    channels: int = 8
    pool: str = "2x2"
    max_nodes: int = 8
    optimizer: str = "adamw"
    batch_size: int = 64
    split: str = "validation"
    validation_fraction: Optional[float] = 0.02
    seed: int = 0
    _cells: Optional[list] = field(default=None, repr=False, compare=False)

    name = "fmnist-architectures"

    def __post_init__(self) -> None:
        from nord.data_curators.splits import check_percentage
        from nord.neural_nets.optimizers import resolve_optimizer
        self.architectures, self.epochs = int(self.architectures), int(self.epochs)
        if self.architectures < 2:
            raise SettingsError(f"an architecture dataset needs at least 2 architectures, "
                                f"got {self.architectures}")
        if self.epochs < 1:
            raise SettingsError(f"epochs must be at least 1, got {self.epochs}")
        self.percentage = check_percentage(self.percentage)
        if self.pool not in POOLS:
            raise SettingsError(f"pool is '2x2' (the thesis's) or '3x3' (NAS-Bench-101's), "
                                f"got {self.pool!r}")
        if int(self.channels) < 2:
            raise SettingsError(f"channels must be at least 2, got {self.channels}")
        if self.split not in ("validation", "test"):
            raise SettingsError(f"split is 'validation' or 'test' (the thesis's), got "
                                f"{self.split!r}")
        if self.split == "validation" and self.validation_fraction == 0:
            raise SettingsError("split='validation' needs a validation_fraction above 0")
        resolve_optimizer(self.optimizer)
        self.space()  # a bad max_nodes fails now
        self.seed = check_seed(self.seed)

    def settings(self) -> dict:
        return {"architectures": self.architectures, "epochs": self.epochs,
                "percentage": self.percentage, "channels": int(self.channels),
                "pool": self.pool, "max_nodes": int(self.max_nodes),
                "optimizer": self.optimizer, "batch_size": int(self.batch_size),
                "split": self.split, "validation_fraction": self.validation_fraction,
                "seed": int(self.seed)}

    def space(self) -> FashionMNISTCellSpace:
        return FashionMNISTCellSpace(self.max_nodes)

    def cells(self) -> List[Dict[str, list]]:
        """The architectures, seeded (drawn once per study object)."""
        if self._cells is None:
            self._cells = self.space().cells(self.architectures, self.seed)
        return self._cells

    def trials(self) -> List[dict]:
        return [{"index": i, **cell} for i, cell in enumerate(self.cells())]

    def objective(self) -> CellTrainingObjective:
        data_options = ({} if self.validation_fraction is None
                        else {"validation_fraction": float(self.validation_fraction)})
        training = TrainingObjective(DATASET, self.epochs, self.percentage, "accuracy",
                                     self.optimizer, batch_size=int(self.batch_size),
                                     seed=int(self.seed), split=self.split,
                                     data_options=data_options)
        return CellTrainingObjective(int(self.channels), self.pool, training)

    # ------------------------------------------------------------ analysis
    def rows(self, records) -> List[dict]:
        """One row per architecture, in trial order."""
        rows = []
        for record in records:
            params = Trial.from_json(record.descriptor).params
            metrics = record.metrics or {}
            matrix, ops = params["matrix"], params["ops"]
            rows.append({"index": int(params["index"]), "nodes": len(ops),
                         "edges": int(sum(map(sum, matrix))), "ops": list(ops[1:-1]),
                         "parameters": metrics["parameters"],
                         "accuracy": float(metrics["accuracy"]),
                         "failed": bool(metrics.get("failed")),
                         "seconds": record.cost})
        return sorted(rows, key=lambda r: r["index"])

    def architecture_dataset(self, records, name: str = ""):
        """The trained architectures as an
        :class:`~nord.design.predictors.datasets.ArchitectureDataset` (accuracy as
        the target; failed trainings left out)."""
        from nord.design.predictors.datasets import ArchitectureDataset
        space = self.space()
        graphs, targets = [], []
        for record in records:
            if record.status not in ("ok", "cached") or (record.metrics or {}).get("failed"):
                continue
            params = Trial.from_json(record.descriptor).params
            try:
                graphs.append(space.graph_of(params["matrix"], params["ops"]))
            except (KeyError, TypeError, ValueError) as error:
                raise StudyError(f"trial {record.id} is not a cell of the {self.name} "
                                 f"study ({error}); the store is damaged: run the study "
                                 f"again in another --out") from error
            targets.append(float(record.fitness))
        return ArchitectureDataset.build(graphs, targets, space.graph_vocabulary,
                                         name or f"{self.name} ({len(graphs)} architectures)")

    def analyse(self, records, folder: Path) -> StudyOutcome:
        rows = self.rows(records)
        ok = [r for r in rows if not r["failed"]]
        accuracies = [r["accuracy"] for r in ok]
        summary = {"architectures": len(rows), "failed": len(rows) - len(ok),
                   "max_nodes": max(r["nodes"] for r in rows),
                   "mean_accuracy": float(np.mean(accuracies)) if ok else None,
                   "best_accuracy": float(np.max(accuracies)) if ok else None,
                   "mean_parameters": float(np.mean([r["parameters"] for r in rows]))}
        lines = [f"Fashion-MNIST architectures (§7.3.4): {len(rows)} cells of at most "
                 f"{self.max_nodes} nodes, {self.channels} channels, {self.pool} pooling, "
                 f"{self.epochs} epoch{'s' if self.epochs != 1 else ''} of {self.optimizer} on "
                 f"{100 * self.percentage:g} % of the training set, {self.split} accuracy; "
                 f"{summary['failed']} trainings diverged", "",
                 "| # | nodes | edges | operations | parameters | accuracy % |",
                 "|---|---|---|---|---|---|"]
        short = {"conv3x3-bn-relu": "c3", "conv1x1-bn-relu": "c1", "maxpool3x3": "mp"}
        for r in rows:
            accuracy = "failed" if r["failed"] else f"{100 * r['accuracy']:.2f}"
            lines.append(f"| {r['index']} | {r['nodes']} | {r['edges']} | "
                         f"{' '.join(short.get(o, o) for o in r['ops'])} | "
                         f"{r['parameters']:,} | {accuracy} |")
        if ok:
            lines += ["", f"Mean accuracy {100 * summary['mean_accuracy']:.2f} %, best "
                      f"{100 * summary['best_accuracy']:.2f} %."]
        lines += ["", f"Load it: ArchitectureDataset.from_run_store({str(folder)!r}), or "
                  f"Configs()['graph-f-mnist3'].data_load(root={str(folder)!r})"]
        text = "\n".join(lines)
        path = folder / "architectures.md"
        path.write_text(text + "\n")
        results: Dict[str, Any] = {"settings": self.settings(), "summary": summary,
                                   "architectures": rows}
        return StudyOutcome(text, [path], json.loads(json.dumps(results)))
