"""Pickle for run state that refuses to run code when it loads.

A strategy's state (populations, generator states, replay memories) is plain
data: builtin containers and numbers, strings, bytes, and numpy arrays. It is
saved with :func:`pickle.dumps`; :func:`loads` reads it back with an
unpickler that resolves only the few globals numpy arrays need, so a run
folder from someone else cannot execute code when it is resumed or reported
(plain ``pickle.loads`` would run whatever the file names).
"""

from __future__ import annotations

import io
import pickle
from typing import Any

__all__ = ["dumps", "loads", "UnsafePickleError"]

# (module, name) pairs a state may name: what numpy arrays and dtypes pickle as
_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset"),
    ("builtins", "complex"), ("builtins", "bytearray"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The data names something other than plain data; it was not loaded."""


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise UnsafePickleError(f"refusing to load {module}.{name}: run state holds plain "
                                f"data only, and loading this could run code")


def dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    return _PlainDataUnpickler(io.BytesIO(data)).load()
