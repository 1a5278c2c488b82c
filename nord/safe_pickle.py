"""The one way NORD reads pickles: an unpickler that refuses to run code.

Three kinds of file NORD reads are pickles: a strategy's state in a run
store (populations, generator states, replay memories), the official CIFAR-10
batches, and the networks an RL agent's state holds as ``torch.save`` bytes.
Plain ``pickle.loads`` would import and call whatever such a file names, so a
run folder or data set from someone else could execute code. Here every file
is read by one unpickler, :class:`Unpickler`, that resolves only the names of
an allow-list (an :class:`Allow`) and refuses anything else with
:class:`~nord.errors.UnsafePickleError`:

* :data:`PLAIN_DATA` (run state, the default of :func:`loads`): builtin
  containers and numbers, strings, bytes, and numpy arrays and scalars;
* :data:`NUMPY_ARRAYS` (CIFAR-10 batches, written by Python 2): numpy arrays
  and the ``_codecs.encode`` that protocol 0-2 pickles write bytes with; read
  them with ``encoding="bytes"``;
* :data:`TORCH_TENSORS` (``torch.save`` archives, read by :func:`load_torch`):
  each tensor comes back as a numpy array, rebuilt here (torch is not even
  imported), with its view checked to lie inside its storage.

:func:`split` and :func:`join` let a store save a large state incrementally:
``split`` swaps each large numeric array for a reference to content-addressed
chunks of whole rows, so a ring buffer that changed in a few rows shares all
its other chunks with the previous save; ``join`` puts the arrays back.
"""

from __future__ import annotations

import codecs
import collections
import hashlib
import importlib
import io
import pickle
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from nord.errors import DamagedPickleError, MissingChunksError, UnsafePickleError

__all__ = ["dumps", "loads", "load_torch", "split", "join", "Allow", "Unpickler",
           "PLAIN_DATA", "NUMPY_ARRAYS", "TORCH_TENSORS", "UnsafePickleError",
           "DamagedPickleError", "PlainRecord", "CHUNK_BYTES"]

#: the size of one chunk of a large array (whole rows; an array this big or bigger is chunked)
CHUNK_BYTES = 16 * 1024
_CHUNKS = "__nord_chunks__"
_NUMERIC = "biufc"  # bool, signed, unsigned, float, complex: arrays that hold no objects


@dataclass(frozen=True, eq=False)
class Allow:
    """An allow-list: the ``(module, name)`` globals one kind of pickle may name, each
    mapped to what it loads as; ``holds`` says what that kind holds, for refusals."""

    holds: str
    names: Mapping[Tuple[str, str], Any] = field(default_factory=dict)


class Unpickler(pickle.Unpickler):
    """An unpickler that resolves the globals of ``allow`` and refuses every other.

    ``persistent_load``: how persistent ids are resolved (``None``: a pickle holding
    one is refused); ``options`` go to :class:`pickle.Unpickler` (``encoding``...).
    """

    def __init__(self, file, allow: Allow,
                 persistent_load: Optional[Callable[[Any], Any]] = None, **options: Any) -> None:
        super().__init__(file, **options)
        self.allow = allow
        self._persistent = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allow.names[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refusing to load {module}.{name}: {self.allow.holds}, "
                                    f"and loading this could run code") from None

    def persistent_load(self, saved_id: Any) -> Any:
        if self._persistent is None:
            raise UnsafePickleError(f"refusing a persistent reference ({saved_id!r:.60}): "
                                    f"{self.allow.holds}")
        return self._persistent(saved_id)


class PlainRecord:
    """A record from an older run state, rebuilt as a bare bag of attributes.

    The RL agent once saved its episode steps as a dataclass; such a state
    loads as these (``object.__new__`` and a ``__dict__`` update: no code runs).
    """


def _numpy_names() -> Dict[Tuple[str, str], Any]:
    """What numpy arrays, dtypes and scalars pickle as, under numpy 1 and 2 names alike
    (numpy 2 moved ``numpy.core`` to ``numpy._core``; either may have written a file)."""
    names: Dict[Tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray,
                                         ("numpy", "dtype"): np.dtype}
    for submodule, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                            ("numeric", "_frombuffer")):
        found = _numpy_internal(submodule, name)
        if found is not None:
            for package in ("numpy.core", "numpy._core"):
                names[(f"{package}.{submodule}", name)] = found
    return names


def _numpy_internal(submodule: str, name: str) -> Any:
    for package in ("numpy._core", "numpy.core"):  # the current name first: no warning
        try:
            return getattr(importlib.import_module(f"{package}.{submodule}"), name)
        except (ImportError, AttributeError):
            continue
    return None


_NUMPY = _numpy_names()

#: run state: builtin containers and numbers, strings, bytes, numpy arrays and scalars
PLAIN_DATA = Allow("run state holds plain data only", {
    **_NUMPY,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex, ("builtins", "bytearray"): bytearray,
    # old names of plain records, each loaded as a PlainRecord
    ("nord.design.strategies.reinforcement", "Transition"): PlainRecord,
})

#: numpy data files such as the CIFAR-10 batches: numpy arrays and plain Python values
NUMPY_ARRAYS = Allow("only numpy arrays and plain Python values are allowed", {
    **_NUMPY,
    ("_codecs", "encode"): codecs.encode,  # how protocol 0-2 pickles write bytes
})


