"""Architecture datasets: evaluated architectures as graphs with their scores (chapter 7).

An :class:`ArchitectureDataset` holds graphs (one per distinct architecture, up
to isomorphism), a target per graph (an accuracy), and the vocabulary of node
labels its graphs use. It comes from

* a NAS-Bench-101 table (:meth:`ArchitectureDataset.from_nasbench101`: cells
  sampled at random, the mean validation accuracy at 108 epochs, §7.3.4);
* any run store of this project (:meth:`ArchitectureDataset.from_run_store`:
  every search a user ran can train a predictor), through the search space's
  graph form;
* architectures of a space and their scores
  (:meth:`ArchitectureDataset.from_architectures`).

:meth:`~ArchitectureDataset.split` separates train and test sets that never
share an architecture up to isomorphism; :func:`pair_labels` gives the
ternary class of §7.3.3 (``BETTER``: G1 > G2, ``EQUAL``: within ``epsilon``,
``WORSE``: G1 < G2) and :func:`ranking_pairs` the pairs a ranking predictor
trains on. Pure logic; the data is read by the constructors only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from nord.design.predictors.graphs import ArchitectureGraph
from nord.errors import GraphDatasetError, NordError

__all__ = ["ArchitectureDataset", "graph_from_matrix", "pair_labels", "ranking_pairs",
           "BETTER", "EQUAL", "WORSE", "NASBENCH101_VOCABULARY"]

#: the ternary classes of §7.3.3, as class indices of the ranking head
BETTER, EQUAL, WORSE = 0, 1, 2
#: node labels of NAS-Bench-101 graphs: table 3.1's 5-long feature vector
NASBENCH101_VOCABULARY = ("input", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "output")


@dataclass(frozen=True)
class ArchitectureDataset:
    """Graphs, their targets (higher is better) and the label vocabulary.

    ``keys`` are the graphs' isomorphism-invariant hashes (distinct within a
    dataset); ``name`` says where the data came from.
    """

    graphs: Tuple[ArchitectureGraph, ...]
    targets: np.ndarray
    vocabulary: Tuple[str, ...]
    keys: Tuple[str, ...]
    name: str = ""

    def __post_init__(self) -> None:
        targets = np.asarray(self.targets, dtype=np.float64).reshape(-1)
        if len(targets) != len(self.graphs) or len(self.keys) != len(self.graphs):
            raise GraphDatasetError(f"{len(self.graphs)} graphs, {len(targets)} targets and "
                                    f"{len(self.keys)} keys: one of each per architecture")
        if not np.all(np.isfinite(targets)):
            bad = int(np.flatnonzero(~np.isfinite(targets))[0])
            raise GraphDatasetError(f"the target of architecture {bad} is {targets[bad]}; "
                                    f"leave failed evaluations out of a dataset")
        if len(set(self.keys)) != len(self.keys):
            raise GraphDatasetError("a dataset lists an architecture twice (isomorphic "
                                    "graphs); build it with ArchitectureDataset.build")
        targets.flags.writeable = False
        object.__setattr__(self, "targets", targets)
        object.__setattr__(self, "graphs", tuple(self.graphs))
        object.__setattr__(self, "keys", tuple(self.keys))
        object.__setattr__(self, "vocabulary", tuple(self.vocabulary))

    def __len__(self) -> int:
        return len(self.graphs)

    @property
    def max_nodes(self) -> int:
        return max((g.num_nodes for g in self.graphs), default=0)

    # ---------------------------------------------------------------- making
    @classmethod
    def build(cls, graphs: Sequence[ArchitectureGraph], targets: Sequence[float],
              vocabulary: Sequence[str], name: str = "") -> "ArchitectureDataset":
        """A dataset of distinct architectures: isomorphic graphs are merged, their
        targets averaged (a search that evaluated one cell twice, or two
        isomorphic cells, counts it once)."""
        targets = [float(t) for t in targets]
        if len(targets) != len(graphs):
            raise GraphDatasetError(f"{len(graphs)} graphs but {len(targets)} targets")
        order: List[str] = []
        merged: Dict[str, Tuple[ArchitectureGraph, List[float]]] = {}
        for graph, target in zip(graphs, targets):
            key = graph.key()
            if key not in merged:
                order.append(key)
                merged[key] = (graph, [])
            merged[key][1].append(target)
        for key in order:  # every label must be known before anything trains
            merged[key][0].label_indices(vocabulary)
        return cls(tuple(merged[k][0] for k in order),
                   np.array([float(np.mean(merged[k][1])) for k in order]),
                   tuple(vocabulary), tuple(order), name)

    @classmethod
    def from_architectures(cls, space, architectures: Sequence[Any], targets: Sequence[float],
                           name: str = "") -> "ArchitectureDataset":
        """Architectures of ``space`` (its own values, as ``sample`` gives them)."""
        graphs = [space.to_graph(a) for a in architectures]
        return cls.build(graphs, targets, space.graph_vocabulary, name or space.name)

    @classmethod
    def from_nasbench101(cls, size: int = 500, seed: int = 0, epochs: int = 108,
                         acc: str = "validation_accuracy", table=None) -> "ArchitectureDataset":
        """``size`` distinct cells drawn uniformly from a NAS-Bench-101 table, with
        their mean ``acc`` at ``epochs`` (a fraction). ``table`` is a path or a
        loaded :class:`~nord.neural_nets.NASBench_101Evaluator` (default: the
        table found through ``$NORD_DATA``)."""
        from nord.neural_nets.benchmarks.nasbench101 import NASBench_101Evaluator
        evaluator = table if isinstance(table, NASBench_101Evaluator) else \
            NASBench_101Evaluator(table)
        evaluator.check_query(acc, epochs)
        if not 2 <= int(size) <= len(evaluator):
            raise GraphDatasetError(f"size must be 2..{len(evaluator)} (the cells of "
                                    f"{evaluator.path.name}), got {size}")
        rng = np.random.default_rng(int(seed))
        graphs, targets = [], []
        for descriptor in evaluator.sample(rng, n=int(size)):
            matrix, ops = evaluator.descriptor_to_matrix(descriptor)
            graphs.append(graph_from_matrix(matrix, ops))
            metrics = evaluator.get_metrics(descriptor)
            runs = metrics["computed"][int(epochs)]
            targets.append(float(np.mean([r[f"final_{acc}"] for r in runs])))
        return cls.build(graphs, targets, NASBENCH101_VOCABULARY,
                         f"nasbench101 ({evaluator.path.name}, {acc} @ {epochs} epochs)")

    @classmethod
    def from_run_store(cls, path, space: Optional[str] = None) -> "ArchitectureDataset":
        """Every architecture a run evaluated successfully, with its fitness.

        ``path`` is a run folder or its ``run.sqlite``; ``space`` (optional)
        names the space the caller expects, and a store of another space is an
        error. Failed and invalid evaluations are left out; repeats are merged.
        A study whose trials are architectures (``nord study fmnist-architectures``)
        loads too, through its ``architecture_dataset``; then ``space`` names the
        study.
        """
        from nord.design.spaces import get_space
        from nord.execution.store import RunStore

        path = Path(path)
        if path.is_dir():
            path = path / "run.sqlite"
        if not path.exists():
            raise GraphDatasetError(f"{path} does not exist; give a run folder of nord search "
                                    f"(it holds run.sqlite)")
        with RunStore(path, create=False) as store:
            meta = store.meta()
            records = [r for r in store.finished() if r.status == "ok"]
        if "study" in meta:
            return cls._from_study_store(path, meta["study"], records, space)
        settings = meta.get("settings")
        if not isinstance(settings, dict) or not isinstance(settings.get("space"), str):
            raise GraphDatasetError(f"{path} is not a search run (no search settings); an "
                                    f"architecture dataset is built from nord search runs")
        stored_space = settings["space"]
        if space is not None and stored_space != space:
            raise GraphDatasetError(f"{path} holds a search of the {stored_space} space, not "
                                    f"of {space}; give a run of the {space} space")
        space_settings = meta.get("space_settings") or {}
        if not isinstance(space_settings, dict):
            raise GraphDatasetError(f"the space settings in {path} are not a JSON object")
        try:
            search_space = get_space(stored_space, **space_settings)
        except NordError as error:
            raise GraphDatasetError(f"cannot rebuild the {stored_space} space of {path}: "
                                    f"{error}") from error
        if not hasattr(search_space, "graph_vocabulary"):
            raise GraphDatasetError(f"the {stored_space} space has no graph form; predictors "
                                    f"train on spaces that have one")
        graphs, targets = [], []
        for record in records:
            if record.fitness is None or not math.isfinite(record.fitness):
                continue
            try:
                architecture = search_space.decode(record.architecture)
            except (NordError, TypeError, ValueError, KeyError) as error:
                raise GraphDatasetError(f"evaluation {record.id} in {path} is not an "
                                        f"architecture of the {stored_space} space "
                                        f"({error})") from error
            graphs.append(search_space.to_graph(architecture))
            targets.append(float(record.fitness))
        return cls.build(graphs, targets, search_space.graph_vocabulary,
                         f"{stored_space} run {path.parent}")

    @classmethod
    def _from_study_store(cls, path: Path, stored, records, expected: Optional[str]
                          ) -> "ArchitectureDataset":
        from nord.studies import STUDIES
        name = stored.get("name") if isinstance(stored, dict) else None
        if expected is not None and name != expected:
            raise GraphDatasetError(f"{path} holds a {name!r} study, not {expected!r}; give "
                                    f"the run folder of nord study {expected}")
        study_class = STUDIES[name] if isinstance(name, str) and name in STUDIES else None
        if study_class is None or not hasattr(study_class, "architecture_dataset"):
            raise GraphDatasetError(f"{path} holds a {name!r} study, whose trials are not "
                                    f"architectures; architecture datasets come from nord "
                                    f"search runs and nord study fmnist-architectures")
        try:
            study = study_class.from_settings(stored.get("settings") or {})
        except (NordError, TypeError) as error:
            raise GraphDatasetError(f"cannot rebuild the {name} study of {path}: "
                                    f"{error}") from error
        return study.architecture_dataset(records, f"{name} run {path.parent}")

    # --------------------------------------------------------------- using
    def subset(self, indices: Sequence[int], name: str = "") -> "ArchitectureDataset":
        indices = [int(i) for i in indices]
        return ArchitectureDataset(tuple(self.graphs[i] for i in indices),
                                   self.targets[indices], self.vocabulary,
                                   tuple(self.keys[i] for i in indices), name or self.name)

    def split(self, train: float = 0.7, test: Optional[int] = None, seed: int = 0
              ) -> Tuple["ArchitectureDataset", "ArchitectureDataset"]:
        """``(train set, test set)``, shuffled with ``seed``. ``train`` is a fraction
        of the dataset (0.7: §7.4.1's 70/30) or, as an int above 1, a count;
        ``test`` (a count) takes that many of the rest (default: all of it). The
        sets never share an architecture, isomorphic ones included: each
        dataset holds every architecture once."""
        self.check_trainable()
        n = len(self)
        if isinstance(train, float) and 0 < train < 1:
            n_train = int(round(train * n))
        elif float(train).is_integer() and train >= 1:
            n_train = int(train)
        else:
            raise GraphDatasetError(f"train must be a fraction in (0, 1) or a count, got "
                                    f"{train!r}")
        n_test = n - n_train if test is None else int(test)
        if n_train < 2 or n_test < 2 or n_train + n_test > n:
            raise GraphDatasetError(f"cannot split {n} architectures into {n_train} train and "
                                    f"{n_test} test (each side needs at least 2); use a "
                                    f"larger dataset or other sizes")
        order = np.random.default_rng(int(seed)).permutation(n)
        return (self.subset(order[:n_train], f"{self.name} [train]"),
                self.subset(order[n_train:n_train + n_test], f"{self.name} [test]"))

    def check_trainable(self) -> None:
        """A predictor needs at least two architectures with different scores."""
        if len(self) < 2:
            raise GraphDatasetError(f"the dataset {self.name!r} holds {len(self)} "
                                    f"architecture{'s' if len(self) != 1 else ''}; a ranking "
                                    f"needs at least 2 (evaluate more architectures)")

    def to_json(self) -> dict:
        return {"name": self.name, "vocabulary": list(self.vocabulary),
                "graphs": [g.to_json() for g in self.graphs],
                "targets": [float(t) for t in self.targets]}

    @classmethod
    def from_json(cls, data) -> "ArchitectureDataset":
        """A dataset written by :meth:`to_json` (untrusted: only data is read)."""
        if not isinstance(data, dict) or not all(
                isinstance(data.get(k), list) for k in ("vocabulary", "graphs", "targets")):
            raise GraphDatasetError("an architecture dataset is {'vocabulary': [...], "
                                    "'graphs': [...], 'targets': [...]}")
        graphs = [ArchitectureGraph.from_json(g) for g in data["graphs"]]
        try:
            targets = [float(t) for t in data["targets"]]
        except (TypeError, ValueError) as error:
            raise GraphDatasetError(f"targets must be numbers ({error})") from error
        return cls.build(graphs, targets, [str(v) for v in data["vocabulary"]],
                         str(data.get("name", "")))


def graph_from_matrix(matrix, ops: Sequence[str]) -> ArchitectureGraph:
    """A cell given as an upper-triangular adjacency matrix and its ops."""
    matrix = np.asarray(matrix)
    edges = tuple((int(a), int(b)) for a, b in zip(*np.nonzero(matrix)))
    return ArchitectureGraph(tuple(ops), edges)


def pair_labels(first: np.ndarray, second: np.ndarray, epsilon: float) -> np.ndarray:
    """The ternary class of each pair (§7.3.3): ``EQUAL`` when the targets differ by
    less than ``epsilon``, else ``BETTER`` (first > second) or ``WORSE``.

    >>> pair_labels(np.array([0.90, 0.90, 0.90]), np.array([0.80, 0.905, 0.95]), 0.01).tolist()
    [0, 1, 2]
    """
    if not epsilon >= 0:
        raise GraphDatasetError(f"epsilon must be 0 or more, got {epsilon}")
    difference = np.asarray(first, dtype=np.float64) - np.asarray(second, dtype=np.float64)
    labels = np.where(difference > 0, BETTER, WORSE)
    labels[np.abs(difference) < epsilon] = EQUAL
    return labels.astype(np.int64)


def ranking_pairs(n: int, ordered: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)``, ``i != j``, of ``n`` architectures: both orders
    (``n(n-1)`` pairs, so a model sees each comparison both ways) or, with
    ``ordered=False``, ``i < j`` only."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    keep = (i != j) if ordered else (i < j)
    return i[keep].astype(np.int64), j[keep].astype(np.int64)
