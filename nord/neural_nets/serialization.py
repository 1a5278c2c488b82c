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
one. Reading a file never runs code the file chooses: a class path must name
a registered layer, a ``torch.nn`` class or a class of NORD's layer modules
(found with ``getattr``, never ``eval``; nothing else is imported), and only
``nn.Module`` subclasses are accepted. Register your own classes with
:func:`~nord.neural_nets.layers.register_layer` before reading files that name them.

Writing, and reading a file whose layers are all op strings, never imports
torch: a layer type that is a module class comes from code that imported it.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
import sys
from typing import Any, Dict, List, Optional

from nord.errors import SerializationError, UntrustedLayerError
from nord.neural_nets.neural_descriptor import LayerSpec, NeuralDescriptor

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "class_path",
    "layer_reference",
    "resolve_layer_reference",
    "descriptor_to_json",
    "descriptor_from_json",
    "descriptor_from_file",
    "read_json",
    "LAYER_MODULES",
    "MAX_DEPTH",
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
#: deepest nesting of lists and objects a descriptor file may have
MAX_DEPTH = 64


# ---------------------------------------------------------------- class paths
def _loaded_torch_nn() -> Any:
    """``torch.nn`` if torch is imported already, else ``None`` (never imports it).

    Without torch imported no object can be a ``torch.nn.Module`` class, so
    descriptors of op strings are written without loading torch.
    """
    return sys.modules.get("torch.nn")


def _is_module_class(obj: Any) -> bool:
    module_class = getattr(_loaded_torch_nn(), "Module", None)
    return module_class is not None and inspect.isclass(obj) and issubclass(obj, module_class)


def class_path(cls: type) -> str:
    """The dotted import path of any class, short ``torch.nn.X`` form preferred."""
    if getattr(_loaded_torch_nn(), cls.__name__, None) is cls:
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


#: NORD modules that define layer classes; the only NORD modules a file may make us import
LAYER_MODULES = ("nord.neural_nets.layers", "nord.neural_nets.remnet_layers")


def _torch_nn_suggestion(name: str) -> str:
    import torch.nn

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


def _registered(text: str, registry) -> Optional[type]:
    for cls in registry.classes():
        if text in (class_path(cls), f"{cls.__module__}.{cls.__qualname__}"):
            return cls
    return None


def _walk(owner: Any, parts: List[str], start: int, text: str) -> Any:
    """Follow ``parts[start:]`` from ``owner`` with ``getattr`` (nothing is imported)."""
    for i in range(start, len(parts)):
        prefix = ".".join(parts[:i])
        if parts[i].startswith("__") or not hasattr(owner, parts[i]):
            hint = (_torch_nn_suggestion(parts[i]) if prefix == "torch.nn"
                    else _attribute_suggestion(owner, parts[i], prefix))
            raise SerializationError(
                f"class path {text!r}: {prefix!r} has no attribute {parts[i]!r}{hint}; "
                f"fix the name, or import the module that defines it")
        owner = getattr(owner, parts[i])
    return owner


def resolve_layer_reference(text: str, registry=None) -> type:
    """The ``torch.nn.Module`` subclass that a :func:`layer_reference` path names.

    A file may only name code NORD already trusts: a class registered in
    ``registry`` (the default registry when omitted; see
    :func:`~nord.neural_nets.layers.register_layer`), a ``torch.nn`` class, or
    a class of NORD's layer modules (:data:`LAYER_MODULES`). Nothing else is
    imported, so reading a file never runs code it chooses; anything else
    raises :class:`~nord.errors.UntrustedLayerError`, and a path that does not
    lead to a module class :class:`SerializationError`.
    """
    import torch.nn

    from nord.neural_nets.layers import default_registry

    if not isinstance(text, str) or not text or any(not p for p in text.split(".")):
        raise SerializationError(
            f"a class path is a dotted name such as 'torch.nn.Conv2d', got {_short_repr(text)}")
    registered = _registered(text, registry or default_registry())
    if registered is not None:
        return registered
    parts = text.split(".")
    if parts[:2] == ["torch", "nn"]:
        home = "torch.nn"
        obj = _walk(torch.nn, parts, 2, text)
    else:
        module = next((m for m in LAYER_MODULES if text.startswith(m + ".")), None)
        if module is None:
            hint = _torch_nn_suggestion(parts[-1]) if len(parts) == 1 else ""
            raise UntrustedLayerError(
                f"class path {_short_repr(text)} is neither a torch.nn class, a NORD layer "
                f"nor a registered layer{hint}; files may not choose code to import, so if "
                f"it is your class, import it and register it with "
                f"nord.neural_nets.register_layer({parts[-1]}) before reading the file")
        home = module
        obj = _walk(importlib.import_module(module), parts, module.count(".") + 1, text)
    if not _is_module_class(obj):
        kind = "a class" if inspect.isclass(obj) else type(obj).__name__
        raise SerializationError(
            f"class path {text!r} names {kind} that is not a torch.nn.Module "
            f"subclass; only nn.Module classes can be layer types or class params")
    if not (obj.__module__ == home or obj.__module__.startswith(home + ".")):
        raise UntrustedLayerError(
            f"class path {text!r} leads out of {home} to {obj.__module__}.{obj.__qualname__}; "
            f"files may not choose code to import, so name the class by its own path and "
            f"register it with nord.neural_nets.register_layer({obj.__name__})")
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


