"""NEAT-style genomes: layer genes and connection genes (thesis §4.2.1, §6.3.1).

A :class:`Genome` is immutable: every operation returns a new genome, so a
parent handed to ``mutate`` can never change. It holds

* ``layers``: one :class:`LayerGene` ``(node, layer)`` per hidden node, in
  order of age (node ids come from a counter, ``next_node``, and only grow);
* ``connections``: one :class:`ConnectionGene` ``(source, target, enabled)``
  per connection ever made, in order of creation. Disabled genes are kept:
  chapter 6 re-activates them to form skip connections;
* ``input_node`` and ``output_node``: the ids of the network's input and
  output (chapter 6: −2 and 99; chapter 5: −2 and −1). They are never hidden
  ids: the counter skips them.

The graph of all genes, enabled or not, is kept acyclic, so enabling any gene
can never close a cycle. A hidden node is *active* when it lies on a path of
enabled genes from the input to the output; the others are pruned when the
network is compiled. Example::

    g = Genome.minimal(-2, 99)                 # -2 -> 99
    g = g.insert_node(0, "CONV_3.N")           # -2 -> 0 -> 99, -2 -> 99 disabled
    g.active_nodes()                           # (-2, 0, 99)
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, Iterable, List, Sequence, Set, Tuple

from nord.errors import OutOfSearchSpaceError, SerializationError

__all__ = ["LayerGene", "ConnectionGene", "Genome", "choose"]


def choose(rng, items: Sequence[Any]) -> Any:
    """One item of a non-empty sequence, drawn with the generator ``rng``."""
    return items[int(rng.integers(len(items)))]


@dataclass(frozen=True)
class LayerGene:
    """A hidden node: its id (its age) and what it computes."""

    node: int
    layer: Any


@dataclass(frozen=True)
class ConnectionGene:
    """A connection ``source → target``; disabled genes stay in the genome."""

    source: int
    target: int
    enabled: bool = True


@dataclass(frozen=True)
class Genome:
    """Layer and connection genes; see the module docstring."""

    layers: Tuple[LayerGene, ...]
    connections: Tuple[ConnectionGene, ...]
    input_node: int = -2
    output_node: int = 99
    next_node: int = 0

    # ------------------------------------------------------------ building
    @classmethod
    def minimal(cls, input_node: int = -2, output_node: int = 99) -> "Genome":
        """No hidden node, one enabled connection from the input to the output."""
        genome = cls((), (ConnectionGene(input_node, output_node),), input_node, output_node, 0)
        return replace(genome, next_node=genome._fresh_id(0))

    def insert_node(self, connection: int, layer: Any) -> "Genome":
        """Split connection number ``connection``: ``a → new → b``, ``a → b`` disabled.

        The new node gets the next id; the split gene is kept, disabled.
        """
        gene = self.connections[connection]
        node = self.next_node
        connections = list(self.connections)
        connections[connection] = replace(gene, enabled=False)
        connections += [ConnectionGene(gene.source, node), ConnectionGene(node, gene.target)]
        return replace(self, layers=self.layers + (LayerGene(node, layer),),
                       connections=tuple(connections), next_node=self._fresh_id(node + 1))

    def set_enabled(self, connection: int, enabled: bool) -> "Genome":
        """Connection number ``connection`` enabled or disabled."""
        connections = list(self.connections)
        connections[connection] = replace(connections[connection], enabled=bool(enabled))
        return replace(self, connections=tuple(connections))

    def toggle(self, connection: int) -> "Genome":
        """Connection number ``connection`` with its state flipped."""
        return self.set_enabled(connection, not self.connections[connection].enabled)

    def add_connection(self, source: int, target: int) -> "Genome":
        """An enabled ``source → target``: a disabled gene is re-enabled, else one is added.

        Raises :class:`OutOfSearchSpaceError` if the connection would close a
        cycle or leave the output / enter the input.
        """
        if not self.can_connect(source, target):
            raise OutOfSearchSpaceError(
                f"cannot connect {source} -> {target}: connections must not enter the "
                f"input, leave the output or close a cycle; pick a pair from connectable()")
        for index, gene in enumerate(self.connections):
            if (gene.source, gene.target) == (source, target):
                return self.set_enabled(index, True)
        return replace(self, connections=self.connections + (ConnectionGene(source, target),))

    def replace_layer(self, node: int, layer: Any) -> "Genome":
        """Node ``node`` computing ``layer`` instead."""
        if node not in self.hidden_nodes:
            raise OutOfSearchSpaceError(f"genome has no hidden node {node}; hidden nodes: "
                                        f"{list(self.hidden_nodes)}")
        return replace(self, layers=tuple(LayerGene(g.node, layer) if g.node == node else g
                                          for g in self.layers))

    def _fresh_id(self, candidate: int) -> int:
        while candidate in (self.input_node, self.output_node):
            candidate += 1
        return candidate

    # ------------------------------------------------------------ queries
    @property
    def hidden_nodes(self) -> Tuple[int, ...]:
        """Hidden node ids, oldest first."""
        return tuple(g.node for g in self.layers)

    @property
    def nodes(self) -> Tuple[int, ...]:
        """Every node id: the input, the hidden nodes (oldest first), the output."""
        return (self.input_node,) + self.hidden_nodes + (self.output_node,)

    def layer(self, node: int) -> Any:
        """What hidden node ``node`` computes."""
        for gene in self.layers:
            if gene.node == node:
                return gene.layer
        raise OutOfSearchSpaceError(f"genome has no hidden node {node}; hidden nodes: "
                                    f"{list(self.hidden_nodes)}")

    def enabled(self) -> Tuple[int, ...]:
        """Indices of the enabled connection genes."""
        return tuple(i for i, g in enumerate(self.connections) if g.enabled)

    def edges(self, enabled_only: bool = True) -> List[Tuple[int, int]]:
        """``(source, target)`` of the (enabled) connection genes, in gene order."""
        return [(g.source, g.target) for g in self.connections if g.enabled or not enabled_only]

    def reaches(self, start: int, goal: int, enabled_only: bool = False) -> bool:
        """Whether a path of (enabled) genes leads from ``start`` to ``goal``."""
        return goal in _reachable(start, _adjacency(self.edges(enabled_only)))

    def can_connect(self, source: int, target: int) -> bool:
        """Whether ``source → target`` keeps the gene graph acyclic and the roles intact."""
        known = set(self.nodes)
        return (source in known and target in known and source != target
                and source != self.output_node and target != self.input_node
                and not self.reaches(target, source))

    def connectable(self, reenable: bool = True) -> List[Tuple[int, int]]:
        """Pairs that :meth:`add_connection` would change, in a fixed order.

        With ``reenable=False`` only pairs without any gene (enabled or not):
        a disabled gene stays disabled.
        """
        existing = set(self.edges(enabled_only=reenable))
        return [(a, b) for a in self.nodes for b in self.nodes
                if (a, b) not in existing and self.can_connect(a, b)]

    def active_nodes(self) -> Tuple[int, ...]:
        """Nodes on an enabled path from the input to the output (``nodes`` order).

        Empty when no such path exists: the genome is invalid.
        """
        edges = self.edges()
        forward = _reachable(self.input_node, _adjacency(edges))
        if self.output_node not in forward:
            return ()
        backward = _reachable(self.output_node, _adjacency([(b, a) for a, b in edges]))
        return tuple(n for n in self.nodes if n in forward and n in backward)

    def has_path(self) -> bool:
        """Whether enabled genes connect the input to the output."""
        return bool(self.active_nodes())

    def active_order(self) -> List[Tuple[int, List[int]]]:
        """Active nodes in topological order (oldest first among ready ones), each
        with its active sources."""
        active = self.active_nodes()
        keep = set(active)
        sources: Dict[int, List[int]] = {n: [] for n in active}
        for a, b in self.edges():
            if a in keep and b in keep:
                sources[b].append(a)
        rank = {n: i for i, n in enumerate(active)}
        done: Set[int] = set()
        order = []
        while len(order) < len(active):
            ready = [n for n in active if n not in done and all(s in done for s in sources[n])]
            node = min(ready, key=rank.__getitem__)
            done.add(node)
            order.append((node, sorted(sources[node], key=rank.__getitem__)))
        return order

    # ------------------------------------------------------------ checking, JSON
    def check(self) -> "Genome":
        """Raise :class:`OutOfSearchSpaceError` unless the invariants hold; return self."""
        hidden = list(self.hidden_nodes)
        problems = []
        if len(set(hidden)) != len(hidden) or hidden != sorted(hidden):
            problems.append(f"hidden node ids must be unique and increasing, got {hidden}")
        if self.input_node in hidden or self.output_node in hidden:
            problems.append("the input and output ids must not be hidden node ids")
        if hidden and self.next_node <= hidden[-1]:
            problems.append(f"next_node {self.next_node} must exceed every hidden id")
        known = set(self.nodes)
        pairs = self.edges(enabled_only=False)
        if len(set(pairs)) != len(pairs):
            problems.append("two connection genes join the same pair of nodes")
        for a, b in pairs:
            if a not in known or b not in known:
                problems.append(f"connection {a} -> {b} names an unknown node")
            elif a == self.output_node or b == self.input_node or a == b:
                problems.append(f"connection {a} -> {b} leaves the output, enters the "
                                f"input or loops on itself")
        if not problems and _has_cycle(self.nodes, pairs):
            problems.append("connection genes form a cycle")
        if problems:
            raise OutOfSearchSpaceError("invalid genome: " + "; ".join(problems))
        return self

    def to_value(self, encode_layer: Callable[[Any], Any] = lambda layer: layer) -> dict:
        """A JSON-ready dict (layers through ``encode_layer``)."""
        return {"input": self.input_node, "output": self.output_node,
                "next_node": self.next_node,
                "layers": [[g.node, encode_layer(g.layer)] for g in self.layers],
                "connections": [[g.source, g.target, g.enabled] for g in self.connections]}

    @classmethod
    def from_value(cls, value: dict,
                   decode_layer: Callable[[Any], Any] = lambda layer: layer) -> "Genome":
        """The genome :meth:`to_value` wrote; checked (see :meth:`check`)."""
        try:
            layers = tuple(LayerGene(_node_id(n), decode_layer(layer))
                           for n, layer in value["layers"])
            genome = cls(layers,
                         tuple(ConnectionGene(_node_id(a), _node_id(b), _flag(e))
                               for a, b, e in value["connections"]),
                         _node_id(value["input"]), _node_id(value["output"]),
                         _node_id(value["next_node"]))
        except (KeyError, TypeError, ValueError, OverflowError) as error:
            if isinstance(error, OutOfSearchSpaceError):
                raise
            raise OutOfSearchSpaceError(
                f"not a genome value ({type(error).__name__}: {error}); expected the dict "
                f"Genome.to_value() writes") from error
        return genome.check()


def _node_id(value: Any) -> int:
    """A node id from a file: an integer (a whole float such as 3.0 too)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != int(value):
        raise SerializationError(f"node ids are integers, got {value!r}")
    return int(value)


