"""The chapter-7 space of GraphSAGE rankers (EGraph), searched by regularized evolution.

Architectures are :class:`~nord.design.predictors.egraph.GCNArchitecture`
genomes (§7.3.2): layer genes pick one of the six layers of Table 7.1 at the
standard width ``F`` (``filters``, Table 7.2: 300), connection genes are
enabled or disabled as in chapter 6, and the hyper-parameter gene picks the
global pooling (max, mean, sort pooling with k = 1, 2, 3).

Evolution (§7.3.2, Table 7.2). A new individual has ``initial_layers`` (1)
hidden layer with a random choice between input and output and a random
pooling. ``mutate`` copies its parent and then

* mutates each gene with probability ``mutate_prob`` (``p_m`` = 0.25): a
  layer gene gets another Table 7.1 choice, a connection gene is flipped
  (enabled <-> disabled; a flip that would leave no input -> output path
  through a layer is skipped, so every child is a network), the pooling gene
  gets another pooling;
* with probability ``add_layer_prob`` (``p_a`` = 0.25) inserts a layer with a
  random choice into a random enabled connection ``a -> b`` (``a -> new -> b``,
  ``a -> b`` disabled and kept, as in chapter 6).

Each random draw is made whatever the outcome, so a child depends only on
its parent and the generator.

Descriptors. :meth:`GCNSpace.to_descriptor` gives a
:class:`~nord.neural_nets.NeuralDescriptor` of the active network (node
``-2`` the input, one node per layer gene named by its id with its Table 7.1
name as op string and ``{'out_channels': width}``, ``99`` the output, then
a ``pooling`` node and a ``head`` node), which a run store keeps, hashes and
draws like any other. Its ops are registered graph layers
(:mod:`nord.neural_nets.graph_layers`): the descriptor validates, and
:class:`~nord.neural_nets.graph_network.GraphNetwork` compiles it into the
shared tower of :class:`~nord.design.predictors.egraph.SiameseGCN`;
:func:`architecture_from_descriptor` reads the genome back.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from nord.design.predictors.egraph import (HEAD_OP, HEADS, INPUT_NODE, LAYER_CHOICES,
                                           OUTPUT_NODE, POOLING_OPS, POOLINGS, GCNArchitecture,
                                           SAGELayer)
from nord.design.spaces.base import SearchSpace
from nord.design.spaces.genome import ConnectionGene, Genome, LayerGene, choose
from nord.errors import OutOfSearchSpaceError, SettingsError

__all__ = ["GCNSpace", "architecture_from_descriptor", "POOLING_OPS", "HEAD_OP"]


class GCNSpace(SearchSpace):
    """Chapter-7 GCN genomes; see the module docstring.

    >>> space = GCNSpace(filters=16)
    >>> arch = space.sample(np.random.default_rng(0))
    >>> len(arch.layers), arch.pooling in ("max", "mean", "sort1", "sort2", "sort3")
    (1, True)
    """

    name = "gcn"

    def __init__(self, filters: int = 300, initial_layers: int = 1,
                 add_layer_prob: float = 0.25, mutate_prob: float = 0.25,
                 head: str = "ternary", poolings: Sequence[str] = POOLINGS) -> None:
        if isinstance(filters, bool) or int(filters) != filters or filters < 2 or filters % 2:
            raise SettingsError(f"filters must be an even whole number >= 2 (half-width "
                                f"layers use F/2), got {filters!r}")
        if isinstance(initial_layers, bool) or int(initial_layers) != initial_layers \
                or initial_layers < 1:
            raise SettingsError(f"initial_layers must be a whole number >= 1, got "
                                f"{initial_layers!r}")
        for name, p in (("add_layer_prob", add_layer_prob), ("mutate_prob", mutate_prob)):
            if not 0 <= p <= 1:
                raise SettingsError(f"{name} must be a probability in [0, 1], got {p!r}")
        if head not in HEADS:
            raise SettingsError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
        poolings = tuple(poolings)
        unknown = [p for p in poolings if p not in POOLINGS]
        if not poolings or unknown:
            raise SettingsError(f"poolings must be a non-empty selection of "
                                f"{', '.join(POOLINGS)}; unknown: {unknown}")
        self.filters = int(filters)
        self.initial_layers = int(initial_layers)
        self.add_layer_prob = float(add_layer_prob)
        self.mutate_prob = float(mutate_prob)
        self.head = head
        self.poolings = poolings

    def settings(self) -> dict:
        return {"filters": self.filters, "initial_layers": self.initial_layers,
                "add_layer_prob": self.add_layer_prob, "mutate_prob": self.mutate_prob,
                "head": self.head, "poolings": list(self.poolings)}

    # ------------------------------------------------------------ evolution
    def sample(self, rng: np.random.Generator) -> GCNArchitecture:
        """``initial_layers`` random layers inserted into ``-2 -> 99``, a random pooling."""
        genome = Genome.minimal(INPUT_NODE, OUTPUT_NODE)
        for _ in range(self.initial_layers):
            genome = genome.insert_node(choose(rng, genome.enabled()), _random_layer(rng))
        return GCNArchitecture(genome, choose(rng, self.poolings), self.head, self.filters)

    def mutate(self, architecture: GCNArchitecture, rng: np.random.Generator
               ) -> GCNArchitecture:
        self._check(architecture)
        genome, pooling = architecture.genome, architecture.pooling
        for gene in genome.layers:
            draw, other = rng.random(), _other(rng, LAYER_CHOICES, gene.layer.choice)
            if draw < self.mutate_prob:
                genome = genome.replace_layer(gene.node, SAGELayer.from_choice(other))
        for index in range(len(genome.connections)):
            if rng.random() < self.mutate_prob:
                flipped = genome.toggle(index)
                if _has_layer_path(flipped):
                    genome = flipped
        draw, other = rng.random(), _other(rng, self.poolings, pooling)
        if draw < self.mutate_prob and other is not None:
            pooling = other
        draw, where, layer = rng.random(), rng.random(), _random_layer(rng)
        if draw < self.add_layer_prob:
            enabled = genome.enabled()
            genome = genome.insert_node(enabled[int(where * len(enabled))], layer)
        return replace(architecture, genome=genome, pooling=pooling)

    def _check(self, architecture: Any) -> None:
        if not isinstance(architecture, GCNArchitecture):
            raise OutOfSearchSpaceError(f"the gcn space mutates GCNArchitecture values, got "
                                        f"{type(architecture).__name__}")

    # ------------------------------------------------------------ conversion
    def to_descriptor(self, architecture: GCNArchitecture):
        """The descriptor of the network (:meth:`GCNArchitecture.to_descriptor`)."""
        self._check(architecture)
        return architecture.to_descriptor()

    def encode(self, architecture: GCNArchitecture) -> dict:
        self._check(architecture)
        return architecture.to_json()

    def decode(self, value: Any) -> GCNArchitecture:
        return GCNArchitecture.from_json(value)

    def describe(self, architecture: GCNArchitecture) -> str:
        return architecture.describe()


def _random_layer(rng: np.random.Generator) -> SAGELayer:
    return SAGELayer.from_choice(choose(rng, LAYER_CHOICES))


def _other(rng: np.random.Generator, choices: Sequence[str], current: str):
    """A random choice other than ``current`` (None if there is none); one draw."""
    others = [c for c in choices if c != current]
    index = int(rng.integers(max(1, len(others))))
    return others[index] if others else None


def _has_layer_path(genome: Genome) -> bool:
    """An enabled input -> output path through at least one layer."""
    return len(genome.active_nodes()) >= 3


def architecture_from_descriptor(descriptor) -> GCNArchitecture:
    """The architecture a :meth:`GCNSpace.to_descriptor` descriptor describes (its
    active network: disabled connection genes are not in a descriptor)."""
    from nord.errors import NordError
    try:
        return _architecture_from_descriptor(descriptor)
    except OutOfSearchSpaceError:
        raise
    except (NordError, KeyError, TypeError, ValueError) as error:
        raise OutOfSearchSpaceError(f"not a descriptor of the gcn space ({type(error).__name__}: "
                                    f"{error}); make it with GCNSpace.to_descriptor") from error


def _architecture_from_descriptor(descriptor) -> GCNArchitecture:
    layers = descriptor.layers
    ends = {str(INPUT_NODE): "input", str(OUTPUT_NODE): "output"}
    for name, op in ends.items():
        if name not in layers or layers[name].layer != op:
            raise OutOfSearchSpaceError(f"a gcn descriptor has an {op!r} node named {name!r}")
    pooling_spec, head_spec = layers.get("pooling"), layers.get("head")
    if pooling_spec is None or head_spec is None or head_spec.layer != HEAD_OP:
        raise OutOfSearchSpaceError("a gcn descriptor ends in a 'pooling' and a 'head' node")
    pooling = next((gene for gene, (op, params) in POOLING_OPS.items()
                    if op == pooling_spec.layer and params == dict(pooling_spec.params)), None)
    if pooling is None:
        raise OutOfSearchSpaceError(f"unknown pooling node {pooling_spec.layer!r} "
                                    f"{dict(pooling_spec.params)}")
    head, filters = head_spec.params["head"], head_spec.params["filters"]
    genes = []
    for name, spec in layers.items():
        if name in ends or name in ("pooling", "head"):
            continue
        layer = SAGELayer.from_choice(spec.layer)
        if isinstance(filters, int) and spec.params != {"out_channels": layer.features(filters)}:
            raise OutOfSearchSpaceError(f"layer {name!r} has params {spec.params}; a "
                                        f"{spec.layer} layer at F={filters} has "
                                        f"{{'out_channels': {layer.features(filters)}}}")
        genes.append(LayerGene(int(name), layer))
    genes.sort(key=lambda gene: gene.node)
    known = set(ends) | {str(g.node) for g in genes}
    connections = tuple(ConnectionGene(int(a), int(b)) for a, b in descriptor.edges()
                        if a in known and b in known)
    next_node = max([g.node for g in genes], default=-1) + 1
    while next_node in (INPUT_NODE, OUTPUT_NODE):
        next_node += 1
    genome = Genome(tuple(genes), connections, INPUT_NODE, OUTPUT_NODE, next_node)
    return GCNArchitecture(genome, pooling, head, filters)
