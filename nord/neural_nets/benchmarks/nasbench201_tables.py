"""NAS-Bench-201 tables: where the data are, what they hold, and the two backends.

Metrics, datasets and table columns
-----------------------------------
Accuracies are percentages (seed means); ``params`` is in millions. Datasets
follow NAS-Bench-201: ``cifar10-valid`` trains on half of the CIFAR-10
training set and validates on the other half (``x-valid``), its test accuracy
is on the CIFAR-10 test set; ``cifar10`` trains on the whole training set and
so has no validation accuracy, only the test set (``ori-test``); for
``cifar100`` and ``ImageNet16-120`` validation and test are the two halves of
the original test set (``x-valid``, ``x-test``).

==================  ======  =============================  ============================
dataset             epochs  ``validation_accuracy``        ``test_accuracy``
==================  ======  =============================  ============================
``cifar10-valid``   200     ``cifar10_valid_valid_200ep``  ``cifar10_valid_test_200ep``
``cifar10-valid``   12      ``cifar10_valid_valid_12ep``   --
``cifar10``         200     -- (no validation split)       ``cifar10_test_200ep``
``cifar10``         12      -- (no validation split)       ``cifar10_test_12ep``
``cifar100``        200     --                             ``cifar100_test_200ep``
``cifar100``        12      ``cifar100_valid_12ep``        ``cifar100_test_12ep``
``ImageNet16-120``  200     --                             ``imagenet16_test_200ep``
``ImageNet16-120``  12      ``imagenet16_valid_12ep``      ``imagenet16_test_12ep``
==================  ======  =============================  ============================

``params`` (``params_M``, the CIFAR-10 network) is there for ``cifar10-valid``
and ``cifar10`` at either epoch count. A combination marked ``--``, or any
other metric (``time_cost``, ``latency``, losses), raises
:class:`~nord.errors.MetricNotAvailableError` listing what the loaded table
holds. Those come from the official NATS-Bench files through the optional
``nats_bench`` package (metrics :data:`NATS_METRICS`; ``time_cost`` is the
thesis's training time plus one validation pass,
``train-all-time + valid-per-time``).

Finding the table
-----------------
``path`` if given (a CSV file, or a folder holding ``nb201_tables.csv`` or
``nasbench201/nb201_tables.csv``); else ``$NORD_DATA/nasbench201/nb201_tables.csv``;
else the user cache ``<cache>/nasbench201/nb201_tables.csv`` where ``<cache>`` is
:func:`~nord.data_curators.download.cache_dir`: ``$NORD_CACHE``,
``$XDG_CACHE_HOME/nord`` or ``~/.cache/nord``.

A file named ``nb201_tables.csv`` must hold all 15,625 cells: one with fewer
rows, or one that ends inside a row, is cut short and raises
:class:`~nord.errors.DamagedDataError` saying how many rows are missing. A
table under any other name is a subset: it loads, with a warning giving its
count.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from nord.data_curators.download import cache_dir
from nord.errors import (DamagedDataError, DataNotFoundError, MetricNotAvailableError,
                         MissingDependencyError, OutOfSearchSpaceError, UnknownDatasetError,
                         UnknownOpError)
from nord.neural_nets.benchmarks.nasbench201_cells import (N_CELLS, arch_code, code_of_digits,
                                                           parse_arch, cell_tables)

__all__ = ["DATASETS", "EPOCHS", "TABLE_COLUMNS", "NATS_METRICS", "TABLE_FILENAME",
           "default_table_paths", "find_table", "CsvTable", "canonical_dataset", "checked_epochs",
           "open_nats_bench"]

logger = logging.getLogger(__name__)

#: NAS-Bench-201's dataset names.
DATASETS: Tuple[str, ...] = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
#: Its two training schedules.
EPOCHS: Tuple[int, ...] = (12, 200)
TABLE_FILENAME = "nb201_tables.csv"
TABLE_SUBDIR = "nasbench201"
OFFICIAL_SOURCE = ("the NAS-Bench-201 / NATS-Bench official release "
                   "(https://github.com/D-X-Y/NATS-Bench: NATS-tss-v1_0-3ffb9-simple, or "
                   "NAS-Bench-201-v1_1-096897.pth)")

#: (metric, dataset, epochs) → column of ``nb201_tables.csv``.
TABLE_COLUMNS: Dict[Tuple[str, str, int], str] = {
    ("validation_accuracy", "cifar10-valid", 200): "cifar10_valid_valid_200ep",
    ("test_accuracy", "cifar10-valid", 200): "cifar10_valid_test_200ep",
    ("test_accuracy", "cifar10", 200): "cifar10_test_200ep",
    ("test_accuracy", "cifar100", 200): "cifar100_test_200ep",
    ("test_accuracy", "ImageNet16-120", 200): "imagenet16_test_200ep",
    ("validation_accuracy", "cifar10-valid", 12): "cifar10_valid_valid_12ep",
    ("test_accuracy", "cifar10", 12): "cifar10_test_12ep",
    ("validation_accuracy", "cifar100", 12): "cifar100_valid_12ep",
    ("test_accuracy", "cifar100", 12): "cifar100_test_12ep",
    ("validation_accuracy", "ImageNet16-120", 12): "imagenet16_valid_12ep",
    ("test_accuracy", "ImageNet16-120", 12): "imagenet16_test_12ep",
    ("params", "cifar10-valid", 200): "params_M",
    ("params", "cifar10-valid", 12): "params_M",
    ("params", "cifar10", 200): "params_M",
    ("params", "cifar10", 12): "params_M",
}
_METRIC_ORDER = ("validation_accuracy", "test_accuracy", "params")

#: Metrics of the ``nats_bench`` backend: name → (source, key).
NATS_METRICS: Dict[str, Tuple[str, str]] = {
    "validation_accuracy": ("more", "valid-accuracy"),
    "test_accuracy": ("more", "test-accuracy"),
    "train_accuracy": ("more", "train-accuracy"),
    "train_loss": ("more", "train-loss"),
    "validation_loss": ("more", "valid-loss"),
    "test_loss": ("more", "test-loss"),
    "time_cost": ("more", "train-all-time+valid-per-time"),
    "latency": ("cost", "latency"),
    "params": ("cost", "params"),
    "flops": ("cost", "flops"),
}


# ------------------------------------------------------------------ data location
def default_table_paths() -> List[Path]:
    """Where the table is looked for when no path is given, in order."""
    paths = []
    if os.environ.get("NORD_DATA"):
        paths.append(Path(os.environ["NORD_DATA"]).expanduser() / TABLE_SUBDIR
                     / TABLE_FILENAME)
    paths.append(cache_dir() / TABLE_SUBDIR / TABLE_FILENAME)
    return paths


def find_table(path: Optional[os.PathLike]) -> Path:
    if path is not None:
        given = Path(path).expanduser()
        candidates = ([given / TABLE_FILENAME, given / TABLE_SUBDIR / TABLE_FILENAME]
                      if given.is_dir() else [given])
    else:
        candidates = default_table_paths()
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise DataNotFoundError(
        f"the NAS-Bench-201 table {TABLE_FILENAME} was not found (tried: {tried}). "
        f"Pass path= the CSV, or set NORD_DATA to the folder holding "
        f"{TABLE_SUBDIR}/{TABLE_FILENAME}, or place it in "
        f"{cache_dir() / TABLE_SUBDIR}. The data come from {OFFICIAL_SOURCE}; with the "
        f"official files use NATSBench_Evaluator.from_nats_bench(path) "
        f"(pip install nats_bench)")


# ------------------------------------------------------------------ backends
class CsvTable:
    """The CSV backend: rows in file order, metric columns as lists of floats."""

    name = "table"

    def __init__(self, path: Path):
        self.source = str(path)
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = _read_header(reader, path)
            indices, archs, row_of_index, row_of_code, columns = _read_rows(reader, header, path)
        if not indices:
            raise DataNotFoundError(f"{path} holds a header but no rows")
        #: How many of the 15,625 cells the table lacks (0 for the whole table).
        self.missing = _check_row_count(path, len(indices))
        self.indices = indices
        self.archs = archs
        self.row_of_index = row_of_index
        self.row_of_code = row_of_code
        self.columns = columns
        self.available = {key: col for key, col in TABLE_COLUMNS.items() if col in columns}

    def fetcher(self, metrics: Tuple[str, ...], dataset: str, epochs: int
                ) -> Callable[[int], List[float]]:
        cols = []
        for metric in metrics:
            column = self.available.get((metric, dataset, epochs))
            if column is None:
                raise MetricNotAvailableError(self._missing(metric, dataset, epochs))
            cols.append(self.columns[column])
        if len(cols) == 1:
            only = cols[0]
            return lambda row: [only[row]]
        return lambda row: [col[row] for col in cols]

    def holds(self) -> str:
        parts = []
        for metric in _METRIC_ORDER:
            combos = [(d, e) for (m, d, e) in self.available if m == metric]
            if not combos:
                continue
            by_ds = []
            for ds in DATASETS:
                eps = sorted(e for d, e in combos if d == ds)
                if eps:
                    by_ds.append(f"{ds} @ " + "/".join(str(e) for e in eps))
            parts.append(f"{metric} ({', '.join(by_ds)})")
        return "; ".join(parts)

    def _missing(self, metric: str, dataset: str, epochs: int) -> str:
        why = ""
        if metric not in _METRIC_ORDER:
            why = f"it has no metric {metric!r}"
            if metric in NATS_METRICS:
                why += (" (that one needs the official NATS-Bench files: "
                        "NATSBench_Evaluator.from_nats_bench(path), pip install nats_bench)")
        elif metric == "validation_accuracy" and dataset == "cifar10":
            why = ("'cifar10' trains on the whole training set, so it has no validation "
                   "accuracy; use dataset='cifar10-valid'")
        else:
            why = f"it has no {metric!r} for {dataset!r} at {epochs} epochs"
        return (f"the NAS-Bench-201 table {self.source}: {why}. It holds: {self.holds()}")


def _read_header(reader, path: Path) -> List[str]:
    """The table's header line, checked: index, arch_str, metric columns, no repeats."""
    try:
        header = next(reader)
    except StopIteration:
        raise DataNotFoundError(f"{path} is empty; expected a CSV with a header "
                                f"line (index,arch_str,<metric columns>)") from None
    except (csv.Error, UnicodeDecodeError) as error:
        raise DataNotFoundError(f"{path}, line 1: not a CSV header ({error})") from None
    header = [h.strip() for h in header]
    for required in ("index", "arch_str"):
        if required not in header:
            raise DataNotFoundError(
                f"{path}, line 1: the header lacks the column {required!r} "
                f"(it has {header}); the table needs index, arch_str and metric "
                f"columns such as {sorted(set(TABLE_COLUMNS.values()))}")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise DataNotFoundError(f"{path}, line 1: column(s) {dup} appear twice")
    known = set(TABLE_COLUMNS.values())
    if not any(h in known for h in header):
        raise DataNotFoundError(
            f"{path}, line 1: no metric column; expected some of {sorted(known)}, "
            f"got {header}")
    return header


