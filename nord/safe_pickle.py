"""Pickle for run state that refuses to run code when it loads.

A strategy's state (populations, generator states, replay memories) is plain
data: builtin containers and numbers, strings, bytes, and numpy arrays. It is
saved with :func:`pickle.dumps`; :func:`loads` reads it back with an
unpickler that resolves only the few globals numpy arrays need, so a run
folder from someone else cannot execute code when it is resumed or reported
(plain ``pickle.loads`` would run whatever the file names).

:func:`split` and :func:`join` let a store save a large state incrementally:
``split`` swaps each large numeric array for a reference to content-addressed
chunks of whole rows, so a ring buffer that changed in a few rows shares all
its other chunks with the previous save; ``join`` puts the arrays back.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from typing import Any, Dict, Mapping, Tuple

import numpy as np

from nord.errors import MissingChunksError, UnsafePickleError

__all__ = ["dumps", "loads", "split", "join", "UnsafePickleError", "PlainRecord",
           "CHUNK_BYTES"]

#: the size of one chunk of a large array (whole rows; an array this big or bigger is chunked)
CHUNK_BYTES = 16 * 1024
_CHUNKS = "__nord_chunks__"
_NUMERIC = "biufc"  # bool, signed, unsigned, float, complex: arrays that hold no objects

# (module, name) pairs a state may name: what numpy arrays and dtypes pickle as
_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "complex"), ("builtins", "bytearray"),
}


class PlainRecord:
    """A record from an older run state, rebuilt as a bare bag of attributes.

    The RL agent once saved its episode steps as a dataclass; such a state
    loads as these (``object.__new__`` and a ``__dict__`` update: no code runs).
    """


# old names of plain records, each loaded as a PlainRecord
_RECORDS = {("nord.design.strategies.reinforcement", "Transition")}


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if (module, name) in _RECORDS:
            return PlainRecord
        raise UnsafePickleError(f"refusing to load {module}.{name}: run state holds plain "
                                f"data only, and loading this could run code")


def dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    return _PlainDataUnpickler(io.BytesIO(data)).load()


def split(value: Any, chunk_bytes: int = CHUNK_BYTES) -> Tuple[Any, Dict[str, bytes]]:
    """``value`` with its large numeric arrays (in dicts, lists, tuples) replaced by
    references to chunks, and the chunks by their hash."""
    chunks: Dict[str, bytes] = {}

    def walk(item: Any) -> Any:
        if type(item) is dict:
            return {key: walk(v) for key, v in item.items()}
        if type(item) in (list, tuple):
            return type(item)(walk(v) for v in item)
        if (isinstance(item, np.ndarray) and item.dtype.kind in _NUMERIC
                and item.nbytes >= chunk_bytes and item.ndim >= 1):
            return _chunk(np.ascontiguousarray(item), chunk_bytes, chunks)
        return item

    return walk(value), chunks


def _chunk(array: np.ndarray, chunk_bytes: int, chunks: Dict[str, bytes]) -> dict:
    rows = max(1, chunk_bytes // (array.nbytes // len(array)))
    hashes = []
    for start in range(0, len(array), rows):  # chunks of whole rows: a changed row changes one
        data = array[start:start + rows].tobytes()
        key = hashlib.blake2b(data, digest_size=16).hexdigest()
        chunks[key] = data
        hashes.append(key)
    return {_CHUNKS: hashes, "dtype": array.dtype.str, "shape": list(array.shape)}


def join(value: Any, chunks: Mapping[str, bytes]) -> Any:
    """The inverse of :func:`split`: ``value`` with its chunk references read from ``chunks``."""
    if type(value) is dict:
        if set(value) == {_CHUNKS, "dtype", "shape"}:
            return _unchunk(value, chunks)
        return {key: join(v, chunks) for key, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(join(v, chunks) for v in value)
    return value


def _unchunk(reference: dict, chunks: Mapping[str, bytes]) -> np.ndarray:
    dtype = np.dtype(str(reference["dtype"]))
    if dtype.kind not in _NUMERIC:
        raise UnsafePickleError(f"a chunked array of dtype {dtype} holds objects; refusing it")
    missing = [key for key in reference[_CHUNKS] if key not in chunks]
    if missing:
        raise MissingChunksError(f"{len(missing)} chunks of a saved array are missing "
                                 f"(the first: {missing[0]}); the run store is damaged")
    shape = tuple(int(n) for n in reference["shape"])
    data = b"".join(chunks[key] for key in reference[_CHUNKS])
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
