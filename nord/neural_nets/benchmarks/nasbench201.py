"""NAS-Bench-201 (NATS-Bench topology space) lookups: :class:`NATSBench_Evaluator`.

NAS-Bench-201 trained every cell of a small, fixed search space and published
the results; a NAS method can then "evaluate" an architecture by looking it up
instead of training it (thesis §3.2.1, listing 3.3)::

    ne = NATSBench_Evaluator()                    # reads nb201_tables.csv
    d = NeuralDescriptor()
    d.add_layer("IN", None, "IN")
    d.add_layer_sequential("nor_conv_3x3", None, "1")
    ...
    d.add_layer_sequential("OUT", None, "OUT")
    val, test = ne.descriptor_evaluate(d, metrics=['validation_accuracy', 'test_accuracy'])

The parts live in sibling modules, and every public name is re-exported here:

* :mod:`~nord.neural_nets.benchmarks.nasbench201_cells`: the cell, its official
  string (``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, 15,625 cells), the ops
  :data:`OPS` and the benchmark's :func:`isomorphism_key`;
* :mod:`~nord.neural_nets.benchmarks.nasbench201_descriptors`: how a
  descriptor (ops as nodes between ``'IN'`` and ``'OUT'``) becomes a cell and
  back (:func:`descriptor_to_arch`, :func:`arch_to_descriptor`), and why a
  descriptor can be out of the search space;
* :mod:`~nord.neural_nets.benchmarks.nasbench201_tables`: datasets, epochs,
  metrics and table columns (:data:`TABLE_COLUMNS`, :data:`NATS_METRICS`),
  where ``nb201_tables.csv`` is looked for (:func:`default_table_paths`), and
  the CSV and ``nats_bench`` backends.
"""

from __future__ import annotations

import math
import operator
import os
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from nord.errors import (
    InvalidArgumentError,
    MetricNotAvailableError,
    NordError,
    NotInTableError,
    SettingsError,
)
from nord.neural_nets.benchmarks.nasbench201_cells import (OPS, arch_code, cell_tables,
                                                           arch_to_ops, isomorphism_key,
                                                           ops_to_arch)
from nord.neural_nets.benchmarks.nasbench201_descriptors import (descriptor_code,
                                                                 arch_to_descriptor,
                                                                 descriptor_to_arch)
from nord.neural_nets.benchmarks.nasbench201_tables import (DATASETS, EPOCHS, NATS_METRICS,
                                                            TABLE_COLUMNS, TABLE_FILENAME,
                                                            canonical_dataset, checked_epochs,
                                                            find_table, open_nats_bench,
                                                            CsvTable, default_table_paths)

__all__ = [
    "NATSBench_Evaluator",
    "MetricNotAvailableError",
    "OPS",
    "DATASETS",
    "EPOCHS",
    "TABLE_COLUMNS",
    "NATS_METRICS",
    "TABLE_FILENAME",
    "arch_to_ops",
    "ops_to_arch",
    "arch_to_descriptor",
    "descriptor_to_arch",
    "isomorphism_key",
    "default_table_paths",
]

MetricsArg = Union[str, Sequence[str]]

#: what a lookup without ``metrics`` answers: listing 3.7's (fitness, time) pair
DEFAULT_METRICS = ("validation_accuracy", "time_cost")


