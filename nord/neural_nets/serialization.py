"""JSON text for :class:`~nord.neural_nets.neural_descriptor.NeuralDescriptor`.

The format (``version`` 1) is plain JSON::

    {"format": "nord.NeuralDescriptor", "version": 1,
     "first_layer": "conv", "last_layer": "pool", "next_auto_index": 2,
     "layers": [{"name": "conv", "class": "torch.nn.Conv2d",
                 "params": {"in_channels": 3, "kernel_size": {"__tuple__": [3, 3]}}},
                {"name": "pool", "op": "maxpool3x3", "params": {}}],
     "connections": [["conv", "pool"]]}

Layers appear in insertion order. A layer type is either an op string
(``"op"``) or a ``torch.nn.Module`` subclass written as its import path
(``"class"``). Parameters round-trip exactly: JSON values stay as they are,
tuples become ``{"__tuple__": [...]}`` and ``nn.Module`` classes
``{"__class__": "torch.nn.ReLU"}``; a dict whose only key is one of those
markers is wrapped as ``{"__dict__": {...}}`` so it cannot be mistaken for
one. Class paths are resolved with :mod:`importlib` and ``getattr`` only,
never ``eval``, and only ``nn.Module`` subclasses are accepted.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import sys
from typing import Any, Dict, List, Optional

import torch

from nord.errors import SerializationError
from nord.neural_nets.neural_descriptor import LayerSpec, NeuralDescriptor

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "class_path",
    "layer_reference",
    "resolve_layer_reference",
    "descriptor_to_json",
    "descriptor_from_json",
    "encode_param",
    "decode_param",
]

FORMAT_NAME = "nord.NeuralDescriptor"
FORMAT_VERSION = 1

_TUPLE = "__tuple__"
_CLASS = "__class__"
_DICT = "__dict__"
_MARKERS = (_TUPLE, _CLASS, _DICT)
_JSON_SCALARS = (bool, int, float, str, type(None))


# ---------------------------------------------------------------- class paths
def _is_module_class(obj: Any) -> bool:
    return inspect.isclass(obj) and issubclass(obj, torch.nn.Module)


def class_path(cls: type) -> str:
    """The dotted import path of any class, short ``torch.nn.X`` form preferred."""
    if getattr(torch.nn, cls.__name__, None) is cls:
        return f"torch.nn.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _found_again(cls: type) -> bool:
    """Whether ``cls`` can be looked up again through its module and qualname."""
    obj: Any = sys.modules.get(cls.__module__)
    for part in cls.__qualname__.split("."):
        obj = getattr(obj, part, None)
    return obj is cls


def layer_reference(layer: Any) -> str:
    """Text naming a layer type: an op string itself, a module class its import path.

    ``nn.Conv2d`` becomes ``"torch.nn.Conv2d"`` (the public short path), a
    class of your own ``"your_package.module.ClassName"``. Raises
    :class:`SerializationError` for anything else, or for a class that cannot
    be imported back (one defined inside a function, say).
    """
    if isinstance(layer, str):
        return layer
    if not _is_module_class(layer):
        raise SerializationError(
            f"a layer type must be an op string or a torch.nn.Module subclass, got "
            f"{layer!r} ({type(layer).__name__}); pass the class itself (nn.Conv2d, "
            f"not nn.Conv2d(...)) or a registered op name")
    if not _found_again(layer):
        raise SerializationError(
            f"class {layer.__qualname__!r} cannot be imported back from module "
            f"{layer.__module__!r} (classes defined inside a function, or replaced "
            f"after definition, have no import path); define it at module level")
    return class_path(layer)


def _import_longest_prefix(parts: List[str], text: str):
    """Import the longest importable prefix of ``parts``; return (module, n_used)."""
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        try:
            return importlib.import_module(name), n
        except ModuleNotFoundError as error:
            if error.name is not None and not (name == error.name
                                               or name.startswith(error.name + ".")):
                raise SerializationError(
                    f"class path {text!r}: importing module {name!r} failed because it "
                    f"needs the missing module {error.name!r}; install it") from error
        except Exception as error:  # noqa: BLE001 - any import failure is reported
            raise SerializationError(
                f"class path {text!r}: importing module {name!r} raised "
                f"{type(error).__name__}: {error}") from error
    return None, 0


def _torch_nn_suggestion(name: str) -> str:
    candidates = [n for n in dir(torch.nn) if _is_module_class(getattr(torch.nn, n, None))]
    matches = difflib.get_close_matches(name, candidates, n=3)
    if not matches:
        return ""
    return " (did you mean " + ", ".join(f"'torch.nn.{m}'" for m in matches) + "?)"


def _attribute_suggestion(owner: Any, name: str, prefix: str) -> str:
    matches = difflib.get_close_matches(name, [n for n in dir(owner) if not n.startswith("_")], n=3)
    if not matches:
        return ""
    return " (did you mean " + ", ".join(f"'{prefix}.{m}'" for m in matches) + "?)"


def resolve_layer_reference(text: str) -> type:
    """The ``torch.nn.Module`` subclass that a :func:`layer_reference` path names.

    Imports the longest importable module prefix of ``text`` and follows the
    rest with ``getattr``; nothing is evaluated (but importing a module runs
    its top-level code, so read descriptors from trusted sources only). Raises
    :class:`SerializationError` saying what was wrong when the path does not
    lead to a module class.
    """
    if not isinstance(text, str) or not text or any(not p for p in text.split(".")):
        raise SerializationError(
            f"a class path is a dotted name such as 'torch.nn.Conv2d', got {text!r}")
    parts = text.split(".")
    obj, used = _import_longest_prefix(parts, text)
    if obj is None:
        hint = _torch_nn_suggestion(parts[-1])
        raise SerializationError(
            f"class path {text!r}: no importable module found{hint}; write the full "
            f"path ('package.module.ClassName') and make sure that package is installed")
    for i in range(used, len(parts)):
        prefix = ".".join(parts[:i])
        if not hasattr(obj, parts[i]):
            hint = (_torch_nn_suggestion(parts[i]) if prefix == "torch.nn"
                    else _attribute_suggestion(obj, parts[i], prefix))
            raise SerializationError(
                f"class path {text!r}: {prefix!r} has no attribute {parts[i]!r}{hint}; "
                f"fix the name, or import the module that defines it")
        obj = getattr(obj, parts[i])
    if not _is_module_class(obj):
        kind = "a class" if inspect.isclass(obj) else type(obj).__name__
        raise SerializationError(
            f"class path {text!r} names {kind} that is not a torch.nn.Module "
            f"subclass; only nn.Module classes can be layer types or class params")
    return obj


# ---------------------------------------------------------------- params
def encode_param(value: Any, where: str = "param") -> Any:
    """A JSON-ready form of one parameter value (see the module docstring).

    ``where`` names the value in error messages.
    """
    if type(value) in _JSON_SCALARS:
        return value
    if type(value) is tuple:
        return {_TUPLE: [encode_param(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if type(value) is list:
        return [encode_param(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if type(value) is dict:
        return _encode_dict(value, where)
    if inspect.isclass(value):
        if not _is_module_class(value):
            raise SerializationError(
                f"{where} is the class {value!r}, which is not a torch.nn.Module "
                f"subclass; only module classes can be stored (pass a name string "
                f"and map it yourself)")
        return {_CLASS: layer_reference(value)}
    raise SerializationError(
        f"{where} = {_short_repr(value)} ({type(value).__name__}) cannot be written "
        f"to JSON; use numbers, strings, booleans, None, lists, tuples, dicts with "
        f"string keys or torch.nn.Module classes (e.g. int(x) for a numpy integer)")


def _encode_dict(value: dict, where: str) -> dict:
    out = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise SerializationError(
                f"{where} has the non-string key {key!r}; JSON keys are strings, "
                f"so use string keys")
        out[key] = encode_param(item, f"{where}[{key!r}]")
    if len(out) == 1 and next(iter(out)) in _MARKERS:
        return {_DICT: out}
    return out


def decode_param(value: Any, where: str = "param") -> Any:
    """The inverse of :func:`encode_param`."""
    if isinstance(value, list):
        return [decode_param(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and next(iter(value)) in _MARKERS:
        return _decode_marker(next(iter(value)), next(iter(value.values())), where)
    return {k: decode_param(v, f"{where}[{k!r}]") for k, v in value.items()}


def _decode_marker(marker: str, body: Any, where: str) -> Any:
    if marker == _TUPLE:
        if not isinstance(body, list):
            raise SerializationError(f"{where}: {_TUPLE!r} must hold a list, got {body!r}")
        return tuple(decode_param(v, f"{where}[{i}]") for i, v in enumerate(body))
    if marker == _CLASS:
        try:
            return resolve_layer_reference(body)
        except SerializationError as error:
            raise SerializationError(f"{where}: {error}") from error
    if not isinstance(body, dict):
        raise SerializationError(f"{where}: {_DICT!r} must hold an object, got {body!r}")
    return {k: decode_param(v, f"{where}[{k!r}]") for k, v in body.items()}


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---------------------------------------------------------------- descriptors
def _layer_entry(name: str, spec: LayerSpec) -> dict:
    if isinstance(spec.layer, str):
        entry: Dict[str, Any] = {"name": name, "op": spec.layer}
    else:
        try:
            entry = {"name": name, "class": layer_reference(spec.layer)}
        except SerializationError as error:
            raise SerializationError(f"layer {name!r}: {error}") from error
    entry["params"] = {key: encode_param(value, f"layer {name!r} param {key!r}")
                       for key, value in _string_keyed(spec.params, name).items()}
    return entry


def _string_keyed(params: dict, name: str) -> dict:
    for key in params:
        if not isinstance(key, str):
            raise SerializationError(
                f"layer {name!r} has the non-string param key {key!r}; params are "
                f"keyword arguments, so their keys must be strings")
    return params


def descriptor_to_json(descriptor: NeuralDescriptor, **dumps_kwargs) -> str:
    """JSON text describing ``descriptor``; ``dumps_kwargs`` go to :func:`json.dumps`."""
    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "first_layer": descriptor.first_layer,
        "last_layer": descriptor.last_layer,
        "next_auto_index": descriptor._added,
        "layers": [_layer_entry(name, spec) for name, spec in descriptor.layers.items()],
        "connections": [[src, dst] for src, dst in descriptor.edges()],
    }
    return json.dumps(payload, **dumps_kwargs)


def _load_payload(text: Any) -> dict:
    if not isinstance(text, (str, bytes, bytearray)):
        raise SerializationError(
            f"descriptor JSON must be text, got {type(text).__name__}; read the file "
            f"first (descriptor_from_json(path.read_text()))")
    try:
        payload = json.loads(text)
    except ValueError as error:
        raise SerializationError(f"descriptor text is not valid JSON: {error}") from error
    if not isinstance(payload, dict):
        raise SerializationError(
            f"descriptor JSON must be an object, got {type(payload).__name__}")
    if payload.get("format") != FORMAT_NAME:
        raise SerializationError(
            f"JSON is not a NORD descriptor: 'format' is {payload.get('format')!r}, "
            f"expected {FORMAT_NAME!r}; write it with NeuralDescriptor.to_json()")
    version = payload.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise SerializationError(
            f"descriptor JSON has version {version!r}, this NORD reads version "
            f"{FORMAT_VERSION}; upgrade NORD or rewrite the file with this version")
    missing = [k for k in ("first_layer", "last_layer", "layers", "connections")
               if k not in payload]
    if missing:
        raise SerializationError(f"descriptor JSON lacks the key(s) {missing}; "
                                 f"write it with NeuralDescriptor.to_json()")
    return payload


def _read_layer(entry: Any, index: int) -> tuple:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise SerializationError(
            f"layers[{index}] must be an object with a string 'name', got {_short_repr(entry)}")
    name = entry["name"]
    if ("op" in entry) == ("class" in entry):
        raise SerializationError(
            f"layer {name!r} must have exactly one of 'op' (an op string) or "
            f"'class' (a torch.nn.Module path)")
    if "op" in entry:
        if not isinstance(entry["op"], str):
            raise SerializationError(f"layer {name!r}: 'op' must be a string, got {entry['op']!r}")
        layer = entry["op"]
    else:
        try:
            layer = resolve_layer_reference(entry["class"])
        except SerializationError as error:
            raise SerializationError(f"layer {name!r}: {error}") from error
    params = entry.get("params", {})
    if not isinstance(params, dict):
        raise SerializationError(f"layer {name!r}: 'params' must be an object, got {params!r}")
    decoded = {k: decode_param(v, f"layer {name!r} param {k!r}") for k, v in params.items()}
    return name, LayerSpec(layer, decoded)


def _read_connections(connections: Any) -> List[tuple]:
    if not isinstance(connections, list):
        raise SerializationError("'connections' must be a list of [source, destination] pairs")
    pairs = []
    for i, pair in enumerate(connections):
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(n, str) for n in pair)):
            raise SerializationError(
                f"connections[{i}] must be a [source, destination] pair of layer "
                f"names, got {_short_repr(pair)}")
        pairs.append((pair[0], pair[1]))
    return pairs


def _role(payload: dict, key: str) -> Optional[str]:
    value = payload[key]
    if value is not None and not isinstance(value, str):
        raise SerializationError(f"{key!r} must be a layer name or null, got {value!r}")
    return value


def descriptor_from_json(text: str) -> NeuralDescriptor:
    """Rebuild the descriptor that :func:`descriptor_to_json` wrote.

    The result compares equal (``==``) to the original, and keeps its automatic
    name counter. Connections to unknown layers are kept as data, so
    :meth:`~NeuralDescriptor.validate` still reports them.
    """
    payload = _load_payload(text)
    if not isinstance(payload["layers"], list):
        raise SerializationError("'layers' must be a list of layer objects")
    descriptor = NeuralDescriptor()
    for index, entry in enumerate(payload["layers"]):
        name, spec = _read_layer(entry, index)
        if name in descriptor.layers:
            raise SerializationError(f"layer name {name!r} appears twice in 'layers'; "
                                     f"layer names must be unique")
        descriptor.layers[name] = spec
        descriptor.connections[name] = []
    for src, dst in _read_connections(payload["connections"]):
        destinations = descriptor.connections.setdefault(src, [])
        if dst not in destinations:
            destinations.append(dst)
    descriptor.first_layer = _role(payload, "first_layer")
    descriptor.last_layer = _role(payload, "last_layer")
    descriptor._added = _auto_index(payload, len(descriptor.layers))
    return descriptor


def _auto_index(payload: dict, default: int) -> int:
    value = payload.get("next_auto_index", default)
    if type(value) is not int or value < 0:
        raise SerializationError(f"'next_auto_index' must be a non-negative integer, got {value!r}")
    return value
