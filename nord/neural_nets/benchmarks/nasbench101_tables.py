"""NAS-Bench-101 tables: finding the file, and loading the 30k csv or an official tfrecord.

Two formats are read:

* ``nb101_30k_subset.csv.gz`` (the default): 30,001 cells (about 7% of the
  423,624), one training run each, validation accuracy at 4/12/36/108 epochs,
  parameters and the 108-epoch training time; no test accuracy.
* the official release, ``nasbench_only108.tfrecord`` or ``nasbench_full.tfrecord``
  (https://storage.googleapis.com/nasbench/nasbench_only108.tfrecord), read
  without TensorFlow (:mod:`nord.neural_nets.benchmarks.tfrecord`,
  :mod:`nord.neural_nets.benchmarks.nasbench101_records`): every cell, three
  repeats, train/validation/test accuracy and training time, at the end and
  halfway through training. Loading the pure-Python way takes a while for the
  full files (tens of seconds per million records).

Without ``path``, the table is looked for as ``nb101_30k_subset.csv.gz``, then
``nasbench_only108.tfrecord``, then ``nasbench_full.tfrecord``, first in
``$NORD_DATA/nasbench101/``, then in the user cache's ``nasbench101/`` folder
(:func:`~nord.data_curators.download.cache_dir`: ``$NORD_CACHE``, else
``$XDG_CACHE_HOME/nord``, else ``~/.cache/nord``).

Both loaders return a :class:`LoadedTable`. The 30k csv holds the training time
only at 108 epochs; below that :func:`load_csv` scales it by ``epochs / 108``
(``low_fidelity_time='scaled'``) or leaves NaN (``'nan'``).

Tables cut short raise :class:`~nord.errors.DamagedDataError` saying how many
rows they hold and, for the official files (known by name), how many are
missing: a gzip stream or a csv that ends inside a row, a tfrecord that ends
inside a record, or ``nb101_30k_subset.csv.gz`` with fewer than its 30,001
rows. A csv under another name is a subset: it loads, with a warning giving
its count (so does a tfrecord with fewer than all 423,624 cells, since one
cut between two records cannot be told from a subset).
"""

from __future__ import annotations

import array
import base64
import binascii
import csv
import gzip
import json
import logging
import math
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from nord.data_curators.download import cache_dir
from nord.errors import DamagedDataError, DataNotFoundError, TableFormatError
from nord.neural_nets.benchmarks.nasbench101_cells import INPUT, OUTPUT, OP_LABEL, lower_mask
from nord.neural_nets.benchmarks.nasbench101_records import decode_model_metrics
from nord.neural_nets.benchmarks.tfrecord import (ProtobufError, TFRecordError,
                                                  TFRecordTruncatedError, iter_tfrecords,
                                                  masked_crc32c)

__all__ = ["CSV_NAME", "TFRECORD_NAMES", "OFFICIAL_URL", "FULL_URL", "CSV_EPOCHS", "ACCURACIES",
           "LoadedTable", "find_nasbench101", "load_csv", "load_tfrecord", "is_tfrecord",
           "PathLike"]

CSV_NAME = "nb101_30k_subset.csv.gz"
TFRECORD_NAMES = ("nasbench_only108.tfrecord", "nasbench_full.tfrecord")
OFFICIAL_URL = "https://storage.googleapis.com/nasbench/nasbench_only108.tfrecord"
FULL_URL = "https://storage.googleapis.com/nasbench/nasbench_full.tfrecord"
CSV_EPOCHS = (4, 12, 36, 108)
ACCURACIES = ("train_accuracy", "validation_accuracy", "test_accuracy")

PathLike = Union[str, os.PathLike]

logger = logging.getLogger(__name__)

#: Cells in the whole NAS-Bench-101 space, and rows of the official 30k subset.
SPACE_CELLS = 423_624
CSV_ROWS = 30_001
#: Records of the official tfrecords: every cell, 3 runs, at 1 or 4 budgets.
TFRECORD_RECORDS = {"nasbench_only108.tfrecord": SPACE_CELLS * 3,
                    "nasbench_full.tfrecord": SPACE_CELLS * 3 * 4}

_CSV_FLOATS = ("val_acc_4ep", "val_acc_12ep", "val_acc_36ep", "val_acc_108ep",
               "trainable_parameters", "final_training_time_108ep")
_CSV_REQUIRED = ("hash", "num_vertices", "num_edges", "matrix_flat_row_major", "ops") \
    + _CSV_FLOATS