def dumps(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes, allow: Allow = PLAIN_DATA, encoding: str = "ASCII",
          errors: str = "strict") -> Any:
    """The value pickled in ``data``, naming only what ``allow`` holds.

    ``encoding`` and ``errors`` say how to read Python 2 strings (as
    :func:`pickle.loads`; ``encoding="bytes"`` keeps them as bytes).
    """
    return Unpickler(io.BytesIO(data), allow, encoding=encoding, errors=errors).load()


# --- torch.save archives, as numpy arrays ---------------------------------------

@dataclass(frozen=True)
class _Storage:
    """A torch storage type named in an archive (``torch.FloatStorage``): its dtype."""

    name: str
    dtype: np.dtype


_STORAGES = {"FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2",
             "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2",
             "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "b1",
             "ComplexFloatStorage": "c8", "ComplexDoubleStorage": "c16"}


def _rebuild_array(storage: np.ndarray, offset: int, size, stride, *ignored: Any) -> np.ndarray:
    """A tensor as torch pickles it (``torch._utils._rebuild_tensor_v2``): a strided view
    of ``storage`` from ``offset``, here copied to a numpy array; a view reaching
    outside its storage is refused (it would read memory the file does not hold)."""
    shape, steps = _ints(size), _ints(stride)
    if (not isinstance(storage, np.ndarray) or shape is None or steps is None
            or len(shape) != len(steps) or not isinstance(offset, int) or offset < 0
            or any(n < 0 for n in shape + steps)):
        raise UnsafePickleError(f"refusing a tensor of size {size!r:.40} and stride "
                                f"{stride!r:.40}: not the tensor layout torch.save writes")
    if 0 in shape:
        return np.empty(shape, dtype=storage.dtype.newbyteorder("="))
    last = offset + sum((n - 1) * step for n, step in zip(shape, steps))
    if last >= len(storage):
        raise UnsafePickleError(f"refusing a tensor of size {tuple(shape)} at offset {offset} "
                                f"of a storage of {len(storage)} elements: it reaches "
                                f"outside its storage")
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=shape, strides=[step * storage.itemsize for step in steps],
        writeable=False)
    return view.astype(storage.dtype.newbyteorder("="))  # a copy, in native byte order


def _ints(values: Any) -> Optional[list]:
    if not isinstance(values, (tuple, list)) or not all(type(v) is int for v in values):
        return None
    return list(values)


def _rebuild_parameter(data: Any, *ignored: Any) -> Any:
    return data


#: ``torch.save`` archives: tensors (read as numpy arrays) in dicts, lists and tuples
TORCH_TENSORS = Allow("a torch.save archive may hold only tensors and plain data", {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_array,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _Storage(name, np.dtype(code)) for name, code in _STORAGES.items()},
})


def load_torch(data: bytes) -> Any:
    """What ``torch.save`` (its zip format, torch 1.6 and later) wrote into ``data``,
    with each tensor as a numpy array (``torch.from_numpy`` makes it a tensor again),
    read by :class:`Unpickler` with :data:`TORCH_TENSORS`: nothing else loads."""
    import zipfile
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        pickles = [name for name in archive.namelist()
                   if name.endswith("/data.pkl") and name.count("/") == 1]
    except (zipfile.BadZipFile, OSError, ValueError, TypeError) as error:
        raise DamagedPickleError(f"not a torch.save archive ({error})") from error
    if len(pickles) != 1:
        raise DamagedPickleError(f"not a torch.save archive: {len(pickles)} data.pkl records "
                                 f"where there is one")
    prefix = pickles[0][:-len("data.pkl")]
    order = _byte_order(archive, prefix)
    storages: Dict[str, np.ndarray] = {}

    def storage(saved_id: Any) -> np.ndarray:
        if not (isinstance(saved_id, tuple) and len(saved_id) == 5 and saved_id[0] == "storage"
                and isinstance(saved_id[1], _Storage) and isinstance(saved_id[2], str)
                and type(saved_id[4]) is int):
            raise UnsafePickleError(f"refusing the persistent reference {saved_id!r:.60}: "
                                    f"{TORCH_TENSORS.holds}")
        _, kind, key, _location, numel = saved_id
        if key not in storages:
            storages[key] = _read_storage(archive, f"{prefix}data/{key}",
                                          kind.dtype.newbyteorder(order), numel)
        return storages[key]

    try:
        raw = archive.read(pickles[0])
        return Unpickler(io.BytesIO(raw), TORCH_TENSORS, storage, encoding="utf-8").load()
    except (UnsafePickleError, DamagedPickleError):
        raise
    except Exception as error:  # a truncated pickle or archive
        raise DamagedPickleError(f"a damaged torch.save archive ({type(error).__name__}: "
                                 f"{error})") from error


def _byte_order(archive, prefix: str) -> str:
    try:
        order = archive.read(f"{prefix}byteorder").decode()
    except KeyError:
        return "<"  # written before torch recorded it: little-endian
    if order not in ("little", "big"):
        raise DamagedPickleError(f"a torch.save archive of byte order {order!r:.20}")
    return "<" if order == "little" else ">"


def _read_storage(archive, name: str, dtype: np.dtype, numel: int) -> np.ndarray:
    """One storage record: exactly ``numel`` elements of ``dtype``."""
    try:
        size = archive.getinfo(name).file_size
    except KeyError:
        raise DamagedPickleError(f"a torch.save archive without its record {name}") from None
    if numel < 0 or size != numel * dtype.itemsize:
        raise DamagedPickleError(f"the record {name} of a torch.save archive holds {size} "
                                 f"bytes, not the {numel} {dtype} elements it should")
    return np.frombuffer(archive.read(name), dtype=dtype)


# --- incremental saving ------------------------------------------------------------

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
