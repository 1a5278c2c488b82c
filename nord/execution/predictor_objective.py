"""The fitness of a chapter-7 GCN ranker (objective ``predictor``, §7.3–7.4).

``nord search --space gcn`` evolves :class:`~nord.design.predictors.egraph.GCNArchitecture`
genomes; each one is scored by building its :class:`~nord.design.predictors.egraph.SiameseGCN`,
training it on the pairs of a training split of an architecture dataset
(:func:`~nord.design.predictors.training.train_ranker`) and ranking the
architectures of the validation split with it. The fitness is Kendall's tau
of that ranking against the true one; the top-50 % tau and the parameter
count are kept as metrics (Figures 7.5–7.8 are drawn from them).

Table 7.2 and §7.4.1 as options, with the thesis's values in brackets where the
default is scaled down for a CPU:

=================  ==========================================  =========================
option             meaning                                      default (thesis)
=================  ==========================================  =========================
``dataset``        ``nasbench101`` (cells of the NAS-Bench-101    ``nasbench101``
                   table, 108-epoch validation accuracy) or a
                   ``nord search`` run folder (its evaluated
                   architectures and fitness, e.g. Fashion-MNIST)
``size``           architectures drawn from it                   120 (500)
``train``          training share (a fraction) or count          0.7 (0.7: 70/30)
``epsilon``        margin of the EQUAL class                     0.01
``epochs``         training epochs                               1 (2)
``lr``             AdamW learning rate                           1e-3
``weight_decay``   AdamW weight decay                            1e-2
``batch_size``     pairs per step                                256
``seed``           data sample, split, weights and pair order    the search's ``--seed``
=================  ==========================================  =========================

The standard width ``F`` is a gene of the space (``--space-option filters=300``
for the thesis's); ``nord search --space gcn`` defaults to
:data:`SEARCH_FILTERS` so that one evaluation takes a few seconds on a CPU.

The dataset is built once per process (the objective's evaluator) and never
pickled: a process or Ray worker builds its own from the same settings and
seed, so every worker scores on the same split.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from nord.errors import NonFiniteLossError, SettingsError
from nord.execution.objectives import Objective, Outcome

__all__ = ["PredictorObjective", "RankingSplit", "load_architecture_dataset",
           "SEARCH_FILTERS", "THESIS_SETTINGS", "DATASET_SOURCES"]

#: F of ``nord search --space gcn`` unless ``--space-option filters=...`` (thesis: 300)
SEARCH_FILTERS = 32
#: Table 7.2 / §7.4.1 as objective options
THESIS_SETTINGS = {"size": 500, "train": 0.7, "epsilon": 0.01, "epochs": 2, "lr": 1e-3,
                   "weight_decay": 1e-2, "batch_size": 256}
#: named dataset sources (anything else is a run folder)
DATASET_SOURCES = ("nasbench101",)
#: ``nord search`` flags that fill objective options, and the options they fill
_FLAGS = {"data_percentage": "--percentage", "optimizer": "--optimizer",
          "split": "--fitness-split"}


def load_architecture_dataset(source: str = "nasbench101", size: Optional[int] = None,
                              seed: int = 0, table=None):
    """An :class:`~nord.design.predictors.datasets.ArchitectureDataset` from ``source``:
    ``"nasbench101"`` (``size`` cells drawn with ``seed`` from the table at
    ``table``, default found through ``$NORD_DATA``; 500 when ``size`` is None)
    or a ``nord search`` run folder (its successful evaluations; ``size`` of
    them drawn with ``seed`` when given)."""
    import numpy as np

    from nord.design.predictors.datasets import ArchitectureDataset
    from nord.errors import GraphDatasetError
    if source == "nasbench101":
        return ArchitectureDataset.from_nasbench101(size=500 if size is None else int(size),
                                                    seed=int(seed), table=table)
    folder = Path(str(source))
    if not (folder / "run.sqlite").exists():
        raise SettingsError(f"dataset {source!r} is neither one of {', '.join(DATASET_SOURCES)} "
                            f"nor a nord search run folder (no run.sqlite there); give "
                            f"--dataset nasbench101 or the --out folder of a search")
    dataset = ArchitectureDataset.from_run_store(folder)
    if size is None:
        return dataset
    if int(size) > len(dataset):
        raise GraphDatasetError(f"the run in {folder} holds {len(dataset)} distinct evaluated "
                                f"architectures, fewer than size={size}; ask for at most "
                                f"{len(dataset)} (or run the search longer)")
    chosen = np.sort(np.random.default_rng(int(seed)).permutation(len(dataset))[:int(size)])
    return dataset.subset(chosen)


@dataclass(frozen=True)
class RankingSplit:
    """The architectures a ranker trains on and those it is scored on."""

    train: Any
    validation: Any

    @property
    def vocabulary(self):
        return self.train.vocabulary


def _whole(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise SettingsError(f"the predictor objective's {name} must be a whole number >= "
                            f"{low}, got {value!r}")
    return int(value)


def _number(name: str, value, zero: bool) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(value) and (value >= 0 if zero else value > 0)
    if not ok:
        raise SettingsError(f"the predictor objective's {name} must be a number "
                            f"{'>= 0' if zero else '> 0'}, got {value!r}")
    return float(value)


class PredictorObjective(Objective):
    """Kendall's tau of a GCN genome's ranking of unseen architectures (see the
    module docstring for the options).

    ``evaluate`` takes a descriptor of the ``gcn`` space (or a
    :class:`~nord.design.predictors.egraph.GCNArchitecture`); anything else is
    an invalid candidate. A training whose loss turns non-finite is a failed
    evaluation.
    """

    name = "predictor"

    def __init__(self, dataset: str = "nasbench101", size: int = 120, train: float = 0.7,
                 epsilon: float = 0.01, epochs: int = 1, lr: float = 1e-3,
                 weight_decay: float = 1e-2, batch_size: int = 256, seed: int = 0,
                 table=None, device: Optional[str] = None, **unknown) -> None:
        if unknown:
            named = ", ".join(f"{k} ({_FLAGS[k]})" if k in _FLAGS else k for k in sorted(unknown))
            raise SettingsError(f"the predictor objective (the gcn space's fitness) has no "
                                f"option {named}; its options are dataset, size, train, "
                                f"epsilon, epochs, lr, weight_decay, batch_size, seed, table "
                                f"and device")
        if not isinstance(dataset, (str, Path)) or not str(dataset):
            raise SettingsError(f"the predictor objective's dataset is nasbench101 or a run "
                                f"folder, got {dataset!r}")
        self.dataset = str(dataset)
        self.size = _whole("size", size, 4)
        if isinstance(train, bool) or not isinstance(train, numbers.Real) or not (
                0 < train < 1 or (float(train).is_integer() and 2 <= train <= self.size - 2)):
            raise SettingsError(f"the predictor objective's train is a share in (0, 1) or a "
                                f"count in 2..size-2 ({self.size - 2}), got {train!r}")
        self.train = float(train) if 0 < train < 1 else int(train)
        self.epsilon = _number("epsilon", epsilon, zero=True)
        self.epochs = _whole("epochs", epochs, 1)
        self.lr = _number("lr", lr, zero=False)
        self.weight_decay = _number("weight_decay", weight_decay, zero=True)
        self.batch_size = _whole("batch_size", batch_size, 1)
        self.seed = _whole("seed", seed, 0)
        self.table = None if table is None else str(table)
        if device is not None and not isinstance(device, str):
            raise SettingsError(f"device is a torch device name such as cpu or cuda, got "
                                f"{device!r}")
        self.device = device

    # ---------------------------------------------------------------- data
    def _make_evaluator(self) -> RankingSplit:
        data = load_architecture_dataset(self.dataset, self.size, self.seed, self.table)
        train, validation = data.split(self.train, seed=self.seed)
        return RankingSplit(train, validation)

    def prepare(self) -> None:
        """Check that torch-geometric is installed and build the dataset now, so a
        missing table or dependency stops the run before it starts."""
        from nord.design.predictors.egraph import require_torch_geometric
        require_torch_geometric()
        self.evaluator  # noqa: B018 (builds the split once)

    def _device(self):
        import torch
        if self.device is not None:
            return torch.device(self.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    # ---------------------------------------------------------------- scoring
    @staticmethod
    def architecture_of(candidate):
        """The genome a candidate (a gcn descriptor or a genome) stands for."""
        from nord.design.predictors.egraph import GCNArchitecture
        from nord.design.spaces.gcn import architecture_from_descriptor
        if isinstance(candidate, GCNArchitecture):
            return candidate
        return architecture_from_descriptor(candidate)

    def evaluate(self, descriptor) -> Outcome:
        from nord.design.predictors.egraph import SiameseGCN
        from nord.design.predictors.training import evaluate_ranker, train_ranker
        architecture = self.architecture_of(descriptor)
        split = self.evaluator
        started = time.perf_counter()
        model = SiameseGCN(architecture, len(split.vocabulary), seed=self.seed)
        model = model.to(self._device())
        parameters = model.num_parameters()
        try:
            history = train_ranker(model, split.train, epochs=self.epochs, lr=self.lr,
                                   weight_decay=self.weight_decay, batch_size=self.batch_size,
                                   epsilon=self.epsilon, seed=self.seed)
        except NonFiniteLossError as error:
            return Outcome(0.0, {"parameters": parameters}, time.perf_counter() - started,
                           failed=True, error=f"NonFiniteLossError: {error}")
        quality = evaluate_ranker(model, split.validation)
        seconds = time.perf_counter() - started
        return Outcome(quality.tau, {"tau": quality.tau, "top50_tau": quality.top50_tau,
                                     "parameters": parameters, "loss": history.losses[-1],
                                     "validation_size": quality.n}, seconds)

    def key(self, descriptor) -> str:
        from nord.design.predictors.egraph import GCNArchitecture
        if isinstance(descriptor, GCNArchitecture):
            from nord.design.spaces.gcn import GCNSpace
            descriptor = GCNSpace().to_descriptor(descriptor)
        return descriptor.canonical_hash()

    def settings(self) -> dict:
        return {"dataset": self.dataset, "size": self.size, "train": self.train,
                "epsilon": self.epsilon, "epochs": self.epochs, "lr": self.lr,
                "weight_decay": self.weight_decay, "batch_size": self.batch_size,
                "seed": self.seed, "table": self.table, "device": self.device}