def _read_rows(reader, header: List[str], path: Path):
    """``(indices, archs, row_of_index, row_of_code, columns)`` of the table's rows."""
    strings, code_of = cell_tables()
    known = set(TABLE_COLUMNS.values())
    at = {h: k for k, h in enumerate(header)}
    i_index, i_arch = at["index"], at["arch_str"]
    width = len(header)
    columns: Dict[str, List[float]] = {h: [] for h in header if h in known}
    appenders = [(c, at[c], values.append) for c, values in columns.items()]
    indices: List[int] = []
    archs: List[str] = []
    row_of_index: Dict[int, int] = {}
    row_of_code = [-1] * N_CELLS
    line_of_row: List[int] = []
    try:
        for fields in reader:
            line = reader.line_num
            if not fields:
                continue
            if len(fields) != width:
                if next(reader, None) is None and _ends_mid_line(path):  # cut there
                    raise DamagedDataError(_cut_message(path, line, len(fields), width,
                                                        len(indices)))
                raise DataNotFoundError(
                    f"{path}, line {line}: {len(fields)} fields, the header has {width}")
            index = _row_index(fields[i_index], path, line)
            if index in row_of_index:
                raise DataNotFoundError(
                    f"{path}, line {line}: duplicate index {index} (already on "
                    f"line {line_of_row[row_of_index[index]]})")
            arch = fields[i_arch].strip()
            code = code_of.get(arch)
            if code is None:
                code = _row_arch_code(arch, path, line)
                arch = strings[code]
            if row_of_code[code] >= 0:
                raise DataNotFoundError(
                    f"{path}, line {line}: duplicate arch_str {arch!r} (already "
                    f"on line {line_of_row[row_of_code[code]]})")
            for column, k, append in appenders:
                cell = fields[k]
                try:
                    value = float(cell)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    raise DataNotFoundError(f"{path}, line {line}: column {column!r} holds "
                                            f"{cell!r}, not a finite number")
                append(value)
            row = len(indices)
            row_of_index[index] = row
            row_of_code[code] = row
            indices.append(index)
            archs.append(arch)
            line_of_row.append(line)
    except csv.Error as error:
        raise DataNotFoundError(f"{path}, line {reader.line_num}: {error}") from None
    except UnicodeDecodeError as error:
        raise DataNotFoundError(f"{path}: not UTF-8 text ({error})") from None
    return indices, archs, row_of_index, row_of_code, columns