def _flag(value: Any) -> bool:
    """An enabled flag from a file: true/false (or 1/0), nothing else."""
    if not isinstance(value, numbers.Integral) or value not in (0, 1):
        raise SerializationError(f"'enabled' flags are true or false, got {value!r}")
    return bool(value)


def decode_genome(value: Any, decode_layer: Callable[[Any], Any], input_node: int,
                  output_node: int, kind: str) -> Genome:
    """:meth:`Genome.from_value`, also checking the space's input and output node ids."""
    genome = Genome.from_value(value, decode_layer)
    if (genome.input_node, genome.output_node) != (input_node, output_node):
        raise OutOfSearchSpaceError(
            f"a {kind} genome has input {input_node} and output {output_node}, got "
            f"{genome.input_node} and {genome.output_node}")
    return genome


def _adjacency(edges: Iterable[Tuple[int, int]]) -> Dict[int, List[int]]:
    adjacency: Dict[int, List[int]] = {}
    for a, b in edges:
        adjacency.setdefault(a, []).append(b)
    return adjacency


def _reachable(start: int, adjacency: Dict[int, List[int]]) -> Set[int]:
    seen, stack = {start}, [start]
    while stack:
        for nxt in adjacency.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _has_cycle(nodes: Sequence[int], edges: Sequence[Tuple[int, int]]) -> bool:
    indegree = {n: 0 for n in nodes}
    adjacency = _adjacency(edges)
    for _, b in edges:
        indegree[b] += 1
    ready = [n for n in nodes if indegree[n] == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for nxt in adjacency.get(node, ()):
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    return seen < len(nodes)


# ---------------------------------------------------------------- shared helpers
def genome_to_descriptor(genome: Genome, layer_spec: Callable[[Any], Tuple[Any, dict]],
                         tail: Sequence[Tuple[str, Any, dict]] = ()):
    """The :class:`~nord.neural_nets.NeuralDescriptor` of a genome.

    Nodes are named by their ids (``"-2"``, ``"0"``, ...): the input is an
    ``'input'`` op, each hidden node ``layer_spec(layer)`` → ``(layer type,
    params)``, the output an ``'output'`` op (it sums its inputs, reconciled by
    the compiler's size policy); enabled genes become connections, disabled
    ones are left out. ``tail`` layers ``(name, layer, params)`` follow the
    output in a chain, the last becoming the descriptor's output. Inactive
    nodes stay in the descriptor (the compiler prunes them); without an
    enabled input → output path ``validate()`` raises
    :class:`~nord.errors.NoPathError`.
    """
    from nord.neural_nets.neural_descriptor import NeuralDescriptor

    d = NeuralDescriptor()
    d.add_layer("input", {}, str(genome.input_node))
    for gene in genome.layers:
        layer, params = layer_spec(gene.layer)
        d.add_layer(layer, params, str(gene.node))
    d.add_layer("output", {}, str(genome.output_node))
    for source, target in genome.edges():
        d.connect_layers(str(source), str(target))
    for name, layer, params in tail:
        d.add_layer_sequential(layer, params, name)
    return d


def genome_graph(genome: Genome, label: Callable[[Any], str] = str):
    """The genome's active network as an
    :class:`~nord.design.predictors.graphs.ArchitectureGraph`: ``"input"``, the
    active hidden nodes labelled ``label(layer)`` in topological order,
    ``"output"``. A genome without an input -> output path gives the two end
    nodes, unconnected."""
    from nord.design.predictors.graphs import ArchitectureGraph
    order = genome.active_order()
    if not order:
        return ArchitectureGraph(("input", "output"), ())
    position = {node: i for i, (node, _) in enumerate(order)}
    labels = tuple("input" if node == genome.input_node else
                   "output" if node == genome.output_node else label(genome.layer(node))
                   for node, _ in order)
    edges = tuple((position[s], position[node]) for node, sources in order for s in sources)
    return ArchitectureGraph(labels, edges)


def describe_genome(genome: Genome, label: Callable[[Any], str]) -> str:
    """``IN -> CONV_3.N(0) -> OUT`` for a chain, else ``CONV_3.N(0)<-IN, ...``.

    Only active nodes appear; a genome without an input → output path reads
    ``invalid: ...``.
    """
    order = genome.active_order()
    if not order:
        return (f"invalid: no enabled path from input to output "
                f"({len(genome.layers)} layers, {len(genome.enabled())} enabled connections)")

    def name(node: int) -> str:
        if node == genome.input_node:
            return "IN"
        if node == genome.output_node:
            return "OUT"
        return f"{label(genome.layer(node))}({node})"

    chain = all(sources == [order[i - 1][0]] for i, (_, sources) in enumerate(order) if i)
    if chain:
        return " -> ".join(name(node) for node, _ in order)
    short = {genome.input_node: "IN", genome.output_node: "OUT"}
    return ", ".join(f"{name(node)}<-{'+'.join(short.get(s, str(s)) for s in sources)}"
                     for node, sources in order[1:])
