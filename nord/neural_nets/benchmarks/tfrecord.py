"""TFRecord files and protobuf messages, read and written without TensorFlow.

Enough of both formats to read the official NAS-Bench-101 release (and to write
files in the same format, which the tests use):

* **TFRecord framing.** A file is a sequence of records, each stored as::

      uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)

  (little endian). The mask is ``((crc >> 15) | (crc << 17)) + 0xa282ead8``
  modulo 2**32, over CRC-32C (Castagnoli). :func:`iter_tfrecords` checks both
  checksums and raises :class:`~nord.errors.DataNotFoundError` naming the file,
  the record number and its byte offset on a mismatch or a truncated record.
  Data checksums are verified in batches with numpy (one pass over many records
  at once), so checking costs little next to parsing.
* **Protobuf wire format.** :func:`decode_fields` splits a message into
  ``(field_number, wire_type, value)`` triples (varints as ints, 64- and 32-bit
  fields as their raw 8/4 bytes, length-delimited fields as bytes), and the
  ``encode_*`` functions build messages field by field. Schemas live with their
  users (see :mod:`nord.neural_nets.benchmarks.nasbench101`).

Example::

    write_tfrecords("data.tfrecord", [b"first", b"second"])
    assert list(iter_tfrecords("data.tfrecord")) == [b"first", b"second"]
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Iterable, Iterator, List, Tuple, Union

import numpy as np

from nord.errors import ProtobufError, TFRecordError, TFRecordTruncatedError

__all__ = [
    "crc32c",
    "masked_crc32c",
    "crc32c_many",
    "frame_record",
    "write_tfrecords",
    "iter_tfrecords",
    "TFRecordError",
    "TFRecordTruncatedError",
    "ProtobufError",
    "decode_varint",
    "encode_varint",
    "decode_fields",
    "encode_varint_field",
    "encode_double_field",
    "encode_bytes_field",
    "WIRE_VARINT",
    "WIRE_FIXED64",
    "WIRE_BYTES",
    "WIRE_FIXED32",
]

PathLike = Union[str, os.PathLike]

# ------------------------------------------------------------------ CRC-32C


def _make_table() -> List[int]:
    poly = 0x82F63B78  # reflected Castagnoli polynomial
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()
_NP_TABLE = np.array(_TABLE, dtype=np.uint32)
_MASK_DELTA = 0xA282EAD8


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data``; pass a previous result as ``crc`` to continue."""
    table = _TABLE
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _mask(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C that TFRecord stores after the length and after the data."""
    return _mask(crc32c(data))


def crc32c_many(chunks: List[bytes]) -> np.ndarray:
    """CRC-32C of every chunk, as a ``uint32`` array, computed together with numpy.

    The chunks are sorted by length and laid out column-wise, so each step of the
    byte loop updates all chunks that are still that long at once.
    """
    count = len(chunks)
    result = np.zeros(count, dtype=np.uint32)
    if count == 0:
        return result
    lengths = np.fromiter(map(len, chunks), dtype=np.int64, count=count)
    order = np.argsort(-lengths, kind="stable")
    sorted_lengths = lengths[order]
    longest = int(sorted_lengths[0])
    if longest == 0:
        return result
    flat = np.frombuffer(b"".join([chunks[i] for i in order]), dtype=np.uint8)
    grid = np.zeros((count, longest), dtype=np.uint8)
    grid[np.arange(longest) < sorted_lengths[:, None]] = flat
    columns = np.ascontiguousarray(grid.T)
    # active[i]: how many chunks are longer than i (a prefix, as lengths are sorted).
    active = np.searchsorted(-sorted_lengths, -np.arange(longest), side="left")
    state = np.full(count, 0xFFFFFFFF, dtype=np.uint32)
    table = _NP_TABLE
    eight = np.uint32(8)
    for i in range(longest):
        k = int(active[i])
        head = state[:k]
        state[:k] = table[(head ^ columns[i, :k]) & 0xFF] ^ (head >> eight)
    result[order] = state ^ np.uint32(0xFFFFFFFF)
    return result


def _mask_many(crcs: np.ndarray) -> np.ndarray:
    crcs = crcs.astype(np.uint64)
    rotated = ((crcs >> np.uint64(15)) | (crcs << np.uint64(17))) & np.uint64(0xFFFFFFFF)
    return ((rotated + np.uint64(_MASK_DELTA)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)


# ------------------------------------------------------------------ TFRecord files


def frame_record(data: bytes) -> bytes:
    """One record in TFRecord framing (length, its CRC, data, its CRC)."""
    header = struct.pack("<Q", len(data))
    return (header + struct.pack("<I", masked_crc32c(header)) + data
            + struct.pack("<I", masked_crc32c(data)))


def write_tfrecords(path: PathLike, records: Iterable[bytes]) -> Path:
    """Write ``records`` (bytes each) to a TFRecord file at ``path``; return the path."""
    path = Path(path)
    with open(path, "wb") as handle:
        for data in records:
            handle.write(frame_record(bytes(data)))
    return path


def iter_tfrecords(path: PathLike, verify: bool = True,
                   batch: int = 4096) -> Iterator[Tuple[int, bytes]]:
    """Yield ``(record_number, data)`` for each record of a TFRecord file.

    Record numbers count from 1. With ``verify`` (the default) both checksums of
    every record are checked; data checksums are checked ``batch`` records at a
    time, before any record of the batch is yielded. Raises :class:`TFRecordError`
    (a :class:`~nord.errors.DataNotFoundError`) naming the file, the record and
    its byte offset when a checksum does not match or the file ends mid-record.
    """
    path = Path(path)
    size = path.stat().st_size
    pending: List[Tuple[int, int, bytes, int]] = []  # (number, offset, data, stored crc)

    def flush() -> Iterator[Tuple[int, bytes]]:
        if verify:
            computed = _mask_many(crc32c_many([item[2] for item in pending]))
            stored = np.fromiter((item[3] for item in pending), dtype=np.uint32,
                                 count=len(pending))
            bad = np.flatnonzero(computed != stored)
            if bad.size:
                number, offset, _, crc = pending[int(bad[0])]
                raise TFRecordError(
                    f"{path}: record {number} (at byte {offset}) is damaged: the "
                    f"checksum of its data is {int(computed[bad[0]]):#010x}, the file "
                    f"stores {crc:#010x}; re-download the file")
        for number, _, data, _ in pending:
            yield number, data
        pending.clear()

    length_crcs: dict = {}  # record lengths repeat: check each distinct header once
    with open(path, "rb") as handle:
        offset = 0
        number = 0
        read = handle.read
        while True:
            header = read(12)
            if not header:
                break
            number += 1
            if len(header) < 12:
                raise TFRecordTruncatedError(
                    f"{path}: record {number} (at byte {offset}) is truncated: the file "
                    f"ends {len(header)} bytes into its 12-byte header; re-download it",
                    number - 1)
            length, length_crc = struct.unpack("<QI", header)
            if verify and length_crcs.get(length) != length_crc and \
                    length_crcs.setdefault(length, masked_crc32c(header[:8])) != length_crc:
                raise TFRecordError(
                    f"{path}: record {number} (at byte {offset}) is damaged: the "
                    f"checksum of its length field does not match; re-download the "
                    f"file (or it is not a TFRecord file)")
            if offset + 16 + length > size:
                raise TFRecordTruncatedError(
                    f"{path}: record {number} (at byte {offset}) is truncated: it "
                    f"promises {length} bytes of data but the file ends "
                    f"{size - offset - 12} bytes after its header; re-download it",
                    number - 1)
            data = read(length)
            footer = read(4)
            if len(data) < length or len(footer) < 4:
                raise TFRecordTruncatedError(
                    f"{path}: record {number} (at byte {offset}) is truncated; "
                    f"re-download the file", number - 1)
            pending.append((number, offset, data, struct.unpack("<I", footer)[0]))
            offset += 16 + length
            if len(pending) >= batch:
                yield from flush()
        if pending:
            yield from flush()


# ------------------------------------------------------------------ protobuf

WIRE_VARINT = 0
WIRE_FIXED64 = 1
WIRE_BYTES = 2
WIRE_FIXED32 = 5


def decode_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    """The varint starting at ``buf[pos]`` and the position after it."""
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    result = byte & 0x7F
    shift = 7
    end = len(buf)
    pos += 1
    while True:
        if pos >= end:
            raise ProtobufError("message ends inside a varint")
        if shift > 63:
            raise ProtobufError("varint longer than 10 bytes")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def encode_varint(value: int) -> bytes:
    """Varint bytes of a non-negative int (negative ints as 64-bit two's complement)."""
    if value < 0:
        value &= (1 << 64) - 1
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def decode_fields(buf: bytes) -> List[Tuple[int, int, object]]:
    """Every field of a message as ``(field_number, wire_type, value)``, in order.

    Varints come back as ints, fixed64/fixed32 fields as their raw 8/4 bytes
    (unpack with ``struct``: ``'<d'`` for a double), length-delimited fields as
    bytes (a string, bytes, a nested message or a packed repeated field). Group
    wire types (3, 4) and any malformed or truncated input raise
    :class:`ProtobufError`.
    """
    fields = []
    pos = 0
    end = len(buf)
    try:
        while pos < end:
            key, pos = decode_varint(buf, pos)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise ProtobufError("field number 0 is not allowed")
            if wire == WIRE_VARINT:
                value, pos = decode_varint(buf, pos)
            elif wire == WIRE_FIXED64:
                value = buf[pos:pos + 8]
                pos += 8
            elif wire == WIRE_BYTES:
                length, pos = decode_varint(buf, pos)
                value = buf[pos:pos + length]
                pos += length
            elif wire == WIRE_FIXED32:
                value = buf[pos:pos + 4]
                pos += 4
            else:
                raise ProtobufError(f"field {number} has unsupported wire type {wire}")
            if pos > end:
                raise ProtobufError(f"message ends inside field {number}")
            fields.append((number, wire, value))
    except IndexError:
        raise ProtobufError("message ends inside a field") from None
    return fields


def _key(number: int, wire: int) -> bytes:
    return encode_varint((number << 3) | wire)


def encode_varint_field(number: int, value: int) -> bytes:
    """A varint field (int32/int64/uint/bool/enum)."""
    return _key(number, WIRE_VARINT) + encode_varint(int(value))


def encode_double_field(number: int, value: float) -> bytes:
    """A ``double`` field (wire type 1)."""
    return _key(number, WIRE_FIXED64) + struct.pack("<d", float(value))


def encode_bytes_field(number: int, value: Union[bytes, str]) -> bytes:
    """A length-delimited field: a string (UTF-8), bytes or an encoded message."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return _key(number, WIRE_BYTES) + encode_varint(len(value)) + bytes(value)