def _ends_mid_line(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) not in (b"\n", b"\r")


def _cut_message(path: Path, line: int, fields: int, width: int, rows: int) -> str:
    known = (f" of the {N_CELLS:,} cells ({N_CELLS - rows:,} missing)"
             if path.name == TABLE_FILENAME else "")
    return (f"{path}, line {line}: the file ends inside a row ({fields} of {width} fields), "
            f"so it is cut short after {rows:,} complete row{'s' * (rows != 1)}{known}; "
            f"re-download it from "
            f"{OFFICIAL_SOURCE}")


def _check_row_count(path: Path, rows: int) -> int:
    """Cells missing from the table; raises if the official file (by name) lacks any."""
    missing = N_CELLS - rows
    if missing and path.name == TABLE_FILENAME:
        raise DamagedDataError(
            f"{path} holds {rows:,} row{'s' * (rows != 1)} but the NAS-Bench-201 table has "
            f"{N_CELLS:,} cells "
            f"({missing:,} missing): the file is cut short; re-download it from "
            f"{OFFICIAL_SOURCE}, or give a deliberate subset another file name")
    if missing:
        logger.warning("%s holds %d of the %d NAS-Bench-201 cells (%d missing); looking up "
                       "any other cell raises NotInTableError", path, rows, N_CELLS, missing)
    return missing


