"""The architecture graph IR: :class:`NeuralDescriptor` (thesis §3.2.1).

A descriptor only *describes* a network: named nodes, each a layer type (a
``torch.nn.Module`` subclass or a registered op string) with a parameter dict,
and directed connections between them. It holds no tensors, so it is cheap to
copy, pickle, hash and send between processes.

Example (thesis listing 3.1, shortened)::

    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {'in_channels': 3, 'out_channels': 5, 'kernel_size': 3}, 'conv')
    d.add_layer_sequential(nn.MaxPool2d, {'kernel_size': 2}, 'pool')
    d.validate()
"""

from __future__ import annotations

import copy as _copy
import difflib
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

from nord.errors import (
    CycleError,
    DanglingConnectionError,
    DescriptorError,
    DuplicateLayerError,
    InvalidArgumentError,
    InvalidDescriptorError,
    NoPathError,
    UnknownLayerError,
    UnknownOpError,
)

__all__ = ["NeuralDescriptor", "LayerSpec", "DEFAULT_SUFFIX"]

DEFAULT_SUFFIX = "Layer"


class LayerSpec(NamedTuple):
    """One node of a descriptor: its layer type and its parameters."""

    layer: Any
    params: Dict[str, Any]


class NeuralDescriptor:
    """A directed graph of layers: the description of one architecture.

    Attributes follow the thesis API:

    * ``layers``: name → :class:`LayerSpec` ``(layer, params)``, in insertion order;
    * ``connections``: name → list of destination names, in insertion order
      (every layer has an entry, possibly empty);
    * ``first_layer``: the first layer added, the network's input node;
    * ``last_layer``: the most recently added layer, the network's output node
      (assign it to change which layer is the output, as listing 3.6 does).

    Layers added without a name get ``"<n>_Layer"``, where ``n`` counts the
    layers added so far; code such as listing 3.6 relies on the numeric prefix.
    """

    def __init__(self) -> None:
        self.layers: Dict[str, LayerSpec] = {}
        self.connections: Dict[str, List[str]] = {}
        self.first_layer: Optional[str] = None
        self.last_layer: Optional[str] = None
        self._added = 0

    @property
    def next_auto_index(self) -> int:
        """How many layers were ever added: the number an automatic layer name
        (``<n>_Layer``) starts from. Kept in the JSON form so names stay unique."""
        return self._added

    @next_auto_index.setter
    def next_auto_index(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgumentError(f"next_auto_index must be a whole number of 0 or "
                                       f"more, got {value!r}")
        self._added = value

    # ------------------------------------------------------------------ building
    def add_layer(self, layer: Any, params: Optional[dict] = None,
                  name: Optional[str] = None) -> str:
        """Add an unconnected layer and return its name.

        ``layer`` is a ``torch.nn.Module`` subclass (e.g. ``nn.Conv2d``) or an
        op string registered in :mod:`nord.neural_nets.layers`; ``params`` the
        keyword arguments it is built with (``None`` means none). The new layer
        becomes ``last_layer``; the very first one also becomes ``first_layer``.
        """
        if name is None:
            name = self._next_auto_name()
        elif not isinstance(name, str):
            raise InvalidArgumentError(f"layer names are strings, got {name!r} "
                                       f"({type(name).__name__}); pass str({name!r})")
        if name in self.layers:
            raise DuplicateLayerError(
                f"layer {name!r} already exists; choose another name or "
                f"leave name=None for an automatic '<n>_{DEFAULT_SUFFIX}' name")
        if params is not None and not isinstance(params, dict):
            raise InvalidArgumentError(f"params of layer {name!r} must be a dict or None, "
                                       f"got {type(params).__name__}")
        self.layers[name] = LayerSpec(layer, dict(params or {}))
        self.connections[name] = []
        if self.first_layer is None:
            self.first_layer = name
        self.last_layer = name
        self._added += 1
        return name

    def add_layer_sequential(self, layer: Any, params: Optional[dict] = None,
                             name: Optional[str] = None) -> str:
        """Add a layer fed by the current ``last_layer`` and return its name."""
        previous = self.last_layer
        name = self.add_layer(layer, params, name)
        if previous is not None:
            self.connect_layers(previous, name)
        return name

    def connect_layers(self, from_layer: str, to_layer: str) -> None:
        """Connect ``from_layer``'s output to ``to_layer``'s input.

        Connecting an already connected pair again changes nothing.
        """
        self._require(from_layer)
        self._require(to_layer)
        destinations = self.connections[from_layer]
        if to_layer not in destinations:
            destinations.append(to_layer)

    def disconnect_layers(self, from_layer: str, to_layer: str) -> None:
        """Remove the connection ``from_layer → to_layer``."""
        self._require(from_layer)
        self._require(to_layer)
        destinations = self.connections[from_layer]
        if to_layer not in destinations:
            raise DescriptorError(
                f"there is no connection {from_layer!r} -> {to_layer!r}; "
                f"{from_layer!r} connects to {destinations}")
        destinations.remove(to_layer)

    def remove_layer(self, name: str) -> None:
        """Remove a layer and every connection to or from it.

        If it was the first or last layer, the role passes to the earliest or
        latest remaining layer respectively.
        """
        self._require(name)
        del self.layers[name]
        del self.connections[name]
        for destinations in self.connections.values():
            destinations[:] = [d for d in destinations if d != name]
        names = list(self.layers)
        if self.first_layer == name:
            self.first_layer = names[0] if names else None
        if self.last_layer == name:
            self.last_layer = names[-1] if names else None

    def copy(self) -> "NeuralDescriptor":
        """A deep copy: layer types are shared, params and connections are not."""
        return _copy.deepcopy(self)

    def __deepcopy__(self, memo: dict) -> "NeuralDescriptor":
        new = NeuralDescriptor.__new__(NeuralDescriptor)
        new.layers = {name: LayerSpec(spec.layer, _copy.deepcopy(spec.params, memo))
                      for name, spec in self.layers.items()}
        new.connections = {name: list(dsts) for name, dsts in self.connections.items()}
        new.first_layer = self.first_layer
        new.last_layer = self.last_layer
        new._added = self._added
        return new

    # ------------------------------------------------------------------ queries
    @property
    def incoming_connections(self) -> Dict[str, List[str]]:
        """name → list of source names (derived from ``connections``)."""
        incoming: Dict[str, List[str]] = {name: [] for name in self.layers}
        for src, dsts in self.connections.items():
            for dst in dsts:
                incoming.setdefault(dst, []).append(src)
        return incoming

    def edges(self) -> Iterator[Tuple[str, str]]:
        """All connections as ``(source, destination)`` pairs."""
        for src, dsts in self.connections.items():
            for dst in dsts:
                yield src, dst

    def __len__(self) -> int:
        return len(self.layers)

    def __contains__(self, name: object) -> bool:
        return name in self.layers

    def __eq__(self, other: object) -> bool:
        """Same layers (names, types, params), connections and input/output."""
        if not isinstance(other, NeuralDescriptor):
            return NotImplemented
        return (self.layers == other.layers
                and {k: set(v) for k, v in self.connections.items()}
                == {k: set(v) for k, v in other.connections.items()}
                and self.first_layer == other.first_layer
                and self.last_layer == other.last_layer)

    __hash__ = None  # mutable; use canonical_hash() for an identity

    def __repr__(self) -> str:
        layers = ", ".join(f"{n}={_layer_label(s.layer)}" for n, s in self.layers.items())
        edges = ", ".join(f"{a}->{b}" for a, b in self.edges())
        return (f"NeuralDescriptor(layers=[{layers}], connections=[{edges}], "
                f"first_layer={self.first_layer!r}, last_layer={self.last_layer!r})")

    # ------------------------------------------------------------------ analysis
    def active_layers(self) -> List[str]:
        """Layers on some path from ``first_layer`` to ``last_layer``.

        The others are inactive (thesis Fig. 5.2) and are pruned when the
        network is compiled. Returned in insertion order; empty if no path.
        """
        from nord.neural_nets.graph import active_nodes
        return active_nodes(self)

    def validate(self, registry=None) -> "NeuralDescriptor":
        """Check that the descriptor can be compiled; return it if so.

        Finds every problem at once: connections to unknown layers, cycles
        (each named in order), no path from input to output, and layer types
        that are neither ``nn.Module`` classes nor registered ops. One problem
        raises its specific error; several raise :class:`InvalidDescriptorError`
        whose ``problems`` holds each of them.
        """
        problems = self.problems(registry)
        if len(problems) == 1:
            raise problems[0]
        if problems:
            lines = "\n".join(f"  - {p}" for p in problems)
            layers = [name for p in problems for name in p.layers]
            raise InvalidDescriptorError(
                f"descriptor has {len(problems)} problems:\n{lines}",
                layers=layers, problems=problems)
        return self

    def problems(self, registry=None) -> List[InvalidDescriptorError]:
        """Every problem :meth:`validate` would report, without raising."""
        from nord.neural_nets.graph import find_cycles, active_nodes

        found: List[InvalidDescriptorError] = []
        for src, dst in self.edges():
            missing = [n for n in (src, dst) if n not in self.layers]
            if missing:
                found.append(DanglingConnectionError(
                    f"connection {src!r} -> {dst!r} names unknown layer(s) "
                    f"{missing}{_suggest(missing[0], self.layers)}; add the layer "
                    f"or remove the connection", layers=[src, dst]))
        for name in self.connections:
            if name not in self.layers:
                found.append(DanglingConnectionError(
                    f"connections hold an entry for unknown layer {name!r}"
                    f"{_suggest(name, self.layers)}", layers=[name]))
        for cycle in find_cycles(self):
            arrow = " -> ".join(cycle + [cycle[0]])
            found.append(CycleError(
                f"connections form a cycle: {arrow}; remove one of these "
                f"connections with disconnect_layers()", layers=cycle))
        if not self.layers:
            found.append(NoPathError("descriptor has no layers; add an input "
                                     "layer with add_layer()"))
        elif not active_nodes(self):
            found.append(NoPathError(
                f"no path leads from the input layer {self.first_layer!r} to the "
                f"output layer {self.last_layer!r}; connect them (or set "
                f"first_layer/last_layer to the intended input and output)",
                layers=[self.first_layer, self.last_layer]))
        if registry is None and _only_builtin_ops(self):
            return found  # every layer is one of NORD's own ops: known without torch
        from nord.neural_nets.layers import default_registry
        registry = registry or default_registry()
        for name, spec in self.layers.items():
            problem = registry.why_unknown(spec.layer)
            if problem:
                found.append(UnknownOpError(f"layer {name!r}: {problem}", layers=[name]))
        return found

    def is_valid(self, registry=None) -> bool:
        """True when :meth:`validate` would pass."""
        return not self.problems(registry)

    # ------------------------------------------------------------------ conversions
    def to_json(self, **dumps_kwargs) -> str:
        """JSON text (see :mod:`nord.neural_nets.serialization`)."""
        from nord.neural_nets.serialization import descriptor_to_json
        return descriptor_to_json(self, **dumps_kwargs)

    @classmethod
    def from_json(cls, text: str, registry=None) -> "NeuralDescriptor":
        """Rebuild a descriptor written by :meth:`to_json` (text or UTF-8 bytes).

        Layer classes must be registered (in ``registry``, by default the
        default one), ``torch.nn`` classes or NORD's; see
        :func:`~nord.neural_nets.serialization.resolve_layer_reference`.
        """
        from nord.neural_nets.serialization import descriptor_from_json
        return descriptor_from_json(text, registry)

    @classmethod
    def from_file(cls, path, registry=None) -> "NeuralDescriptor":
        """:meth:`from_json` of a file; errors name the file."""
        from nord.neural_nets.serialization import descriptor_from_file
        return descriptor_from_file(path, registry)

    def to_networkx(self):
        """A ``networkx.DiGraph``; nodes carry ``layer``, ``params`` and ``role``."""
        from nord.neural_nets.visualization import to_networkx
        return to_networkx(self)

    def to_dot(self) -> str:
        """Graphviz DOT text of the graph (inactive layers dashed)."""
        from nord.neural_nets.visualization import to_dot
        return to_dot(self)

    def plot(self, path=None, ax=None):
        """Draw the graph with matplotlib; save a PNG when ``path`` is given."""
        from nord.neural_nets.visualization import plot_descriptor
        return plot_descriptor(self, path=path, ax=ax)

    def canonical_hash(self) -> str:
        """Isomorphism-invariant hash of the active graph (see :mod:`graph_hash`)."""
        from nord.neural_nets.graph_hash import descriptor_hash
        return descriptor_hash(self)

    # ------------------------------------------------------------------ helpers
    def _next_auto_name(self) -> str:
        n = self._added
        while f"{n}_{DEFAULT_SUFFIX}" in self.layers:
            n += 1
        return f"{n}_{DEFAULT_SUFFIX}"

    def _require(self, name: str) -> None:
        if name not in self.layers:
            raise UnknownLayerError(
                f"no layer named {name!r}{_suggest(name, self.layers)}; "
                f"known layers: {list(self.layers)}")


def _only_builtin_ops(descriptor: "NeuralDescriptor") -> bool:
    """Whether every layer is an op string NORD registers itself, and no code has
    loaded the layer registry (where a user could have replaced one): then the
    layers are known without importing torch."""
    import sys
    from nord.neural_nets.builtin_ops import BUILTIN_OPS
    return "nord.neural_nets.layers" not in sys.modules and all(
        isinstance(spec.layer, str) and spec.layer in BUILTIN_OPS
        for spec in descriptor.layers.values())


def _suggest(name: object, known) -> str:
    matches = difflib.get_close_matches(str(name), [str(k) for k in known], n=3)
    return f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""


def _layer_label(layer: Any) -> str:
    return layer if isinstance(layer, str) else getattr(layer, "__name__", repr(layer))