class NATSBench_Evaluator:
    """NAS-Bench-201 / NATS-Bench (topology) lookups by descriptor, string or index.

    ``NATSBench_Evaluator(path=None, dataset='cifar10-valid', epochs=200)`` reads
    ``nb201_tables.csv`` (see :mod:`~nord.neural_nets.benchmarks.nasbench201_tables`
    for where it is looked for and what each metric means); ``backend='nats_bench'``
    (or :meth:`from_nats_bench`) reads the official NATS-Bench files instead.
    ``dataset`` and ``epochs`` are the defaults of every lookup.

    Each successful lookup (:meth:`descriptor_evaluate`, :meth:`evaluate_string`,
    :meth:`query`) adds one to :attr:`queries`, however many metrics it
    returns; :meth:`best`, :meth:`sample` and iteration are free.
    """

    def __init__(self, path: Optional[os.PathLike] = None, dataset: str = "cifar10-valid",
                 epochs: int = 200, backend: str = "table", *, fast_mode: Optional[bool] = None,
                 verbose: bool = False, seed: int = 0):
        if backend == "table":
            self._backend = CsvTable(find_table(path))
        elif backend == "nats_bench":
            self._backend = open_nats_bench(path, fast_mode, verbose)
        else:
            raise SettingsError(f"backend must be 'table' or 'nats_bench', got {backend!r}")
        self.dataset = canonical_dataset(dataset)
        self.epochs = checked_epochs(epochs)
        self.queries = 0
        self._sample_rng = None  # made on first use of sample() without a generator
        self._seed = int(seed)
        self._fetchers: Dict[Any, Tuple[Callable[[int], List[float]], bool]] = {}
        self._iso: Optional[Dict[str, List[int]]] = None

    @classmethod
    def from_nats_bench(cls, file_path_or_dir: Optional[os.PathLike] = None,
                        dataset: str = "cifar10-valid", epochs: int = 200, *,
                        fast_mode: Optional[bool] = None,
                        verbose: bool = False) -> "NATSBench_Evaluator":
        """An evaluator over the official NATS-Bench topology files (``nats_bench``).

        ``file_path_or_dir`` is the ``NATS-tss-v1_0-3ffb9-simple`` folder (fast
        mode) or the ``.pickle.pbz2`` file; ``None`` lets ``nats_bench`` look in
        ``$TORCH_HOME``. Adds the metrics ``time_cost``, ``latency``, ``flops``,
        losses and training accuracy (:data:`NATS_METRICS`).
        """
        return cls(file_path_or_dir, dataset=dataset, epochs=epochs, backend="nats_bench",
                   fast_mode=fast_mode, verbose=verbose)

    # ---------------------------------------------------------------- thesis API
    @staticmethod
    def get_available_ops() -> List[str]:
        """The edge ops in the official order (``'IN'``/``'OUT'`` are not ops)."""
        return list(OPS)

    def descriptor_evaluate(self, descriptor, metrics: Optional[MetricsArg] = None,
                            dataset: Optional[str] = None, epochs: Optional[int] = None):
        """The benchmark's ``metrics`` for the cell ``descriptor`` describes.

        ``metrics`` is a list of names (the values come back as a list in that
        order, as in listing 3.3) or one name (the value alone). By default the
        answer is ``[validation_accuracy, time_cost]``, the pair listing 3.7
        unpacks as NAS-Bench-101's ``(accuracy, time)``; the time is NaN where
        the benchmark holds none (the shipped table). ``dataset``
        and ``epochs`` default to the evaluator's. Raises
        :class:`~nord.errors.OutOfSearchSpaceError` /
        :class:`~nord.errors.UnknownOpError` for a descriptor that is not a
        NAS-Bench-201 cell and :class:`MetricNotAvailableError` for a metric the
        benchmark does not hold.
        """
        fetch, single = self._fetcher(metrics, dataset, epochs)
        if isinstance(descriptor, str):
            raise InvalidArgumentError("descriptor_evaluate takes a NeuralDescriptor; look cell "
                                       "strings up with evaluate_string()")
        row = self._backend.row_of_code[descriptor_code(descriptor)]
        if row < 0:
            raise self._not_in_table(descriptor_to_arch(descriptor))
        values = fetch(row)
        self.queries += 1
        return values[0] if single else values

    def evaluate_string(self, arch: str, metrics: Optional[MetricsArg] = None,
                        dataset: Optional[str] = None, epochs: Optional[int] = None):
        """Like :meth:`descriptor_evaluate`, for a cell string."""
        fetch, single = self._fetcher(metrics, dataset, epochs)
        row = self._backend.row_of_code[arch_code(arch)]
        if row < 0:
            raise self._not_in_table(arch)
        values = fetch(row)
        self.queries += 1
        return values[0] if single else values

    def query(self, index_or_arch: Union[int, str], metrics: Optional[MetricsArg] = None,
              dataset: Optional[str] = None, epochs: Optional[int] = None):
        """Like :meth:`descriptor_evaluate`, for an official index or a cell string."""
        if isinstance(index_or_arch, str):
            return self.evaluate_string(index_or_arch, metrics, dataset, epochs)
        fetch, single = self._fetcher(metrics, dataset, epochs)
        row = self._row_of_index(index_or_arch)
        values = fetch(row)
        self.queries += 1
        return values[0] if single else values

    def reset_counter(self) -> int:
        """Set :attr:`queries` to zero; return the count it had."""
        count, self.queries = self.queries, 0
        return count

    # ---------------------------------------------------------------- conversions
    def index_of(self, cell) -> int:
        """The official index of a descriptor or cell string."""
        code = arch_code(cell) if isinstance(cell, str) else descriptor_code(cell)
        row = self._backend.row_of_code[code]
        if row < 0:
            raise self._not_in_table(cell_tables()[0][code])
        return self._backend.indices[row]

    def arch_str(self, index: int) -> str:
        """The cell string of an official index."""
        return self._backend.archs[self._row_of_index(index)]

    def to_descriptor(self, index_or_arch: Union[int, str], none_nodes: bool = True):
        """The descriptor of an index or cell string (:func:`arch_to_descriptor`)."""
        arch = (index_or_arch if isinstance(index_or_arch, str)
                else self.arch_str(index_or_arch))
        return arch_to_descriptor(arch, none_nodes=none_nodes)

    @staticmethod
    def descriptor_to_arch(descriptor) -> str:
        """The cell string of a descriptor (:func:`descriptor_to_arch`)."""
        return descriptor_to_arch(descriptor)

    def isomorphism_class(self, cell) -> List[int]:
        """Sorted official indices of the cells isomorphic to ``cell``.

        ``cell`` is an index, a string or a descriptor. The benchmark trained
        each of them separately, so their numbers differ (seed noise).
        """
        if self._iso is None:
            classes: Dict[str, List[int]] = {}
            for index, arch in zip(self._backend.indices, self._backend.archs):
                classes.setdefault(isomorphism_key(arch), []).append(index)
            self._iso = {k: sorted(v) for k, v in classes.items()}
        if isinstance(cell, str):
            arch = cell
        elif isinstance(cell, int):
            arch = self.arch_str(cell)
        else:
            arch = descriptor_to_arch(cell)
        return list(self._iso.get(isomorphism_key(arch), []))

    # ---------------------------------------------------------------- whole table
    def __len__(self) -> int:
        return len(self._backend.indices)

    def __iter__(self) -> Iterator[Tuple[int, str]]:
        """``(index, arch_str)`` for every cell, in table order."""
        return iter(zip(self._backend.indices, self._backend.archs))

    def __contains__(self, cell) -> bool:
        try:
            self.index_of(cell)
        except (NordError, TypeError, ValueError):
            return False
        return True

    def best(self, metric: str = "validation_accuracy", dataset: Optional[str] = None,
             epochs: Optional[int] = None, maximize: bool = True) -> Tuple[int, str, float]:
        """``(index, arch_str, value)`` of the best cell by ``metric`` (free of charge).

        Ties go to the earlier row. With the ``nats_bench`` backend this reads
        every cell, which takes a while.
        """
        fetch, _ = self._fetcher(metric, dataset, epochs)
        if isinstance(self._backend, CsvTable):
            column = self._backend.columns[
                self._backend.available[(metric, canonical_dataset(dataset or self.dataset),
                                         checked_epochs(epochs or self.epochs))]]
            values = column
        else:
            values = [fetch(row)[0] for row in range(len(self))]
        pick = max if maximize else min
        row = pick(range(len(values)), key=values.__getitem__)
        return self._backend.indices[row], self._backend.archs[row], values[row]

    def sample(self, rng=None, as_descriptor: bool = False):
        """A uniformly random cell of the table: its string, or its descriptor.

        ``rng`` is a ``numpy.random.Generator`` (or a seed for one); ``None``
        uses the evaluator's own generator, seeded by its ``seed`` (default 0):
        successive calls differ, and the same seed repeats them. Free of charge.
        """
        import numpy as np

        if rng is None:
            if self._sample_rng is None:
                self._sample_rng = np.random.default_rng(self._seed)
            rng = self._sample_rng
        elif not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        arch = self._backend.archs[int(rng.integers(len(self)))]
        return arch_to_descriptor(arch) if as_descriptor else arch

    def available_metrics(self) -> str:
        """What the loaded benchmark holds, as text (also in error messages)."""
        return self._backend.holds()

    @property
    def source(self) -> str:
        """The table file or NATS-Bench location the evaluator reads."""
        return self._backend.source

    @property
    def backend(self) -> str:
        """``'table'`` or ``'nats_bench'``."""
        return self._backend.name

    def __repr__(self) -> str:
        return (f"NATSBench_Evaluator({len(self)} cells from {self.source!r}, "
                f"dataset={self.dataset!r}, epochs={self.epochs}, queries={self.queries})")

    # ---------------------------------------------------------------- helpers
    def _fetcher(self, metrics: Optional[MetricsArg], dataset: Optional[str],
                 epochs: Optional[int]) -> Tuple[Callable[[int], List[float]], bool]:
        if metrics is None:
            return self._default_fetcher(dataset, epochs)
        single = isinstance(metrics, str)
        try:
            key = (metrics if single else tuple(metrics), dataset, epochs)
            return self._fetchers[key]
        except KeyError:
            pass
        except TypeError:
            raise InvalidArgumentError(f"metrics must be a metric name or a list of them, got "
                                       f"{metrics!r}") from None
        names = (metrics,) if single else key[0]
        if not names:
            raise SettingsError("metrics is empty; ask for at least one metric, e.g. "
                                "['validation_accuracy']")
        for name in names:
            if not isinstance(name, str):
                raise InvalidArgumentError(f"metric names are strings, got {name!r}")
        resolved = (self._backend.fetcher(names, canonical_dataset(dataset or self.dataset),
                                          checked_epochs(epochs or self.epochs)), single)
        self._fetchers[key] = resolved
        return resolved

    def _default_fetcher(self, dataset: Optional[str], epochs: Optional[int]):
        """(validation accuracy, training time), the time NaN where none is held."""
        key = (None, dataset, epochs)
        if key not in self._fetchers:
            try:
                fetch, _ = self._fetcher(DEFAULT_METRICS, dataset, epochs)
            except MetricNotAvailableError:
                accuracy, _ = self._fetcher(DEFAULT_METRICS[:1], dataset, epochs)

                def fetch(row: int, _accuracy=accuracy) -> List[float]:
                    return [*_accuracy(row), math.nan]
            self._fetchers[key] = (fetch, False)
        return self._fetchers[key]

    def _row_of_index(self, index) -> int:
        try:
            if isinstance(index, bool):
                raise TypeError
            index = operator.index(index)
        except TypeError:
            raise InvalidArgumentError(f"an index is an int, got {index!r}") from None
        row = self._backend.row_of_index.get(index)
        if row is None:
            indices = self._backend.indices
            raise NotInTableError(f"index {index} is not in {self.source} (it holds "
                                  f"{len(indices)} cells, indices {min(indices)}.."
                                  f"{max(indices)})")
        return row

    def _not_in_table(self, arch: str) -> NotInTableError:
        return NotInTableError(f"the cell {arch} is a valid NAS-Bench-201 cell but "
                               f"{self.source} does not hold it ({len(self)} cells)")