def _row_index(text: str, path: Path, line: int) -> int:
    """The official index in a row's ``index`` field (a non-negative integer)."""
    text = text.strip()
    try:
        index = int(text)
    except ValueError:
        index = -1
    if index < 0:
        raise DataNotFoundError(
            f"{path}, line {line}: index {text!r} is not a non-negative integer")
    return index


def _row_arch_code(arch: str, path: Path, line: int) -> int:
    """Cell code of a row's ``arch_str`` that is not in the official form."""
    try:
        return code_of_digits(parse_arch(arch))
    except (OutOfSearchSpaceError, UnknownOpError, TypeError) as error:
        raise DataNotFoundError(f"{path}, line {line}: bad arch_str: {error}") from None


class _NatsBench:
    """The ``nats_bench`` backend: official NATS-Bench files through its API."""

    name = "nats_bench"

    def __init__(self, api, source: str):
        self.api = api
        self.source = source
        archs = getattr(api, "meta_archs", None)
        if archs is None:
            archs = [api.arch(i) for i in range(len(api))]
        strings, code_of = cell_tables()
        self.archs = list(archs)
        self.indices = list(range(len(self.archs)))
        self.row_of_index = {i: i for i in self.indices}
        self.row_of_code = [-1] * N_CELLS
        for row, arch in enumerate(self.archs):
            self.row_of_code[arch_code(arch)] = row
        self.archs = [strings[arch_code(a)] for a in self.archs]

    def fetcher(self, metrics: Tuple[str, ...], dataset: str, epochs: int
                ) -> Callable[[int], List[float]]:
        for metric in metrics:
            if metric not in NATS_METRICS:
                raise MetricNotAvailableError(
                    f"NATS-Bench ({self.source}) has no metric {metric!r}; available: "
                    f"{list(NATS_METRICS)}")
        hp = str(epochs)
        api = self.api

        def fetch(row: int) -> List[float]:
            more = cost = None
            values = []
            for metric in metrics:
                kind, key = NATS_METRICS[metric]
                if kind == "more":
                    if more is None:
                        more = api.get_more_info(row, dataset, hp=hp, is_random=False)
                    info = more
                else:
                    if cost is None:
                        cost = api.get_cost_info(row, dataset, hp=hp)
                    info = cost
                if metric == "time_cost":
                    if "train-all-time" not in info:
                        raise self._missing(metric, dataset, epochs, info)
                    value = info["train-all-time"] + (info.get("valid-per-time") or 0.0)
                elif key in info and info[key] is not None:
                    value = info[key]
                else:
                    raise self._missing(metric, dataset, epochs, info)
                values.append(float(value))
            return values

        return fetch

    def _missing(self, metric, dataset, epochs, info) -> MetricNotAvailableError:
        have = [m for m, (kind, key) in NATS_METRICS.items()
                if kind == "cost" or key.split("+")[0] in info]
        extra = (" ('cifar10' trains on the whole training set, so it has no validation "
                 "split; use dataset='cifar10-valid')"
                 if dataset == "cifar10" and "valid" in metric else "")
        return MetricNotAvailableError(
            f"NATS-Bench ({self.source}) has no {metric!r} for {dataset!r} at {epochs} "
            f"epochs{extra}; it holds {have} there")

    def holds(self) -> str:
        return f"{list(NATS_METRICS)} for datasets {list(DATASETS)} at epochs {list(EPOCHS)}"