@dataclass
class LoadedTable:
    """A table in memory: its cells in file order, and their runs' metrics."""

    hashes: List[str]              # NAS-Bench-101 hash of each cell
    index: Dict[str, int]          # hash -> row
    flats: List[str]               # row-major 0/1 adjacency strings
    ops: List[str]                 # ops joined by ','
    masks: List[int]               # int(flat, 2)
    params: np.ndarray             # trainable parameters (int64)
    epochs: Tuple[int, ...]        # the training budgets held
    num_repeats: int               # most runs of one cell at one budget
    counts: np.ndarray             # runs per (cell, budget)
    runs: Dict[Tuple[str, str], np.ndarray]  # (stage, metric) -> cells x budgets x repeats
    time_estimated: Dict[int, bool]          # budget -> training time is an estimate

    def run_means(self) -> Dict[Tuple[str, str], np.ndarray]:
        """The mean over the runs of each grid, ``cells x budgets`` (NaN where none)."""
        with np.errstate(invalid="ignore"), _quiet_nan_warnings():
            return {key: np.nanmean(runs, axis=2) for key, runs in self.runs.items()}


class _quiet_nan_warnings:
    """Silence numpy's 'Mean of empty slice' for cells without runs at a budget."""

    def __enter__(self):
        import warnings
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


# ------------------------------------------------------------------ locating data
def _candidates() -> List[Path]:
    folders = []
    if os.environ.get("NORD_DATA"):
        folders.append(Path(os.environ["NORD_DATA"]).expanduser() / "nasbench101")
    folders.append(cache_dir() / "nasbench101")
    return [folder / name for folder in folders for name in (CSV_NAME,) + TFRECORD_NAMES]


def _how_to_get() -> str:
    return (f"Get the official NAS-Bench-101 table from {OFFICIAL_URL} (or "
            f"{FULL_URL} for 4/12/36/108 epochs) and pass its path as "
            f"NASBench_101Evaluator(path=...), or put it (or {CSV_NAME}) in "
            f"$NORD_DATA/nasbench101/ and set NORD_DATA")


