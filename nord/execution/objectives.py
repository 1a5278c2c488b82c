"""Objectives: what a search maximises, computed from a descriptor.

An objective wraps an evaluator and turns its answer into an :class:`Outcome`:
one fitness (higher is better), the metrics worth keeping, and the cost in
seconds (measured, or simulated for benchmark tables). Objectives are plain
picklable settings; the evaluator behind them is built on first use, in
whichever process evaluates.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence

from nord.errors import InvalidArgumentError, SettingsError
from nord.registry import Registry

__all__ = ["Outcome", "Objective", "NASBench201Objective", "NASBench101Objective",
           "TrainingObjective", "EnvironmentObjective", "make_objective", "register_objective",
           "OBJECTIVES"]


@dataclass(frozen=True)
class Outcome:
    """One evaluation's answer; ``failed`` marks a training that broke (NaN loss)."""

    fitness: float
    metrics: Dict[str, Any] = field(default_factory=dict)
    cost: Optional[float] = None
    failed: bool = False
    error: Optional[str] = None


class Objective(abc.ABC):
    """Fitness of a descriptor; ``key`` names architectures that score alike."""

    name = ""

    @abc.abstractmethod
    def evaluate(self, descriptor) -> Outcome:
        """Score ``descriptor``; raise the evaluator's typed error if it cannot."""

    def key(self, descriptor) -> str:
        """Canonical identity for caching (isomorphic descriptors share it)."""
        return descriptor.canonical_hash()

    def settings(self) -> dict:
        return {}

    _evaluator = None

    def _make_evaluator(self):
        """The evaluator behind this objective, built on first use (None: it needs none)."""
        return None

    @property
    def evaluator(self):
        if self._evaluator is None:
            self._evaluator = self._make_evaluator()
        return self._evaluator

    def bind_folder(self, folder) -> None:
        """The run folder, for objectives that keep files beside the store (a DARTS
        search's checkpoints); called before :meth:`prepare`. Most keep none."""

    def prepare(self) -> None:
        """Load what evaluation needs now, so missing data fails before a run starts."""
        self.evaluator  # noqa: B018 (loads the table or builds the evaluator)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_evaluator"] = None  # rebuilt where it is used
        return state


class NASBench201Objective(Objective):
    """Fitness from a NAS-Bench-201 table column; ``report`` columns kept too.

    ``fitness`` and ``report`` name columns of ``nb201_tables.csv`` (such as
    ``cifar10_valid_valid_12ep``, the 12-epoch validation accuracy a search
    sees, and ``cifar10_test_200ep``, the number papers report); see
    :data:`~nord.neural_nets.benchmarks.nasbench201.TABLE_COLUMNS`. The cost
    stays empty: that table holds no training times.
    """

    name = "nasbench201"

    def __init__(self, fitness: str = "cifar10_valid_valid_200ep",
                 report: Sequence[str] = ("cifar10_test_200ep",), path=None) -> None:
        from nord.neural_nets.benchmarks.nasbench201 import TABLE_COLUMNS
        self.columns = {column: (metric, dataset, epochs)
                        for (metric, dataset, epochs), column in TABLE_COLUMNS.items()}
        for column in (fitness, *report):
            if column not in self.columns:
                raise SettingsError(f"{column!r} is not a NAS-Bench-201 table column; choose "
                                    f"from {sorted(self.columns)}")
        self.fitness = fitness
        self.report = tuple(c for c in report if c != fitness)
        self.path = None if path is None else str(path)

    def _make_evaluator(self):
        from nord.neural_nets.benchmarks.nasbench201 import NATSBench_Evaluator
        return NATSBench_Evaluator(self.path)

    def evaluate(self, descriptor) -> Outcome:
        cell = self.evaluator.descriptor_to_arch(descriptor)
        values = {}
        for column in (self.fitness, *self.report):
            metric, dataset, epochs = self.columns[column]
            values[column] = float(self.evaluator.evaluate_string(cell, metric, dataset, epochs))
        return Outcome(values[self.fitness], {"cell": cell, **values})

    def key(self, descriptor) -> str:
        return self.evaluator.descriptor_to_arch(descriptor)

    def settings(self) -> dict:
        return {"fitness": self.fitness, "report": list(self.report), "path": self.path}


class NASBench101Objective(Objective):
    """Validation accuracy (a fraction) from the NAS-Bench-101 table at ``epochs``.

    The cost is the table's training time, so a run's simulated clock adds up
    what the search would have spent training.
    """

    name = "nasbench101"

    def __init__(self, epochs: int = 108, acc: str = "validation_accuracy", path=None) -> None:
        self.epochs = int(epochs)
        self.acc = acc
        self.path = None if path is None else str(path)

    def _make_evaluator(self):
        from nord.neural_nets.benchmarks.nasbench101 import NASBench_101Evaluator
        return NASBench_101Evaluator(self.path)

    def prepare(self) -> None:
        """Load the table, and fail now if it lacks the accuracy or epoch budget."""
        self.evaluator.check_query(self.acc, self.epochs)

    def evaluate(self, descriptor) -> Outcome:
        value, training_time = self.evaluator.descriptor_evaluate(
            descriptor, acc=self.acc, epochs=self.epochs)
        return Outcome(float(value), {self.acc: float(value)}, float(training_time))

    def key(self, descriptor) -> str:
        return self.evaluator.hash_of(descriptor)

    def settings(self) -> dict:
        return {"epochs": self.epochs, "acc": self.acc, "path": self.path}


