"""NAS-Bench-101's official record format: ``ModelMetrics`` protobufs and tfrecord rows.

Each record of ``nasbench_only108.tfrecord`` / ``nasbench_full.tfrecord`` is the
UTF-8 JSON list ``[module_hash, epochs, raw_adjacency, raw_operations,
raw_metrics]``, ``raw_metrics`` a base64 ``ModelMetrics`` message. These helpers
read and write it without TensorFlow or protobuf (the framing and wire format are
in :mod:`nord.neural_nets.benchmarks.tfrecord`); tests use them to build small
official-format files.
"""

from __future__ import annotations

import base64
import json
import os
import struct
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Sequence, Tuple, Union

from nord.neural_nets.benchmarks.tfrecord import (ProtobufError, decode_fields,
                                                  encode_bytes_field, encode_double_field,
                                                  encode_varint_field, write_tfrecords)

__all__ = ["encode_model_metrics", "decode_model_metrics", "encode_nasbench_record",
           "write_nasbench_tfrecord"]

PathLike = Union[str, os.PathLike]
Matrix = Any

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
            raise ProtobufError(f"unknown EvaluationData fields {sorted(unknown)}; known: "
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
