"""NAS-Bench-101 as an evaluator: :class:`NASBench_101Evaluator` (thesis §2.3.2, listing 3.3).

NAS-Bench-101 trained every cell of its space (at most 7 vertices and 9 edges,
inner ops ``conv3x3-bn-relu``, ``conv1x1-bn-relu`` and ``maxpool3x3`` between an
``input`` and an ``output`` vertex) on CIFAR-10, three times each, for 4, 12, 36
and 108 epochs. The evaluator answers ``descriptor_evaluate`` from such a table
instead of training::

    evaluator = NASBench_101Evaluator()
    d = NeuralDescriptor()
    layers = evaluator.get_available_ops()     # conv3x3, conv1x1, maxpool3x3
    d.add_layer('input', None, 'in')
    d.add_layer_sequential(layers[0], None, 'layer_1')
    d.add_layer_sequential(layers[2], None, 'layer_2')
    d.add_layer_sequential('output', None, 'out')
    d.connect_layers('layer_1', 'out')
    val_acc, train_time = evaluator.descriptor_evaluate(d, acc='validation_accuracy')

The parts live in sibling modules, and every public name is re-exported here:

* :mod:`~nord.neural_nets.benchmarks.nasbench101_tables`: the two table formats
  (the 30k csv subset, the official tfrecords), where they are looked for
  without ``path`` (``$NORD_DATA/nasbench101/``, then the user cache) and how
  they are loaded;
* :mod:`~nord.neural_nets.benchmarks.nasbench101_cells`: how a descriptor or a
  ``(matrix, ops)`` pair becomes a cell (input and output found by role, pruned,
  topologically ordered, checked against the space's limits) and its key;
* :mod:`~nord.neural_nets.benchmarks.nasbench101_records`: the official records'
  ``ModelMetrics`` protobuf, and writing tfrecords in that format.

**Cells.** Cells are keyed by NAS-Bench-101's own hash
(:func:`~nord.neural_nets.graph_hash.nasbench101_hash`), so isomorphic
descriptors get the same answer. A descriptor that is no NAS-Bench-101 cell
raises :class:`~nord.errors.OutOfSearchSpaceError`; a valid cell that the loaded
table does not hold (most of them, with the 30k subset) raises
:class:`~nord.errors.NotInTableError`. Use :meth:`~NASBench_101Evaluator.sample`
and :meth:`~NASBench_101Evaluator.is_held` to stay inside the table.

**Repeats.** The official API returns one of the three runs at random. Here
``repeat='mean'`` (the default) answers the mean over the runs, so answers are
deterministic; ``repeat='sample'`` draws one run per query, seeded by ``seed``,
and returns that run's accuracy *and* training time. The 30k table holds one run
per cell, so both give the same numbers there.

**Training time.** The official tables hold the training time of every run. The
30k table holds it only at 108 epochs; at 4, 12 and 36 epochs the evaluator
returns the 108-epoch time scaled by ``epochs / 108``, an *estimate* (training
time is close to proportional to the number of epochs, as every budget was
trained from scratch at the same per-epoch cost), or NaN with
``low_fidelity_time='nan'``. :meth:`~NASBench_101Evaluator.is_time_estimated`
tells which. NaN times are not added to :attr:`~NASBench_101Evaluator.simulated_time`.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any, Dict, KeysView, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from nord.errors import (
    InvalidArgumentError,
    MetricNotAvailableError,
    NotInTableError,
    OutOfSearchSpaceError,
    SettingsError,
)
from nord.neural_nets.benchmarks.nasbench101_cells import (OPS, INPUT, MAX_EDGES, MAX_VERTICES,
                                                           OUTPUT, Matrix, descriptor_key,
                                                           hash_of_key, mask_to_matrix,
                                                           matrix_key, matrix_to_descriptor)
from nord.neural_nets.benchmarks.nasbench101_records import (decode_model_metrics,
                                                             encode_model_metrics,
                                                             encode_nasbench_record,
                                                             write_nasbench_tfrecord)
from nord.neural_nets.benchmarks.nasbench101_tables import (ACCURACIES, CSV_NAME, OFFICIAL_URL,
                                                            TFRECORD_NAMES, LoadedTable,
                                                            PathLike, is_tfrecord,
                                                            find_nasbench101, load_csv,
                                                            load_tfrecord)

__all__ = [
    "NASBench_101Evaluator",
    "NB101Cell",
    "CSV_NAME",
    "TFRECORD_NAMES",
    "OFFICIAL_URL",
    "encode_model_metrics",
    "decode_model_metrics",
    "encode_nasbench_record",
    "write_nasbench_tfrecord",
]

logger = logging.getLogger(__name__)

_MEMO_LIMIT = 1 << 19


class NB101Cell(NamedTuple):
    """One cell of the table: its hash, pruned matrix and ops, and a value."""

    hash: str
    matrix: np.ndarray
    ops: List[str]
    value: float
    training_time: float


class NASBench_101Evaluator:
    """Answer ``descriptor_evaluate`` from a NAS-Bench-101 table (see module docs).

    Parameters
    ----------
    path:
        A table file (``.csv``/``.csv.gz`` in the 30k-subset layout, or an official
        ``.tfrecord``) or a folder holding one; found automatically when omitted.
    repeat:
        ``'mean'`` (default): average the training runs of a cell; ``'sample'``:
        one run drawn at random per query (the official API's behaviour).
    seed:
        Seed (default 0) of the generators that ``repeat='sample'`` draws runs
        with and that :meth:`sample` draws cells with when given no generator.
    low_fidelity_time:
        ``'scaled'`` (default) or ``'nan'``: the training time returned where the
        table has none (the 30k table below 108 epochs), see module docs.
    verify:
        Check the tfrecord checksums (default ``True``).

    Attributes: ``path``, ``source`` (``'csv'`` or ``'tfrecord'``), ``epochs``
    (the budgets the table holds), ``metrics`` (the accuracies it holds),
    ``num_repeats``, ``load_seconds``, and the budget counters ``queries`` and
    ``simulated_time`` (reset by :meth:`reset_counter`).
    """

    INPUT = INPUT
    OUTPUT = OUTPUT
    MAX_VERTICES = MAX_VERTICES
    MAX_EDGES = MAX_EDGES

    def __init__(self, path: Optional[PathLike] = None, *, repeat: str = "mean",
                 seed: int = 0, low_fidelity_time: str = "scaled",
                 verify: bool = True) -> None:
        if repeat not in ("mean", "sample"):
            raise SettingsError(f"repeat must be 'mean' or 'sample', got {repeat!r}")
        if low_fidelity_time not in ("scaled", "nan"):
            raise SettingsError(f"low_fidelity_time must be 'scaled' or 'nan', "
                                f"got {low_fidelity_time!r}")
        self.repeat = repeat
        self.low_fidelity_time = low_fidelity_time
        self._rng = random.Random(seed)
        self._sample_rng = np.random.default_rng(seed)
        start = time.perf_counter()
        self.path = find_nasbench101(path)
        if is_tfrecord(self.path):
            self.source = "tfrecord"
            table = load_tfrecord(self.path, verify)
        else:
            self.source = "csv"
            table = load_csv(self.path, self.low_fidelity_time)
        self._finish_load(table)
        self.load_seconds = time.perf_counter() - start
        self.queries = 0
        self.simulated_time = 0.0
        logger.info("loaded %d NAS-Bench-101 cells from %s in %.2f s",
                    len(self._hashes), self.path, self.load_seconds)

    # ------------------------------------------------------------------ loading
    def _finish_load(self, table: LoadedTable) -> None:
        """Adopt a loaded table; build the means and lookup structures."""
        self._hashes = table.hashes
        self._index = table.index
        self._flats = table.flats
        self._ops = table.ops
        self._masks = table.masks
        self._params = table.params
        self.epochs = table.epochs
        self.num_repeats = table.num_repeats
        self._counts = table.counts
        self._runs = table.runs
        self._time_estimated = table.time_estimated
        self.metrics = tuple(name for name in ACCURACIES if ("final", name) in self._runs)
        self._epoch_index = {e: i for i, e in enumerate(self.epochs)}
        self._means = table.run_means()
        # (halfway?, acc) -> (accuracy grid, time grid) for the hot path: means
        # (cells x budgets) or runs (cells x budgets x repeats), by ``repeat``.
        source = self._means if self.repeat == "mean" else self._runs
        self._grids = {(stage == "halfway", name): (grid, source[(stage, "training_time")])
                       for (stage, name), grid in source.items()
                       if name in ACCURACIES and (stage, "training_time") in source}
        # Keys of the cells as stored (pruned, topological order): most lookups of
        # descriptors built from the table never hash.
        self._table_keys = {(ops, mask): key
                            for key, mask, ops in zip(self._hashes, self._masks, self._ops)}
        self._memo: Dict[Tuple[str, int], str] = {}

    # ------------------------------------------------------------------ basics
    def get_available_ops(self) -> List[str]:
        """The inner ops, in NAS-Bench-101's order: conv3x3, conv1x1, maxpool3x3.

        ``'input'`` and ``'output'`` (the cell's input and output layer types)
        are not in the list.
        """
        return list(OPS)

    def __len__(self) -> int:
        return len(self._hashes)

    @property
    def hashes(self) -> KeysView:
        """The hashes of the cells in the table (a read-only view)."""
        return self._index.keys()

    def __repr__(self) -> str:
        return (f"NASBench_101Evaluator({str(self.path)!r}, cells={len(self)}, "
                f"epochs={self.epochs}, metrics={self.metrics}, repeat={self.repeat!r})")

    def is_time_estimated(self, epochs: int = 108) -> bool:
        """Whether training times at ``epochs`` are estimates (see module docs)."""
        self._epoch(epochs)
        return self._time_estimated[epochs]

    # ------------------------------------------------------------------ counters
    def reset_counter(self) -> None:
        """Set :attr:`queries` and :attr:`simulated_time` back to zero."""
        self.queries = 0
        self.simulated_time = 0.0

    # ------------------------------------------------------------------ cells
    def descriptor_to_matrix(self, descriptor) -> Tuple[np.ndarray, List[str]]:
        """The pruned NAS-Bench-101 cell of a descriptor: ``(matrix, ops)``.

        ``matrix`` is an upper-triangular 0/1 ``int`` array (row = source), its
        vertices in topological order with the input first and the output last;
        ``ops`` lists their types. Raises :class:`~nord.errors.OutOfSearchSpaceError`
        with the reason when the descriptor is no NAS-Bench-101 cell.
        """
        text, mask = self._descriptor_key(descriptor)
        ops = text.split(",")
        return mask_to_matrix(mask, len(ops)), ops

    @staticmethod
    def matrix_to_descriptor(matrix: Matrix, ops: Sequence[str]):
        """A descriptor of the cell ``(matrix, ops)``; vertex ``i`` becomes layer
        ``'in'`` (op ``'input'``), ``'out'`` (op ``'output'``) or ``'layer_<i>'``."""
        return matrix_to_descriptor(matrix, ops)

    def hash_of(self, cell) -> str:
        """NAS-Bench-101's hash of a descriptor or a ``(matrix, ops)`` pair (a hash
        string is returned as is). Raises :class:`~nord.errors.OutOfSearchSpaceError`
        for a cell outside the space; the table need not hold the cell."""
        if isinstance(cell, str):
            return cell
        return self._hash(self._key(cell))

    def is_held(self, cell) -> bool:
        """Whether the loaded table holds ``cell`` (a descriptor, ``(matrix, ops)``
        or a hash). Cells outside the search space are not held (no error)."""
        if isinstance(cell, str):
            return cell in self._index
        try:
            return self._hash(self._key(cell)) in self._index
        except OutOfSearchSpaceError:
            return False

    contains = is_held
    __contains__ = is_held

    def sample(self, rng=None, n: int = 1, replace: bool = False) -> list:
        """``n`` cells of the table, drawn uniformly, as descriptors (a list).

        ``rng`` is a ``numpy.random.Generator``, a seed, or ``None`` (the
        evaluator's own generator, seeded by its ``seed``: successive calls
        differ, and the same seed repeats them). Sampling from the table keeps a
        search inside the subset.
        """
        if rng is None:
            rng = self._sample_rng
        elif not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        if not replace and n > len(self):
            raise SettingsError(f"cannot draw {n} distinct cells from a table of {len(self)}; "
                                f"pass replace=True")
        picks = rng.choice(len(self), size=n, replace=replace)
        return [self.matrix_to_descriptor(*self._cell_of_row(int(i))) for i in picks]

    def best(self, acc: str = "validation_accuracy", epochs: int = 108) -> NB101Cell:
        """The table's best cell by ``acc`` at ``epochs`` (mean over repeats)."""
        means = self._means[("final", self._metric(acc))][:, self._epoch(epochs)]
        row = int(np.nanargmax(means))
        matrix, ops = self._cell_of_row(row)
        return NB101Cell(self._hashes[row], matrix, ops, float(means[row]),
                         float(self._means[("final", "training_time")][row,
                                                                      self._epoch(epochs)]))

    def get_metrics(self, cell) -> Dict[str, Any]:
        """Everything the table holds on a cell, without counting a query.

        ``{'hash', 'module_adjacency', 'module_operations', 'trainable_parameters',
        'computed': {epochs: [{'final_validation_accuracy': ..., ...} per run]}}``.
        """
        row = self._row(self._key(cell) if not isinstance(cell, str) else None, cell)
        matrix, ops = self._cell_of_row(row)
        computed = {}
        for e, epochs in enumerate(self.epochs):
            runs = []
            for r in range(int(self._counts[row, e])):
                runs.append({f"{stage}_{name}": float(grid[row, e, r])
                             for (stage, name), grid in self._runs.items()})
            computed[epochs] = runs
        return {"hash": self._hashes[row], "module_adjacency": matrix,
                "module_operations": ops,
                "trainable_parameters": int(self._params[row]), "computed": computed}

    def accuracy_runs(self, acc: str = "validation_accuracy") -> Tuple[np.ndarray, np.ndarray]:
        """Every run's final ``acc`` at once, for studies over the whole table:
        ``(runs, counts)`` with ``runs[cell, budget, repeat]`` (NaN where a cell has
        fewer runs) and ``counts[cell, budget]``, budgets as in :attr:`epochs`,
        cells in table order. Read-only views; no query is counted."""
        runs = self._runs[("final", self._metric(acc))].view()
        counts = self._counts.view()
        runs.flags.writeable = False
        counts.flags.writeable = False
        return runs, counts

    # ------------------------------------------------------------------ evaluation
    def descriptor_evaluate(self, descriptor, acc: str = "validation_accuracy",
                            epochs: int = 108, stop_halfway: bool = False
                            ) -> Tuple[float, float]:
        """``(accuracy, training_time)`` of the descriptor's cell, from the table.

        ``acc`` is one of :attr:`metrics` (``'validation_accuracy'``; with an
        official tfrecord also ``'train_accuracy'`` and ``'test_accuracy'``),
        ``epochs`` one of :attr:`epochs`. ``stop_halfway`` answers the metrics at
        half the budget (official tfrecords only). Accuracies are fractions,
        times seconds. Counts one query and adds the time to
        :attr:`simulated_time`. Raises :class:`~nord.errors.OutOfSearchSpaceError`,
        :class:`~nord.errors.NotInTableError` or
        :class:`~nord.errors.MetricNotAvailableError` (an ``acc``, ``epochs`` or halfway
        point the table does not hold).
        """
        grids = self._grids.get((bool(stop_halfway), acc))
        e = self._epoch_index.get(epochs)
        if grids is None or e is None:
            self._epoch(epochs)
            self._metric(acc, "halfway" if stop_halfway else "final")
        key = descriptor_key(descriptor)
        table_hash = self._table_keys.get(key)
        if table_hash is None:
            table_hash = self._hash(key)
        row = self._index.get(table_hash)
        if row is None:
            raise self._not_held(table_hash, key)
        values, times = grids
        if self.repeat == "mean":
            value = values.item(row, e)
            train_time = times.item(row, e)
        else:
            runs = self._counts.item(row, e)
            if runs == 0:
                raise self._no_runs(row, epochs)
            r = self._rng.randrange(runs)
            value = values.item(row, e, r)
            train_time = times.item(row, e, r)
        if value != value:  # NaN: no run of this cell at this budget
            raise self._no_runs(row, epochs)
        self.queries += 1
        if train_time == train_time:
            self.simulated_time += train_time
        return value, train_time

    def query(self, cell, epochs: int = 108, stop_halfway: bool = False) -> Dict[str, Any]:
        """One evaluation as a dict, like the official ``NASBench.query``: the
        cell's ``module_adjacency``, ``module_operations``,
        ``trainable_parameters``, ``training_time`` and every accuracy the table
        holds (mean or sampled run, as :attr:`repeat`). Counts one query."""
        row = self._row(self._key(cell) if not isinstance(cell, str) else None, cell)
        stage = "halfway" if stop_halfway else "final"
        e = self._epoch(epochs)
        if stop_halfway and (stage, "training_time") not in self._runs:
            self._metric("validation_accuracy", stage)
        if self.repeat == "mean":
            pick = {name: float(self._means[(stage, name)][row, e])
                    for name in ("training_time",) + self.metrics}
        else:
            runs = int(self._counts[row, e])
            if runs == 0:
                raise self._no_runs(row, epochs)
            r = self._rng.randrange(runs)
            pick = {name: float(self._runs[(stage, name)][row, e, r])
                    for name in ("training_time",) + self.metrics}
        if pick["validation_accuracy"] != pick["validation_accuracy"]:
            raise self._no_runs(row, epochs)
        matrix, ops = self._cell_of_row(row)
        self.queries += 1
        if pick["training_time"] == pick["training_time"]:
            self.simulated_time += pick["training_time"]
        return {"module_adjacency": matrix, "module_operations": ops,
                "trainable_parameters": int(self._params[row]), **pick}

    def check_query(self, acc: str = "validation_accuracy", epochs: int = 108,
                    stop_halfway: bool = False) -> None:
        """Raise :class:`~nord.errors.MetricNotAvailableError` now if the loaded
        table cannot answer queries for ``acc`` at ``epochs`` (the message says
        which it holds)."""
        self._metric(acc, "halfway" if stop_halfway else "final")
        self._epoch(epochs)

    def clear_cache(self) -> None:
        """Forget the vertex orders seen so far (each descriptor is hashed afresh)."""
        self._memo.clear()

    # ------------------------------------------------------------------ internals
    def _epoch(self, epochs) -> int:
        e = self._epoch_index.get(epochs)
        if e is None:
            raise MetricNotAvailableError(
                f"epochs must be one of {list(self.epochs)} for the table "
                f"{self.path.name}, got {epochs!r}")
        return e

    def _metric(self, acc: str, stage: str = "final") -> str:
        if ("final", acc) in self._runs and acc in ACCURACIES:
            if (stage, acc) not in self._runs:
                raise MetricNotAvailableError(
                    f"the table {self.path.name} holds no halfway-point metrics; use "
                    f"stop_halfway=False or load an official tfrecord ({OFFICIAL_URL})")
            return acc
        if acc in ACCURACIES:
            raise MetricNotAvailableError(
                f"the loaded table {self.path.name} holds only "
                f"{' and '.join(self.metrics)}, not {acc!r}; use "
                f"acc={self.metrics[0]!r}, or load the official tfrecord "
                f"({OFFICIAL_URL}) for {acc!r}")
        raise MetricNotAvailableError(f"acc must be one of {list(self.metrics)}, got {acc!r}")

    def _cell_of_row(self, row: int) -> Tuple[np.ndarray, List[str]]:
        ops = self._ops[row].split(",")
        n = len(ops)
        flat = self._flats[row]
        matrix = np.frombuffer(flat.encode("ascii"), dtype=np.uint8).reshape(n, n) - ord("0")
        return matrix.astype(int), ops

    def _row(self, key, cell) -> int:
        if key is None:
            if cell not in self._index:
                raise NotInTableError(f"the loaded table {self.path.name} holds no cell "
                                      f"with hash {cell!r}")
            return self._index[cell]
        table_hash = self._hash(key)
        row = self._index.get(table_hash)
        if row is None:
            raise self._not_held(table_hash, key)
        return row

    def _hash(self, key: Tuple[str, int]) -> str:
        found = self._table_keys.get(key)
        if found is None:
            found = self._memo.get(key)
            if found is None:
                found = hash_of_key(key)
                if len(self._memo) >= _MEMO_LIMIT:
                    self._memo.clear()
                self._memo[key] = found
        return found

    def _not_held(self, table_hash: str, key) -> NotInTableError:
        ops = key[0].split(",")
        return NotInTableError(
            f"the cell (hash {table_hash}, ops {ops}) is a valid NAS-Bench-101 cell but "
            f"the loaded table {self.path.name} ({len(self)} cells) does not hold it; "
            f"draw cells with evaluator.sample() or check evaluator.is_held() to stay "
            f"inside the table, or load the official table ({OFFICIAL_URL}) that holds "
            f"all 423,624 cells")

    def _no_runs(self, row: int, epochs: int) -> NotInTableError:
        return NotInTableError(f"the loaded table {self.path.name} holds cell "
                               f"{self._hashes[row]} but no run of it at {epochs} epochs")

    def _key(self, cell) -> Tuple[str, int]:
        if isinstance(cell, tuple) and len(cell) == 2:
            return matrix_key(*cell)
        if hasattr(cell, "layers") and hasattr(cell, "connections"):
            return self._descriptor_key(cell)
        raise InvalidArgumentError(f"expected a NeuralDescriptor, a (matrix, ops) pair or a hash, "
                                   f"got {type(cell).__name__}")

    def _descriptor_key(self, d) -> Tuple[str, int]:
        return descriptor_key(d)