class TrainingObjective(Objective):
    """Fitness by training: a :class:`~nord.neural_nets.LocalEvaluator` run.

    The fitness is ``metric`` (default ``accuracy``) on the evaluator's split
    (a validation split carved from the training set by default); the cost is
    the measured training and scoring time. ``evaluator_options`` go to
    ``LocalEvaluator`` (optimizer, batch size, seed, split, device, ...). A
    training whose loss turns non-finite is a failed evaluation (fitness 0).
    ``curves=True`` keeps the training loss of every epoch in the metrics
    (``train_losses``; ``nord search --log-curves`` logs them).
    """

    name = "training"

    def __init__(self, dataset: str = "fashion-mnist", epochs: int = 1,
                 data_percentage: float = 1.0, metric: str = "accuracy",
                 optimizer: str = "adam", optimizer_params: Optional[dict] = None,
                 curves: bool = False, **evaluator_options) -> None:
        from nord.data_curators.splits import check_percentage
        if int(epochs) < 1:
            raise SettingsError(f"epochs must be at least 1 to train candidates, got {epochs}")
        self.dataset, self.epochs = dataset, int(epochs)
        self.data_percentage, self.metric = check_percentage(data_percentage), metric
        self.optimizer, self.optimizer_params = optimizer, dict(optimizer_params or {})
        self.curves = bool(curves)  # keep each evaluation's loss per epoch (train_losses)
        self.evaluator_options = evaluator_options

    def _make_evaluator(self):
        from nord.neural_nets import LocalEvaluator
        return LocalEvaluator(self.optimizer, self.optimizer_params, **self.evaluator_options)

    def prepare(self) -> None:
        """Check the dataset and metric, and load the data: a missing or damaged data
        file (a labels file that is an image, a cut-short archive) fails now, before
        a run store exists, not at the first evaluation."""
        config = self.evaluator.configs[self.dataset]  # an unknown dataset fails now
        if self.metric not in config.metrics:
            raise SettingsError(f"dataset {self.dataset!r} reports {list(config.metrics)}, "
                                f"not {self.metric!r}")
        self.evaluator.load_data(self.dataset, self.data_percentage)  # kept for evaluations

    def input_rank(self) -> int:
        """How many spatial dimensions the dataset's inputs have (2 for images)."""
        shape = self.evaluator.configs[self.dataset].input_shape
        return 1 if isinstance(shape, int) else len(tuple(shape))

    def evaluate(self, descriptor) -> Outcome:
        result = self.evaluator.descriptor_evaluate(descriptor, self.epochs, self.dataset,
                                                    self.data_percentage)
        metrics = {"loss": result.loss, **result.metrics, "parameters": result.parameters}
        if self.curves:
            metrics["train_losses"] = [float(loss) for loss in result.train_losses]
        if result.failed:
            return Outcome(0.0, metrics, result.total_time, failed=True, error=result.error)
        return Outcome(float(result.metrics[self.metric]), metrics, result.total_time)

    def settings(self) -> dict:
        return {"dataset": self.dataset, "epochs": self.epochs,
                "data_percentage": self.data_percentage, "metric": self.metric,
                "optimizer": self.optimizer, "optimizer_params": self.optimizer_params,
                **({"curves": True} if self.curves else {}), **self.evaluator_options}


class EnvironmentObjective(TrainingObjective):
    """Training, data-parallel across the ranks of an open ``Environment``.

    For the master of ``with Environment() as e:`` (thesis listing 3.4): each
    candidate is trained by all ranks together. Runs in the master process
    (use the serial executor); it cannot be pickled to other processes.
    """

    name = "environment"

    def __init__(self, environment, dataset: str = "fashion-mnist", epochs: int = 1,
                 data_percentage: float = 1.0, metric: str = "accuracy") -> None:
        super().__init__(dataset, epochs, data_percentage, metric)
        self._evaluator = environment

    def prepare(self) -> None:
        pass

    def __getstate__(self) -> dict:
        raise InvalidArgumentError("an EnvironmentObjective evaluates through the master's open "
                                   "Environment; run it with the serial executor")


#: objective name -> objective class: one per benchmark table, and ``training``
OBJECTIVES = Registry("objective", how_to_add="register one with "
                      "nord.execution.objectives.register_objective()")


def register_objective(name: str, objective_class=None, *, summary: str = "",
                       replace: bool = False):
    """Register an :class:`Objective` subclass (or a ``"module:Class"`` string) as
    ``name``; without ``objective_class``, a class decorator."""
    return OBJECTIVES.register(name, objective_class, summary=summary, replace=replace)


register_objective("nasbench201", NASBench201Objective,
                   summary="look NAS-Bench-201 cells up in the benchmark table")
register_objective("nasbench101", NASBench101Objective,
                   summary="look NAS-Bench-101 cells up in the benchmark table")
register_objective("training", TrainingObjective,
                   summary="train each candidate with LocalEvaluator")
register_objective("predictor", "nord.execution.predictor_objective:PredictorObjective",
                   summary="gcn genomes: Kendall's tau of the trained ranker on unseen "
                   "architectures (chapter 7)")


def make_objective(name: str, **settings) -> Objective:
    """The objective registered as ``name``, built with ``settings``."""
    return OBJECTIVES[name](**settings)