def canonical_dataset(dataset: str) -> str:
    if isinstance(dataset, str):
        wanted = dataset.strip().lower().replace("_", "-")
        for name in DATASETS:
            if name.lower() == wanted:
                return name
        if wanted in ("imagenet16", "imagenet"):
            return "ImageNet16-120"
    raise UnknownDatasetError(f"unknown NAS-Bench-201 dataset {dataset!r}; use one of "
                              f"{list(DATASETS)}")


def checked_epochs(epochs) -> int:
    try:
        value = int(epochs)
    except (TypeError, ValueError):
        value = None
    if value not in EPOCHS or isinstance(epochs, bool):
        raise MetricNotAvailableError(
            f"NAS-Bench-201 trained each cell for 12 or 200 epochs; epochs={epochs!r} is "
            f"neither")
    return value


def open_nats_bench(path, fast_mode: Optional[bool], verbose: bool) -> _NatsBench:
    try:
        from nats_bench import create
    except ImportError as error:
        raise MissingDependencyError(
            f"reading the official NATS-Bench files needs the 'nats_bench' package "
            f"({error}); install it with: pip install nats_bench. Or use the CSV table "
            f"({TABLE_FILENAME}) with NATSBench_Evaluator(path=...)") from error
    where = None if path is None else str(Path(path).expanduser())
    if fast_mode is None:
        fast_mode = where is None or Path(where).is_dir()
    if where is not None and not Path(where).exists():
        raise DataNotFoundError(
            f"the NATS-Bench topology files were not found at {where}; download "
            f"NATS-tss-v1_0-3ffb9-simple from {OFFICIAL_SOURCE}")
    try:
        api = create(where, "tss", fast_mode=fast_mode, verbose=verbose)
    except (OSError, ValueError, KeyError) as error:
        raise DataNotFoundError(
            f"nats_bench could not open {where or '$TORCH_HOME'} ({error}); download "
            f"NATS-tss-v1_0-3ffb9-simple from {OFFICIAL_SOURCE}") from error
    return _NatsBench(api, where or "$TORCH_HOME")