def find_nasbench101(path: Optional[PathLike] = None) -> Path:
    """The table file to load (see the module docs for the search order)."""
    if path is not None:
        path = Path(path).expanduser()
        tried = [path]
        if path.is_dir():
            tried = [path / name for name in (CSV_NAME,) + TFRECORD_NAMES]
        for candidate in tried:
            if candidate.is_file():
                return candidate
    else:
        tried = _candidates()
        for candidate in tried:
            if candidate.is_file():
                return candidate
    looked = ", ".join(str(p) for p in tried)
    note = "" if path is not None or os.environ.get("NORD_DATA") else " (NORD_DATA is not set)"
    raise DataNotFoundError(f"NAS-Bench-101 table not found (looked for: {looked}){note}. "
                            f"{_how_to_get()}")


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def is_tfrecord(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith((".tfrecord", ".tfrecords")):
        return True
    if name.endswith((".csv", ".csv.gz", ".gz")):
        return False
    with open(path, "rb") as handle:
        head = handle.read(12)
    if len(head) < 12 or head[:2] == b"\x1f\x8b":
        return False
    return masked_crc32c(head[:8]) == struct.unpack("<I", head[8:])[0]


def _check_ops_text(text: str, n: int) -> None:
    """Check a table row's ops (``input,...,output``, ``n`` of them); ValueError if not."""
    ops = text.split(",")
    if len(ops) != n:
        raise TableFormatError(f"{len(ops)} ops for {n} vertices")
    if n < 2 or ops[0] != INPUT or ops[-1] != OUTPUT:
        raise TableFormatError(f"ops must start with 'input' and end with 'output': {text!r}")
    unknown = [op for op in ops[1:-1] if op not in OP_LABEL]
    if unknown:
        raise TableFormatError(f"unknown op(s) {unknown}")


# ------------------------------------------------------------------ the 30k csv
def load_csv(path: Path, low_fidelity_time: str = "scaled") -> LoadedTable:
    """The 30k-subset csv (``.csv`` or ``.csv.gz``): one run per cell and budget."""
    hashes, index, flats, opss, masks, lines, columns = _read_csv(path)
    where = f"{path}"
    if not hashes:
        raise DataNotFoundError(f"{where} holds no rows; {_how_to_get()}")
    count = len(hashes)
    _check_csv_count(path, count)
    val = np.array([columns[f"val_acc_{e}ep"] for e in CSV_EPOCHS]).T  # (n, 4)
    params = np.array(columns["trainable_parameters"])
    time108 = np.array(columns["final_training_time_108ep"])
    _check_csv_values(where, lines, val, params, time108)
    times = np.empty((count, len(CSV_EPOCHS)))
    for e, epochs in enumerate(CSV_EPOCHS):
        times[:, e] = (time108 if epochs == 108 else
                       time108 * (epochs / 108) if low_fidelity_time == "scaled"
                       else np.nan)
    return LoadedTable(
        hashes=hashes, index=index, flats=flats, ops=opss, masks=masks,
        params=params.astype(np.int64), epochs=CSV_EPOCHS, num_repeats=1,
        counts=np.ones((count, len(CSV_EPOCHS)), dtype=np.int8),
        runs={("final", "validation_accuracy"): val[:, :, None],
              ("final", "training_time"): times[:, :, None]},
        time_estimated={e: e != 108 and low_fidelity_time == "scaled" for e in CSV_EPOCHS})


def _rows_of(rows: int) -> str:
    return f"{rows:,} row{'s' * (rows != 1)}"


def _known_csv(path: Path, rows: int) -> str:
    """' of the 30,001 ... (N missing)' for the official file (by name), else ''."""
    if path.name != CSV_NAME:
        return ""
    return f" of the {CSV_ROWS:,} in the official {CSV_NAME} ({CSV_ROWS - rows:,} missing)"


def _check_csv_count(path: Path, count: int) -> None:
    """The official file (by name) must hold all its rows; a subset is logged."""
    if path.name == CSV_NAME and count < CSV_ROWS:
        raise DamagedDataError(
            f"{path} holds {_rows_of(count)} but the official {CSV_NAME} holds "
            f"{CSV_ROWS:,} ({CSV_ROWS - count:,} missing): the file is cut short; "
            f"re-download it, or give a deliberate subset another file name")
    if path.name != CSV_NAME:
        logger.warning("%s holds %d of the %d NAS-Bench-101 cells; looking up any other "
                       "cell raises NotInTableError", path, count, SPACE_CELLS)


class _LastLine:
    """Lines of a text file, remembering the last one handed out."""

    def __init__(self, handle):
        self.handle, self.last = handle, ""

    def __iter__(self):
        for line in self.handle:
            self.last = line
            yield line


def _read_csv(path: Path):
    """The csv's rows, checked: ``(hashes, index, flats, ops, masks, lines, columns)``."""
    opener = gzip.open if path.suffix == ".gz" or _is_gzip(path) else open
    hashes: List[str] = []
    flats: List[str] = []
    opss: List[str] = []
    masks: List[int] = []
    lines = array.array("l")
    columns: Dict[str, List[float]] = {name: [] for name in _CSV_FLOATS}
    valid_ops: Dict[str, int] = {}
    index: Dict[str, int] = {}
    intern = sys.intern
    where = f"{path}"
    try:
        with opener(path, "rt", newline="", encoding="utf-8") as handle:
            lines_read = _LastLine(handle)
            reader = csv.reader(lines_read)
            header, col = _csv_header(reader, where)
            i_hash, i_n, i_e, i_flat, i_ops = (col[c] for c in _CSV_REQUIRED[:5])
            float_cols = [(columns[name], col[name]) for name in _CSV_FLOATS]
            width = len(header)
            for row in reader:
                line = reader.line_num
                try:
                    if len(row) != width:
                        raise TableFormatError(f"{len(row)} fields, the header has {width}")
                    key = row[i_hash]
                    if len(key) != 32:
                        raise TableFormatError(f"hash {key!r} is not 32 hex digits")
                    n = int(row[i_n])
                    flat = row[i_flat]
                    ops = row[i_ops]
                    if valid_ops.get(ops) != n:
                        _check_ops_text(ops, n)
                        valid_ops[ops] = n
                    if len(flat) != n * n or flat.strip("01"):
                        raise TableFormatError(f"matrix {flat!r} is not a 0/1 string of "
                                               f"length {n}x{n}")
                    if flat.count("1") != int(row[i_e]):
                        raise TableFormatError(f"num_edges is {row[i_e]} but the matrix "
                                               f"has {flat.count('1')} edges")
                    mask = int(flat, 2)
                    if mask & lower_mask(n):
                        raise TableFormatError(f"matrix {flat!r} is not strictly upper "
                                               f"triangular")
                    for target, i in float_cols:
                        target.append(float(row[i]))
                except ValueError as error:
                    if next(reader, None) is None and not lines_read.last.endswith(("\n", "\r")):
                        raise DamagedDataError(
                            f"{where}, line {line}: the file ends inside a row ({error}), so "
                            f"it is cut short after {_rows_of(len(hashes))}"
                            f"{_known_csv(path, len(hashes))}; re-download the table") from None
                    raise DataNotFoundError(f"{where}, line {line}: malformed row "
                                            f"({error}); re-download the table") from None
                if key in index:
                    raise DataNotFoundError(
                        f"{where}, line {line}: hash {key} already appeared on line "
                        f"{lines[index[key]]}; re-download the table")
                index[key] = len(hashes)
                hashes.append(key)
                flats.append(flat)
                opss.append(intern(ops))
                masks.append(mask)
                lines.append(line)
    except EOFError:  # a gzip stream that ends early
        raise DamagedDataError(f"{where} is cut short: its gzip stream ends after "
                               f"{_rows_of(len(hashes))}{_known_csv(path, len(hashes))}; "
                               f"re-download the table") from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        if isinstance(error, DataNotFoundError):
            raise
        raise DataNotFoundError(f"{where} could not be read ({error}); it is damaged "
                                f"or not the NAS-Bench-101 csv table. "
                                f"{_how_to_get()}") from None
    return hashes, index, flats, opss, masks, lines, columns


def _csv_header(reader, where: str) -> Tuple[List[str], Dict[str, int]]:
    """The header line and each column's position; every required column is there."""
    try:
        header = next(reader)
    except StopIteration:
        raise DataNotFoundError(f"{where}, line 1: the file is empty; "
                                f"{_how_to_get()}") from None
    col = {name: i for i, name in enumerate(header)}
    missing = [c for c in _CSV_REQUIRED if c not in col]
    if missing:
        raise DataNotFoundError(
            f"{where}, line 1: the header lacks the column(s) {missing} "
            f"(found {header}); is this the NAS-Bench-101 30k table?")
    return header, col


def _check_csv_values(where: str, lines, val: np.ndarray, params: np.ndarray,
                      time108: np.ndarray) -> None:
    """Accuracies are fractions, times and parameter counts are >= 0 (else name the line)."""
    for name, ok in (("a val_acc value is not a fraction in [0, 1]",
                      np.isfinite(val).all(axis=1) & (val >= 0).all(axis=1)
                      & (val <= 1).all(axis=1)),
                     ("final_training_time_108ep is not a time >= 0",
                      np.isfinite(time108) & (time108 >= 0)),
                     ("trainable_parameters is not a count >= 0",
                      np.isfinite(params) & (params >= 0))):
        bad = np.flatnonzero(~ok)
        if bad.size:
            raise DataNotFoundError(f"{where}, line {lines[int(bad[0])]}: malformed row "
                                    f"({name}); re-download the table")


# ------------------------------------------------------------------ official tfrecords
_STAGES = ("final", "halfway")
_RUN_METRICS = ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")


def load_tfrecord(path: Path, verify: bool = True) -> LoadedTable:
    """An official tfrecord: every run of every cell, at the end and halfway through."""
    hashes, index, flats, opss, masks, params, rec_row, rec_epochs, values = \
        _read_tfrecord(path, verify)
    if not hashes:
        raise DataNotFoundError(f"{path} holds no records; {_how_to_get()}")
    if len(hashes) < SPACE_CELLS:
        # A warning only: a file cut inside a record is an error (see _read_tfrecord);
        # one cut exactly between records is indistinguishable from a subset.
        logger.warning("%s holds %d of the %d NAS-Bench-101 cells (%d missing)%s; looking "
                       "up any other cell raises NotInTableError", path, len(hashes),
                       SPACE_CELLS, SPACE_CELLS - len(hashes),
                       "; if it was cut short, re-download it" if path.name in TFRECORD_RECORDS
                       else "")
    epochs_list = tuple(sorted(set(rec_epochs)))
    if any(e <= 0 for e in epochs_list):
        raise TFRecordError(f"{path}: epoch counts must be positive, found {epochs_list}")
    counts, runs, depth = _repeat_grids(rec_row, rec_epochs, epochs_list, len(hashes), values)
    return LoadedTable(
        hashes=hashes, index=index, flats=flats, ops=opss, masks=masks,
        params=np.array(params, dtype=np.int64), epochs=epochs_list, num_repeats=depth,
        counts=counts, runs=runs, time_estimated={e: False for e in epochs_list})


def _read_tfrecord(path: Path, verify: bool):
    """Cells in file order and one entry per record (run): cell row, epochs, metrics."""
    index: Dict[str, int] = {}
    hashes: List[str] = []
    flats: List[str] = []
    opss: List[str] = []
    masks: List[int] = []
    params: List[int] = []
    rec_row = array.array("q")
    rec_epochs = array.array("q")
    values = {(stage, name): array.array("d") for stage in _STAGES for name in _RUN_METRICS}
    final_cols = [(values[("final", n)], n) for n in _RUN_METRICS]
    half_cols = [(values[("halfway", n)], n) for n in _RUN_METRICS]
    valid_ops: Dict[str, int] = {}
    intern = sys.intern
    nan = math.nan
    try:
        for number, data in iter_tfrecords(path, verify=verify):
            try:
                key, epochs, flat, ops, metrics = _parse_record(data)
                evaluations = metrics["evaluation_data"]
                row_index = index.get(key)
                if row_index is None:
                    mask = _checked_mask(flat, ops, valid_ops)
                    row_index = index[key] = len(hashes)
                    hashes.append(key)
                    flats.append(flat)
                    opss.append(intern(ops))
                    masks.append(mask)
                    params.append(metrics["trainable_parameters"])
            except (UnicodeDecodeError, ValueError, binascii.Error, ProtobufError) as error:
                raise TFRecordError(f"{path}: record {number} is not a NAS-Bench-101 "
                                    f"row ({error}); re-download the file") from None
            rec_row.append(row_index)
            rec_epochs.append(epochs)
            final = evaluations[-1]
            for target, name in final_cols:
                target.append(final[name])
            # As the official API: [0] is step 0, [1] halfway, [2] the end.
            half = evaluations[1] if len(evaluations) >= 3 else None
            for target, name in half_cols:
                target.append(half[name] if half is not None else nan)
    except TFRecordTruncatedError as error:
        expected = TFRECORD_RECORDS.get(path.name)
        if expected is None:
            raise
        raise TFRecordTruncatedError(
            f"{error} (it holds {error.records:,} complete records of the {expected:,} in "
            f"the official {path.name}: {expected - error.records:,} missing)",
            error.records) from None
    except DataNotFoundError:
        raise
    except OSError as error:  # DataNotFoundError is an OSError too
        raise DataNotFoundError(f"{path} could not be read ({error}). "
                                f"{_how_to_get()}") from None
    return hashes, index, flats, opss, masks, params, rec_row, rec_epochs, values


def _parse_record(data: bytes):
    """``(module_hash, epochs, flat adjacency, ops, metrics)`` of one record; ValueError if not."""
    row = json.loads(data.decode("utf-8"))
    if not (isinstance(row, list) and len(row) == 5):
        raise TableFormatError("expected a JSON list [module_hash, epochs, "
                               "raw_adjacency, raw_operations, raw_metrics]")
    key, epochs, flat, ops, raw = row
    if not (isinstance(key, str) and isinstance(epochs, int)
            and isinstance(flat, str) and isinstance(ops, str)
            and isinstance(raw, str)):
        raise TableFormatError("expected [str, int, str, str, str]")
    metrics = decode_model_metrics(base64.b64decode(raw, validate=True))
    if not metrics["evaluation_data"]:
        raise TableFormatError("its metrics hold no evaluation_data")
    return key, epochs, flat, ops, metrics


def _checked_mask(flat: str, ops: str, valid_ops: Dict[str, int]) -> int:
    """The adjacency bits of a new cell's record; ValueError if it is no cell."""
    n = math.isqrt(len(flat))
    if n * n != len(flat) or flat.strip("01"):
        raise TableFormatError(f"adjacency {flat!r} is not a square 0/1 matrix")
    mask = int(flat, 2)
    if mask & lower_mask(n):
        raise TableFormatError(f"adjacency {flat!r} is not strictly upper triangular")
    if valid_ops.get(ops) != n:
        _check_ops_text(ops, n)
        valid_ops[ops] = n
    return mask


def _repeat_grids(rec_row, rec_epochs, epochs_list: Tuple[int, ...], count: int,
                  values: Dict[Tuple[str, str], Any]):
    """``(counts, runs, depth)``: runs per (cell, budget) and the metric grids
    ``cells x budgets x repeats`` (NaN where a cell has fewer runs)."""
    e_of = np.searchsorted(np.array(epochs_list), np.frombuffer(rec_epochs, np.int64))
    rows = np.frombuffer(rec_row, np.int64)
    width = len(epochs_list)
    # Runs of one cell at one budget are its repeats, numbered in file order.
    slots = rows * width + e_of
    order = np.argsort(slots, kind="stable")
    ordered = slots[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    group_start = np.repeat(starts, np.diff(np.r_[starts, ordered.size]))
    reps = np.empty_like(order)
    reps[order] = np.arange(ordered.size) - group_start
    depth = int(reps.max()) + 1
    counts = np.zeros((count, width), dtype=np.int16)
    np.add.at(counts, (rows, e_of), 1)
    runs = {}
    for key, column in values.items():
        grid = np.full((count, width, depth), np.nan)
        grid[rows, e_of, reps] = np.frombuffer(column, np.float64)
        runs[key] = grid
    return counts, runs, depth