def decode_param(value: Any, where: str = "param", registry=None) -> Any:
    """The inverse of :func:`encode_param` (classes resolved as
    :func:`resolve_layer_reference` does, against ``registry``)."""
    if isinstance(value, list):
        return [decode_param(v, f"{where}[{i}]", registry) for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and next(iter(value)) in _MARKERS:
        return _decode_marker(next(iter(value)), next(iter(value.values())), where, registry)
    return {k: decode_param(v, f"{where}[{k!r}]", registry) for k, v in value.items()}


def _decode_marker(marker: str, body: Any, where: str, registry) -> Any:
    if marker == _TUPLE:
        if not isinstance(body, list):
            raise SerializationError(f"{where}: {_TUPLE!r} must hold a list, "
                                     f"got {_short_repr(body)}")
        return tuple(decode_param(v, f"{where}[{i}]", registry) for i, v in enumerate(body))
    if marker == _CLASS:
        try:
            return resolve_layer_reference(body, registry)
        except SerializationError as error:
            raise type(error)(f"{where}: {error}") from error
    if not isinstance(body, dict):
        raise SerializationError(f"{where}: {_DICT!r} must hold an object, "
                                 f"got {_short_repr(body)}")
    return {k: decode_param(v, f"{where}[{k!r}]", registry) for k, v in body.items()}


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
        "next_auto_index": descriptor.next_auto_index,
        "layers": [_layer_entry(name, spec) for name, spec in descriptor.layers.items()],
        "connections": [[src, dst] for src, dst in descriptor.edges()],
    }
    return json.dumps(payload, **dumps_kwargs)


def read_json(data: Any, what: str = "descriptor text") -> Any:
    """The JSON value in ``data`` (text, or bytes that must be UTF-8).

    Raises :class:`SerializationError` (naming ``what``) for bytes that are not
    UTF-8, text that is not JSON, or nesting deeper than :data:`MAX_DEPTH`.
    """
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise SerializationError(
                f"{what} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                f"{error.start} cannot be decoded); save it as UTF-8 JSON") from error
    if not isinstance(data, str):
        raise SerializationError(
            f"{what} must be JSON text, got {type(data).__name__}; read the file first "
            f"(or use descriptor_from_file(path))")
    try:
        value = json.loads(data)
        too_deep = _depth(value) > MAX_DEPTH
    except RecursionError:  # deeper than the parser's own recursion limit
        too_deep = True
    except ValueError as error:
        raise SerializationError(f"{what} is not valid JSON: {error}") from error
    if too_deep:
        raise SerializationError(
            f"{what} nests lists and objects deeper than {MAX_DEPTH} levels, more than any "
            f"NORD file does; it is damaged or not a NORD file")
    return value


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (iterative: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict)
                                                      else item))
    return deepest


def _load_payload(text: Any) -> dict:
    payload = read_json(text)
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


def _read_layer(entry: Any, index: int, registry=None) -> tuple:
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
            layer = resolve_layer_reference(entry["class"], registry)
        except SerializationError as error:
            raise type(error)(f"layer {name!r}: {error}") from error
    params = entry.get("params", {})
    if not isinstance(params, dict):
        raise SerializationError(f"layer {name!r}: 'params' must be an object, "
                                 f"got {_short_repr(params)}")
    decoded = {k: decode_param(v, f"layer {name!r} param {k!r}", registry)
               for k, v in params.items()}
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


def descriptor_from_json(text: str, registry=None) -> NeuralDescriptor:
    """Rebuild the descriptor that :func:`descriptor_to_json` wrote.

    The result compares equal (``==``) to the original, and keeps its automatic
    name counter. Connections to unknown layers are kept as data, so
    :meth:`~NeuralDescriptor.validate` still reports them. Layer classes
    resolve as :func:`resolve_layer_reference` says (against ``registry``).
    """
    payload = _load_payload(text)
    if not isinstance(payload["layers"], list):
        raise SerializationError("'layers' must be a list of layer objects")
    descriptor = NeuralDescriptor()
    for index, entry in enumerate(payload["layers"]):
        name, spec = _read_layer(entry, index, registry)
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
    descriptor.next_auto_index = _auto_index(payload, len(descriptor.layers))
    return descriptor


def _auto_index(payload: dict, default: int) -> int:
    value = payload.get("next_auto_index", default)
    if type(value) is not int or value < 0:
        raise SerializationError(f"'next_auto_index' must be a non-negative integer, got {value!r}")
    return value


def descriptor_from_file(path, registry=None) -> NeuralDescriptor:
    """:func:`descriptor_from_json` of a file's bytes; every problem is a
    :class:`SerializationError` naming the file."""
    from pathlib import Path

    path = Path(path)
    try:
        return descriptor_from_json(path.read_bytes(), registry)
    except SerializationError as error:
        raise type(error)(f"{path}: {error}") from error
