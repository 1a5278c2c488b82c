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

**Tables.** Two formats are read:

* ``nb101_30k_subset.csv.gz`` (the default): 30,001 cells (about 7% of the
  423,624), one training run each, validation accuracy at 4/12/36/108 epochs,
  parameters and the 108-epoch training time; no test accuracy.
* the official release, ``nasbench_only108.tfrecord`` or ``nasbench_full.tfrecord``
  (https://storage.googleapis.com/nasbench/nasbench_only108.tfrecord), read
  without TensorFlow (:mod:`nord.neural_nets.benchmarks.tfrecord`): every cell,
  three repeats, train/validation/test accuracy and training time, at the end and
  halfway through training. Loading the pure-Python way takes a while for the
  full files (tens of seconds per million records).

Without ``path``, the table is looked for as ``nb101_30k_subset.csv.gz``, then
``nasbench_only108.tfrecord``, then ``nasbench_full.tfrecord``, first in
``$NORD_DATA/nasbench101/``, then in the user cache's ``nasbench101/`` folder
(``$NORD_CACHE``, else ``$XDG_CACHE_HOME/nord``, else ``~/.cache/nord``).

**Cells and descriptors.** A descriptor is turned into a cell by *role*: the
input is the layer whose type is ``'input'`` and the output the one whose type
is ``'output'`` (an untyped ``first_layer``/``last_layer`` stands in when there
is none), never by names or insertion order. Layers off every input→output path
are pruned, as NAS-Bench-101 prunes, and the rest are put in topological order.
Cells are keyed by NAS-Bench-101's own hash
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

import array
import base64
import binascii
import csv
import difflib
import gzip
import heapq
import json
import logging
import math
import os
import random
import struct
import sys
import time
from pathlib import Path
from typing import (Any, Dict, Iterable, KeysView, List, NamedTuple, Optional, Sequence,
                    Tuple, Union)

import numpy as np

from nord.errors import (DataNotFoundError, MetricNotAvailableError, NotInTableError,
                         OutOfSearchSpaceError)
from nord.neural_nets.benchmarks.tfrecord import (ProtobufError, TFRecordError,
                                                  decode_fields, encode_bytes_field,
                                                  encode_double_field, encode_varint_field,
                                                  iter_tfrecords, masked_crc32c,
                                                  write_tfrecords)
from nord.neural_nets.graph_hash import NASBENCH101_OPS, wl_hash

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

INPUT = "input"
OUTPUT = "output"
MAX_VERTICES = 7
MAX_EDGES = 9
CSV_NAME = "nb101_30k_subset.csv.gz"
TFRECORD_NAMES = ("nasbench_only108.tfrecord", "nasbench_full.tfrecord")
OFFICIAL_URL = "https://storage.googleapis.com/nasbench/nasbench_only108.tfrecord"
FULL_URL = "https://storage.googleapis.com/nasbench/nasbench_full.tfrecord"
CSV_EPOCHS = (4, 12, 36, 108)
ACCURACIES = ("train_accuracy", "validation_accuracy", "test_accuracy")

_OPS = tuple(NASBENCH101_OPS)                      # official order (hash labels 0, 1, 2)
_LABEL = {op: i for i, op in enumerate(_OPS)}
_MEMO_LIMIT = 1 << 19

PathLike = Union[str, os.PathLike]
Matrix = Any


class NB101Cell(NamedTuple):
    """One cell of the table: its hash, pruned matrix and ops, and a value."""

    hash: str
    matrix: np.ndarray
    ops: List[str]
    value: float
    training_time: float


# ------------------------------------------------------------------ ModelMetrics

_EVAL_DOUBLES = {1: "current_epoch", 2: "training_time", 3: "train_accuracy",
                 4: "validation_accuracy", 5: "test_accuracy"}
_EVAL_NUMBERS = {name: number for number, name in _EVAL_DOUBLES.items()}


_FIVE_DOUBLES = struct.Struct("<xdxdxdxdxd")
_FIVE_TAGS = bytes([(number << 3) | 1 for number in range(1, 6)])


def _decode_evaluation_data(buf: bytes) -> Dict[str, Any]:
    # Fast path: the five doubles written in field order, as protobuf writers do.
    if buf[0:45:9] == _FIVE_TAGS and len(buf) >= 45:
        epoch, train_time, train_acc, val_acc, test_acc = _FIVE_DOUBLES.unpack_from(buf)
        out: Dict[str, Any] = {"current_epoch": epoch, "training_time": train_time,
                               "train_accuracy": train_acc, "validation_accuracy": val_acc,
                               "test_accuracy": test_acc}
        rest = buf[45:]
        if not rest:
            return out
    else:
        out = {name: 0.0 for name in _EVAL_DOUBLES.values()}
        rest = buf
    for number, wire, value in decode_fields(rest):
        name = _EVAL_DOUBLES.get(number)
        if name is not None:
            if wire != 1:
                raise ProtobufError(f"EvaluationData.{name} (field {number}) has wire "
                                    f"type {wire}, expected 1 (double)")
            out[name] = struct.unpack("<d", value)[0]
        elif number == 6:
            if wire != 2:
                raise ProtobufError("EvaluationData.checkpoint_path has wire type "
                                    f"{wire}, expected 2 (string)")
            out["checkpoint_path"] = value.decode("utf-8", "replace")
    return out


def decode_model_metrics(buf: bytes) -> Dict[str, Any]:
    """Decode NAS-Bench-101's ``ModelMetrics`` protobuf message.

    Schema (``nasbench/lib/model_metrics.proto``, proto2)::

        message ModelMetrics {
          repeated EvaluationData evaluation_data = 1;
          optional int32 trainable_parameters = 2;
          optional double total_time = 3; }
        message EvaluationData {
          optional double current_epoch = 1;   optional double training_time = 2;
          optional double train_accuracy = 3;  optional double validation_accuracy = 4;
          optional double test_accuracy = 5;   optional string checkpoint_path = 6; }

    Returns ``{'evaluation_data': [dict, ...], 'trainable_parameters': int,
    'total_time': float}``; absent fields take proto2's defaults (0). Unknown
    fields are skipped. Raises :class:`~nord.neural_nets.benchmarks.tfrecord.ProtobufError`.
    """
    evaluation_data = []
    params = 0
    total_time = 0.0
    for number, wire, value in decode_fields(buf):
        if number == 1:
            if wire != 2:
                raise ProtobufError(f"ModelMetrics.evaluation_data has wire type {wire}, "
                                    f"expected 2 (message)")
            evaluation_data.append(_decode_evaluation_data(value))
        elif number == 2:
            if wire == 0:
                params = value - (1 << 64) if value >= 1 << 63 else value
            elif wire == 1:  # tolerate a double, as some re-encodings write it
                params = int(struct.unpack("<d", value)[0])
            else:
                raise ProtobufError(f"ModelMetrics.trainable_parameters has wire type "
                                    f"{wire}, expected 0 (int32)")
        elif number == 3:
            if wire != 1:
                raise ProtobufError(f"ModelMetrics.total_time has wire type {wire}, "
                                    f"expected 1 (double)")
            total_time = struct.unpack("<d", value)[0]
    return {"evaluation_data": evaluation_data, "trainable_parameters": params,
            "total_time": total_time}


def encode_model_metrics(evaluation_data: Iterable[Dict[str, Any]],
                         trainable_parameters: Optional[int] = None,
                         total_time: Optional[float] = None) -> bytes:
    """Encode a ``ModelMetrics`` message (see :func:`decode_model_metrics`).

    Each entry of ``evaluation_data`` is a dict with any of ``current_epoch``,
    ``training_time``, ``train_accuracy``, ``validation_accuracy``,
    ``test_accuracy`` (floats) and ``checkpoint_path`` (str).
    """
    parts = []
    for entry in evaluation_data:
        unknown = set(entry) - set(_EVAL_NUMBERS) - {"checkpoint_path"}
        if unknown:
            raise ValueError(f"unknown EvaluationData fields {sorted(unknown)}; known: "
                             f"{sorted(_EVAL_NUMBERS) + ['checkpoint_path']}")
        body = b"".join(encode_double_field(_EVAL_NUMBERS[name], entry[name])
                        for name in _EVAL_DOUBLES.values() if name in entry)
        if "checkpoint_path" in entry:
            body += encode_bytes_field(6, entry["checkpoint_path"])
        parts.append(encode_bytes_field(1, body))
    if trainable_parameters is not None:
        parts.append(encode_varint_field(2, int(trainable_parameters)))
    if total_time is not None:
        parts.append(encode_double_field(3, total_time))
    return b"".join(parts)


def encode_nasbench_record(module_hash: str, epochs: int, matrix: Matrix,
                           ops: Sequence[str], metrics: bytes) -> bytes:
    """One record of the official tfrecord files: the UTF-8 JSON list
    ``[module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]`` where
    the adjacency is the row-major 0/1 string, the operations comma-joined and
    the metrics a base64 ``ModelMetrics`` message (:func:`encode_model_metrics`)."""
    rows = matrix.tolist() if hasattr(matrix, "tolist") else matrix
    flat = "".join(str(int(x)) for row in rows for x in row)
    return json.dumps([module_hash, int(epochs), flat, ",".join(ops),
                       base64.b64encode(metrics).decode("ascii")]).encode("utf-8")


def write_nasbench_tfrecord(path: PathLike, rows: Iterable[Tuple]) -> Path:
    """Write a tfrecord file in the official NAS-Bench-101 format.

    ``rows`` yields ``(module_hash, epochs, matrix, ops, evaluation_data,
    trainable_parameters)`` tuples, one per training run (NAS-Bench-101 stores
    three runs per cell and epoch budget; ``evaluation_data`` lists the metrics
    at the start, halfway point and end of training, as the official files do).
    """
    return write_tfrecords(path, (
        encode_nasbench_record(h, e, m, ops, encode_model_metrics(ev, params))
        for h, e, m, ops, ev, params in rows))


# ------------------------------------------------------------------ locating data

def _cache_roots() -> List[Path]:
    configured = os.environ.get("NORD_CACHE")
    if configured:
        return [Path(configured).expanduser()]
    roots = []
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        roots.append(Path(xdg).expanduser() / "nord")
    roots.append(Path.home() / ".cache" / "nord")
    return list(dict.fromkeys(roots))


def _candidates() -> List[Path]:
    folders = []
    if os.environ.get("NORD_DATA"):
        folders.append(Path(os.environ["NORD_DATA"]).expanduser() / "nasbench101")
    folders += [root / "nasbench101" for root in _cache_roots()]
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


# ------------------------------------------------------------------ the evaluator

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
        Seed of the generator that ``repeat='sample'`` draws runs with.
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
                 seed: Optional[int] = None, low_fidelity_time: str = "scaled",
                 verify: bool = True) -> None:
        if repeat not in ("mean", "sample"):
            raise ValueError(f"repeat must be 'mean' or 'sample', got {repeat!r}")
        if low_fidelity_time not in ("scaled", "nan"):
            raise ValueError(f"low_fidelity_time must be 'scaled' or 'nan', "
                             f"got {low_fidelity_time!r}")
        self.repeat = repeat
        self.low_fidelity_time = low_fidelity_time
        self._rng = random.Random(seed)
        start = time.perf_counter()
        self.path = find_nasbench101(path)
        if _is_tfrecord(self.path):
            self.source = "tfrecord"
            self._load_tfrecord(self.path, verify)
        else:
            self.source = "csv"
            self._load_csv(self.path)
        self._finish_load()
        self.load_seconds = time.perf_counter() - start
        self.queries = 0
        self.simulated_time = 0.0
        logger.info("loaded %d NAS-Bench-101 cells from %s in %.2f s",
                    len(self._hashes), self.path, self.load_seconds)

    # ------------------------------------------------------------------ loading
    def _load_csv(self, path: Path) -> None:
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
                reader = csv.reader(handle)
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
                i_hash, i_n, i_e, i_flat, i_ops = (col[c] for c in _CSV_REQUIRED[:5])
                float_cols = [(columns[name], col[name]) for name in _CSV_FLOATS]
                width = len(header)
                for row in reader:
                    line = reader.line_num
                    try:
                        if len(row) != width:
                            raise ValueError(f"{len(row)} fields, the header has {width}")
                        key = row[i_hash]
                        if len(key) != 32:
                            raise ValueError(f"hash {key!r} is not 32 hex digits")
                        n = int(row[i_n])
                        flat = row[i_flat]
                        ops = row[i_ops]
                        if valid_ops.get(ops) != n:
                            _check_csv_ops(ops, n)
                            valid_ops[ops] = n
                        if len(flat) != n * n or flat.strip("01"):
                            raise ValueError(f"matrix {flat!r} is not a 0/1 string of "
                                             f"length {n}x{n}")
                        if flat.count("1") != int(row[i_e]):
                            raise ValueError(f"num_edges is {row[i_e]} but the matrix "
                                             f"has {flat.count('1')} edges")
                        mask = int(flat, 2)
                        if mask & _lower_mask(n):
                            raise ValueError(f"matrix {flat!r} is not strictly upper "
                                             f"triangular")
                        for target, i in float_cols:
                            target.append(float(row[i]))
                    except ValueError as error:
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
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as error:
            if isinstance(error, DataNotFoundError):
                raise
            raise DataNotFoundError(f"{where} could not be read ({error}); it is damaged "
                                    f"or not the NAS-Bench-101 csv table. "
                                    f"{_how_to_get()}") from None
        if not hashes:
            raise DataNotFoundError(f"{where} holds no rows; {_how_to_get()}")
        count = len(hashes)
        val = np.array([columns[f"val_acc_{e}ep"] for e in CSV_EPOCHS]).T  # (n, 4)
        params = np.array(columns["trainable_parameters"])
        time108 = np.array(columns["final_training_time_108ep"])
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
        times = np.empty((count, len(CSV_EPOCHS)))
        for e, epochs in enumerate(CSV_EPOCHS):
            times[:, e] = (time108 if epochs == 108 else
                           time108 * (epochs / 108) if self.low_fidelity_time == "scaled"
                           else np.nan)
        self._time_estimated = {e: e != 108 and self.low_fidelity_time == "scaled"
                                for e in CSV_EPOCHS}
        self._hashes = hashes
        self._index = index
        self._flats = flats
        self._ops = opss
        self._masks = masks
        self._params = params.astype(np.int64)
        self.epochs = CSV_EPOCHS
        self.num_repeats = 1
        self._counts = np.ones((count, len(CSV_EPOCHS)), dtype=np.int8)
        self._runs = {("final", "validation_accuracy"): val[:, :, None],
                      ("final", "training_time"): times[:, :, None]}

    def _load_tfrecord(self, path: Path, verify: bool) -> None:
        index: Dict[str, int] = {}
        hashes: List[str] = []
        flats: List[str] = []
        opss: List[str] = []
        masks: List[int] = []
        params: List[int] = []
        rec_row = array.array("q")
        rec_epochs = array.array("q")
        stages = ("final", "halfway")
        names = ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")
        values = {(stage, name): array.array("d") for stage in stages for name in names}
        final_cols = [(values[("final", n)], n) for n in names]
        half_cols = [(values[("halfway", n)], n) for n in names]
        valid_ops: Dict[str, int] = {}
        intern = sys.intern
        nan = math.nan
        try:
            for number, data in iter_tfrecords(path, verify=verify):
                try:
                    row = json.loads(data.decode("utf-8"))
                    if not (isinstance(row, list) and len(row) == 5):
                        raise ValueError("expected a JSON list [module_hash, epochs, "
                                         "raw_adjacency, raw_operations, raw_metrics]")
                    key, epochs, flat, ops, raw = row
                    if not (isinstance(key, str) and isinstance(epochs, int)
                            and isinstance(flat, str) and isinstance(ops, str)
                            and isinstance(raw, str)):
                        raise ValueError("expected [str, int, str, str, str]")
                    metrics = decode_model_metrics(base64.b64decode(raw, validate=True))
                    evaluations = metrics["evaluation_data"]
                    if not evaluations:
                        raise ValueError("its metrics hold no evaluation_data")
                    row_index = index.get(key)
                    if row_index is None:
                        n = math.isqrt(len(flat))
                        if n * n != len(flat) or flat.strip("01"):
                            raise ValueError(f"adjacency {flat!r} is not a square 0/1 matrix")
                        mask = int(flat, 2)
                        if mask & _lower_mask(n):
                            raise ValueError(f"adjacency {flat!r} is not strictly upper "
                                             f"triangular")
                        if valid_ops.get(ops) != n:
                            _check_csv_ops(ops, n)
                            valid_ops[ops] = n
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
        except DataNotFoundError:
            raise
        except OSError as error:  # DataNotFoundError is an OSError too
            raise DataNotFoundError(f"{path} could not be read ({error}). "
                                    f"{_how_to_get()}") from None
        if not hashes:
            raise DataNotFoundError(f"{path} holds no records; {_how_to_get()}")
        epochs_list = tuple(sorted(set(rec_epochs)))
        if any(e <= 0 for e in epochs_list):
            raise TFRecordError(f"{path}: epoch counts must be positive, found {epochs_list}")
        e_of = np.searchsorted(np.array(epochs_list), np.frombuffer(rec_epochs, np.int64))
        rows = np.frombuffer(rec_row, np.int64)
        count, width = len(hashes), len(epochs_list)
        # Runs of one cell at one budget are its repeats, numbered in file order.
        slots = rows * width + e_of
        order = np.argsort(slots, kind="stable")
        ordered = slots[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        group_start = np.repeat(starts, np.diff(np.r_[starts, ordered.size]))
        reps = np.empty_like(order)
        reps[order] = np.arange(ordered.size) - group_start
        depth = int(reps.max()) + 1
        self._counts = np.zeros((count, width), dtype=np.int16)
        np.add.at(self._counts, (rows, e_of), 1)
        self._runs = {}
        for key, column in values.items():
            grid = np.full((count, width, depth), np.nan)
            grid[rows, e_of, reps] = np.frombuffer(column, np.float64)
            self._runs[key] = grid
        self._hashes = hashes
        self._index = index
        self._flats = flats
        self._ops = opss
        self._masks = masks
        self._params = np.array(params, dtype=np.int64)
        self.epochs = epochs_list
        self.num_repeats = depth
        self._time_estimated = {e: False for e in epochs_list}

    def _finish_load(self) -> None:
        self.metrics = tuple(name for name in ACCURACIES if ("final", name) in self._runs)
        self._epoch_index = {e: i for i, e in enumerate(self.epochs)}
        with np.errstate(invalid="ignore"), _quiet_nan_warnings():
            self._means = {key: np.nanmean(runs, axis=2) for key, runs in self._runs.items()}
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
        return list(_OPS)

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
        return _mask_to_matrix(mask, len(ops)), ops

    @staticmethod
    def matrix_to_descriptor(matrix: Matrix, ops: Sequence[str]):
        """A descriptor of the cell ``(matrix, ops)``; vertex ``i`` becomes layer
        ``'in'`` (op ``'input'``), ``'out'`` (op ``'output'``) or ``'layer_<i>'``."""
        from nord.neural_nets.neural_descriptor import NeuralDescriptor

        rows, ops = _square(matrix, ops)
        names = []
        for i, op in enumerate(ops):
            name = {INPUT: "in", OUTPUT: "out"}.get(op, f"layer_{i}")
            names.append(name if name not in names else f"layer_{i}")
        d = NeuralDescriptor()
        for name, op in zip(names, ops):
            d.add_layer(op, None, name)
        for i, row in enumerate(rows):
            for j, x in enumerate(row):
                if x:
                    d.connect_layers(names[i], names[j])
        return d

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

        ``rng`` is a ``numpy.random.Generator``, a seed, or ``None`` (fresh
        entropy). Sampling from the table keeps a search inside the subset.
        """
        rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
        if not replace and n > len(self):
            raise ValueError(f"cannot draw {n} distinct cells from a table of {len(self)}; "
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
        key = _descriptor_key(descriptor)
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
                ops_text, mask = key
                ops = ops_text.split(",")
                n = len(ops)
                labels = [-1] + [_LABEL[op] for op in ops[1:-1]] + [-2]
                top = n * n - 1
                edges = [(i, j) for i in range(n) for j in range(i + 1, n)
                         if mask >> (top - i * n - j) & 1]
                found = wl_hash(labels, edges)
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
            return _matrix_key(*cell)
        if hasattr(cell, "layers") and hasattr(cell, "connections"):
            return self._descriptor_key(cell)
        raise TypeError(f"expected a NeuralDescriptor, a (matrix, ops) pair or a hash, "
                        f"got {type(cell).__name__}")

    def _descriptor_key(self, d) -> Tuple[str, int]:
        return _descriptor_key(d)


# ------------------------------------------------------------------ cells → keys

_CSV_FLOATS = ("val_acc_4ep", "val_acc_12ep", "val_acc_36ep", "val_acc_108ep",
               "trainable_parameters", "final_training_time_108ep")
_CSV_REQUIRED = ("hash", "num_vertices", "num_edges", "matrix_flat_row_major", "ops") \
    + _CSV_FLOATS


def _check_csv_ops(text: str, n: int) -> None:
    ops = text.split(",")
    if len(ops) != n:
        raise ValueError(f"{len(ops)} ops for {n} vertices")
    if n < 2 or ops[0] != INPUT or ops[-1] != OUTPUT:
        raise ValueError(f"ops must start with 'input' and end with 'output': {text!r}")
    unknown = [op for op in ops[1:-1] if op not in _LABEL]
    if unknown:
        raise ValueError(f"unknown op(s) {unknown}")


_LOWER_MASKS: Dict[int, int] = {}


def _lower_mask(n: int) -> int:
    """Bits of the diagonal and below in a row-major ``n x n`` mask."""
    mask = _LOWER_MASKS.get(n)
    if mask is None:
        top = n * n - 1
        mask = 0
        for i in range(n):
            for j in range(i + 1):
                mask |= 1 << (top - i * n - j)
        _LOWER_MASKS[n] = mask
    return mask


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _is_tfrecord(path: Path) -> bool:
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


class _quiet_nan_warnings:
    """Silence numpy's 'Mean of empty slice' for cells without runs at a budget."""

    def __enter__(self):
        import warnings
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", category=RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def _mask_to_matrix(mask: int, n: int) -> np.ndarray:
    bits = format(mask, f"0{n * n}b") if n else ""
    return (np.frombuffer(bits.encode("ascii"), dtype=np.uint8).reshape(n, n)
            - ord("0")).astype(int)


def _square(matrix: Matrix, ops: Sequence[str]) -> Tuple[List[List[int]], List[str]]:
    rows = matrix.tolist() if hasattr(matrix, "tolist") else matrix
    try:
        rows = [[int(x) for x in row] for row in rows]
    except (TypeError, ValueError) as error:
        raise OutOfSearchSpaceError(f"the adjacency matrix must be a square 0/1 matrix "
                                    f"({error})") from None
    n = len(rows)
    if any(len(row) != n for row in rows):
        raise OutOfSearchSpaceError(f"the adjacency matrix must be square, got row lengths "
                                    f"{[len(r) for r in rows]}")
    if any(x not in (0, 1) for row in rows for x in row):
        raise OutOfSearchSpaceError("adjacency matrix entries must be 0 or 1")
    ops = list(ops)
    if len(ops) != n:
        raise OutOfSearchSpaceError(f"{len(ops)} ops for a {n}x{n} matrix; give one op per "
                                    f"vertex")
    return rows, ops


def _matrix_key(matrix: Matrix, ops: Sequence[str]) -> Tuple[str, int]:
    rows, ops = _square(matrix, ops)
    n = len(rows)
    if n < 2 or ops[0] != INPUT or ops[-1] != OUTPUT:
        raise OutOfSearchSpaceError(f"ops must start with 'input' and end with 'output', "
                                    f"got {ops}")
    succ = [[j for j, x in enumerate(row) if x] for row in rows]
    return _cell_key(ops, succ, 0, n - 1, [f"vertex {i}" for i in range(n)], [False] * n)


def _descriptor_key(d) -> Tuple[str, int]:
    layers = d.layers
    names = list(layers)
    count = len(names)
    if count == 0:
        raise OutOfSearchSpaceError("the descriptor has no layers; a NAS-Bench-101 cell "
                                    "needs an 'input' and an 'output' layer")
    index = {name: i for i, name in enumerate(names)}
    specs = list(layers.values())
    ops = [spec.layer for spec in specs]
    connections = d.connections
    succ = []
    try:
        for name in names:
            succ.append([index[dst] for dst in connections.get(name, ())])
    except KeyError as error:
        raise OutOfSearchSpaceError(f"layer {name!r} connects to unknown layer "
                                    f"{error.args[0]!r}") from None
    if len(connections) != count:
        unknown = [n for n in connections if n not in index and connections[n]]
        if unknown:
            raise OutOfSearchSpaceError(f"connections come from unknown layer(s) {unknown}")
    src = _role(ops, names, INPUT, d.first_layer, index, "first_layer")
    dst = _role(ops, names, OUTPUT, d.last_layer, index, "last_layer")
    return _cell_key(ops, succ, src, dst, names, [bool(spec.params) for spec in specs])


def _role(ops: list, names: list, role: str, fallback, index, attribute: str) -> int:
    found = [i for i, op in enumerate(ops) if isinstance(op, str) and op == role]
    if len(found) == 1:
        return found[0]
    if found:
        raise OutOfSearchSpaceError(
            f"the descriptor has {len(found)} layers of type {role!r} "
            f"({[names[i] for i in found]}); a NAS-Bench-101 cell has exactly one")
    if fallback in index and ops[index[fallback]] is None:
        return index[fallback]
    where = (f"{attribute} {fallback!r} has type {_label(ops[index[fallback]])!r}"
             if fallback in index else f"{attribute} is {fallback!r}")
    raise OutOfSearchSpaceError(f"the descriptor has no layer of type {role!r} ({where}); "
                                f"add one: d.add_layer({role!r}, None, name)")


def _label(op) -> str:
    return op if isinstance(op, str) else getattr(op, "__name__", repr(op))


def _cell_key(ops: list, succ: List[List[int]], src: int, dst: int, names: list,
              has_params: List[bool]) -> Tuple[str, int]:
    """Prune, order and check a cell; return its key ``(ops joined by ',', mask)``.

    ``mask`` holds the row-major adjacency bits of the pruned, ordered cell
    (``int(flat_string, 2)``).
    """
    count = len(ops)
    if src == dst:
        raise OutOfSearchSpaceError(f"layer {names[src]!r} cannot be both the input and "
                                    f"the output of the cell")
    forward = bytearray(count)
    forward[src] = 1
    stack = [src]
    while stack:
        for j in succ[stack.pop()]:
            if not forward[j]:
                forward[j] = 1
                stack.append(j)
    pred: List[List[int]] = [[] for _ in range(count)]
    in_order = True
    for i in range(count):
        for j in succ[i]:
            pred[j].append(i)
            if j <= i:
                in_order = False
    if not in_order:
        order_all = _topological(succ, pred, names)  # raises on a cycle
    if not forward[dst]:
        raise OutOfSearchSpaceError(
            f"no path leads from the input layer {names[src]!r} to the output layer "
            f"{names[dst]!r}; connect them")
    backward = bytearray(count)
    backward[dst] = 1
    stack = [dst]
    while stack:
        for j in pred[stack.pop()]:
            if not backward[j]:
                backward[j] = 1
                stack.append(j)
    if in_order:
        order = [i for i in range(count) if forward[i] and backward[i]]
    else:
        order = [i for i in order_all if forward[i] and backward[i]]
    n = len(order)
    if n > MAX_VERTICES:
        raise OutOfSearchSpaceError(
            f"the pruned cell has {n} vertices; NAS-Bench-101 allows at most "
            f"{MAX_VERTICES} (input and output included): {[names[i] for i in order]}")
    position = [-1] * count
    for k, i in enumerate(order):
        position[i] = k
    top = n * n - 1
    mask = 0
    for k, i in enumerate(order):
        base = top - k * n
        for j in succ[i]:
            p = position[j]
            if p >= 0:
                mask |= 1 << (base - p)
    edges = mask.bit_count() if hasattr(mask, "bit_count") else bin(mask).count("1")
    if edges > MAX_EDGES:
        raise OutOfSearchSpaceError(
            f"the pruned cell has {edges} edges; NAS-Bench-101 allows at most {MAX_EDGES}")
    cell_ops = []
    for k, i in enumerate(order):
        op = ops[i]
        if has_params[i]:
            raise OutOfSearchSpaceError(
                f"layer {names[i]!r} has parameters; NAS-Bench-101 ops take none "
                f"(pass None as params)")
        if k == 0 or k == n - 1:
            cell_ops.append(INPUT if k == 0 else OUTPUT)
            continue
        if not (isinstance(op, str) and op in _LABEL):
            close = difflib.get_close_matches(op, _OPS, n=1) if isinstance(op, str) else []
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise OutOfSearchSpaceError(
                f"layer {names[i]!r} has type {_label(op)!r}{hint}, which is not a "
                f"NAS-Bench-101 op; available ops: {list(_OPS)} (plus 'input' and "
                f"'output' for the cell's ends)")
        cell_ops.append(op)
    return ",".join(cell_ops), mask


def _topological(succ: List[List[int]], pred: List[List[int]], names: list) -> List[int]:
    """All vertices in topological order, ties by index; raises on a cycle."""
    count = len(succ)
    indegree = [len(p) for p in pred]
    ready = [i for i in range(count) if indegree[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in succ[i]:
            indegree[j] -= 1
            if indegree[j] == 0:
                heapq.heappush(ready, j)
    if len(order) < count:
        cycle = _find_cycle(pred, {i for i in range(count) if indegree[i] > 0})
        arrow = " -> ".join(names[i] for i in cycle + cycle[:1])
        raise OutOfSearchSpaceError(f"the connections form a cycle ({arrow}); a "
                                    f"NAS-Bench-101 cell is acyclic")
    return order


def _find_cycle(pred: List[List[int]], left: set) -> List[int]:
    """One cycle among ``left`` (the vertices Kahn's algorithm could not order).

    Each of them has a predecessor among them, so walking predecessors from any
    of them must come back to a vertex already seen.
    """
    start = min(left)
    path = [start]
    seen = {start: 0}
    while True:
        nxt = next(j for j in pred[path[-1]] if j in left)
        if nxt in seen:
            cycle = path[seen[nxt]:][::-1]
            first = cycle.index(min(cycle))
            return cycle[first:] + cycle[:first]  # from the earliest-added layer
        seen[nxt] = len(path)
        path.append(nxt)
