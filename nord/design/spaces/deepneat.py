"""DeepNEAT genomes of chapters 4 and 5 (thesis §2.2.1, §4.2.1, §5.2.1).

Architectures are :class:`~nord.design.spaces.genome.Genome` objects whose
layer genes are :class:`Block` values ``(K filters, kernel N, dropout d,
weight scaling S, max-pool M)``; the input is node −2 and the output node −1
(Figure 5.2), hidden nodes are numbered by age from 0. A block compiles to
:class:`~nord.neural_nets.remnet_layers.DeepNEATBlock`: convolution (same
padding) → ReLU → dropout ``d`` → :class:`~nord.neural_nets.layers.WeightScaling`
``S`` → 2×2 max-pool when ``M`` (the thesis names no activation; a ReLU after
the convolution is our assumption). After the output, the descriptor holds
the first layer of the "simple 2-layer dense head" (§4.2.1): an adaptive
average pool to ``head_pool`` × ``head_pool`` (2; 0 leaves it out), flatten,
``head_units`` linear units (96) and a ReLU; the compiler's default head is
the second (class-sized) layer. ``head=False`` leaves them out.

Parameter ranges (Table 5.2; Table 4.1 used 32..56 filters and p = 0.5):
``filters`` 32..256, ``kernel_sizes`` {1, 3}, ``dropout`` [0, 0.7],
``scale`` [0, 2], max-pool with probability ``max_pool_prob`` 0.5.

Mutation (§5.2.1: "perturbing parameter values, adding a block or a
connection, or even removing a connection"). One draw picks one operator:

* ``add_node_prob`` (0.05, Table 4.1): a random enabled connection ``a → b``
  becomes ``a → new → b`` with a random block; ``a → b`` is disabled;
* ``add_connection_prob`` (0.1, Table 4.1): a random pair of nodes without a
  connection gene is connected; pairs that would close a cycle, leave the
  output or enter the input are never drawn. A disabled gene stays disabled,
  as in the thesis's NORD (a connection already in the genome is not added
  again): re-activating genes is chapter 6's operator
  (``reenable_connections=True`` allows it);
* ``disable_connection_prob`` (0.05; the thesis gives no value): a random
  enabled connection is disabled;
* otherwise (0.8, NEAT's usual weight-perturbation rate): one parameter of
  one random block is perturbed: ``filters``, ``dropout`` and ``scale`` by a
  Gaussian step of ``perturb_scale`` × their range (clipped), the kernel size
  and the max-pool flag switch. ``perturb=False`` drops this operator; the
  three structural probabilities then act as relative weights.

"Any invalid architecture is discarded" (§5.2.1): a child without an input →
output path, one with more than ``max_parameters`` trainable parameters
(150,000, counted by :meth:`DeepNEATSpace.parameter_count` for
``parameter_input`` (3, 32, 32) and ``parameter_classes`` 10: CIFAR-10), or
one equal to its parent, is drawn again (up to ``max_tries``; then the parent
is returned). New individuals start "from the same simple architecture (only
input and output nodes)" and receive ``sample_mutations`` (20) mutations, so
the first one always adds a block.

Network size (issue 14). Chapter 5's 140 CIFAR-10 networks had "70,000
trainable parameters" on average, "all of them in [9,099 - 148,140]". With
the dense head on the flattened, unpooled output (``head_pool=0``,
``head_units=64``), re-enabled genes and no size limit, 140 seeded networks
averaged 1.68 million (median 215k, max 16.8 million; 29% in the thesis's
range): a 32×32×K map feeds 65,536·K weights. Three choices bring them to
the thesis's size, each for a reason besides the fit:

* the head sees the output average-pooled to 2×2 (4·K features, 96 units),
  so its size follows the output's filters, not the image size; 64 units
  gave a mean of 56-59k, 128 units 82-86k (three seeds each);
* add-connection does not re-enable genes (see above). Re-enabling the
  input → output gene that the first block split, which a one-block genome's
  first add-connection always did, made the output (the sum of its inputs,
  reconciled to the fewest channels) 3 channels wide: networks of 600 to 3,000
  parameters, far below the thesis's smallest;
* ``max_parameters`` (150,000): the thesis validated its networks on its
  GPUs, "significantly increasing the maximum parameter size for each
  network" (§5.2.1; chapter 4's cards "imposed a practical upper limit on
  their sizes"), but gives no value; its largest network had 148,140. Without
  a limit two chained 3×3 blocks of table 5.2's filters alone hold up to
  590k weights, and 140 seeded networks reach 450k to 1 million.

Measured by ``benchmarks/deepneat_parameters.py`` (compiled with
``NeuralNet`` for CIFAR-10, :func:`diverse_sample` of 140, seed 0): mean
75,289, minimum 13,482, median 72,414, maximum 148,610 (99% within the
thesis's range; seeds 0-14 give means of 67-80k, 72k on average). The
smallest possible network, one 1×1 block of 32 filters, has 13,482
parameters: the output is never narrower than 32 channels.

The two generation schemes: chapter 5's, :func:`diverse_sample`: ``n``
distinct architectures, each sampled from the two-node genome (repeats
discarded); chapter 4's, :func:`evolve_lineage` of
:meth:`DeepNEATSpace.chapter4`: one network evolved for 20 generations,
"generating several unique architectures" (§4.2.2). Chapter 4's operator
"adds a new connection between existing nodes or a new node" (§4.2.1), so
its preset disables no connection and perturbs nothing; its 20th generation
has 9-11 nodes (the thesis's had 15), and 7 seeded lineages (140 networks)
average 45,812 parameters (min 2,218: the two-node architecture 1, median
40,688, max 106,117).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
import torch.nn as nn

from nord.design.spaces.base import SearchSpace
from nord.design.spaces.genome import (Genome, choose, decode_genome, describe_genome,
                                       genome_to_descriptor)
from nord.errors import OutOfSearchSpaceError, SettingsError
from nord.neural_nets.remnet_layers import DeepNEATBlock

__all__ = ["DeepNEATSpace", "Block", "INPUT_NODE", "OUTPUT_NODE", "CHAPTER4",
           "evolve_lineage", "diverse_sample", "architecture_key"]

INPUT_NODE, OUTPUT_NODE = -2, -1
PARAMETERS = ("filters", "kernel_size", "dropout", "scale", "max_pool")

#: Table 4.1 (chapter 4): 32..56 filters, node addition 0.05, connection addition 0.1;
#: §4.2.1 names only the two structural operators (no disabling, no perturbation)
CHAPTER4 = {"filters": (32, 56), "add_node_prob": 0.05, "add_connection_prob": 0.1,
            "disable_connection_prob": 0.0, "perturb": False}


@dataclass(frozen=True)
class Block:
    """One DeepNEAT block gene: ``(K, N, d, S, M)`` of §4.2.1."""

    filters: int
    kernel_size: int
    dropout: float
    scale: float
    max_pool: bool

    def label(self) -> str:
        """Short text, e.g. ``C64k3d0.25s1.10+MP``."""
        return (f"C{self.filters}k{self.kernel_size}d{self.dropout:.2f}s{self.scale:.2f}"
                + ("+MP" if self.max_pool else ""))

    def to_value(self) -> dict:
        return {"filters": self.filters, "kernel_size": self.kernel_size,
                "dropout": self.dropout, "scale": self.scale, "max_pool": self.max_pool}


def _range(value: Sequence[float], what: str) -> Tuple[float, float]:
    low, high = (float(v) for v in value)
    if low > high:
        raise SettingsError(f"{what} range must be (low, high) with low <= high, got {value}")
    return low, high


class DeepNEATSpace(SearchSpace):
    """DeepNEAT block genomes; see the module docstring.

    >>> space = DeepNEATSpace(filters=(8, 16))
    >>> genome = space.sample(np.random.default_rng(0))
    >>> genome.has_path() and len(genome.layers) >= 1
    True
    """

    name = "deepneat"
    input_rank = 2

    def __init__(self, filters: Sequence[int] = (32, 256), kernel_sizes: Sequence[int] = (1, 3),
                 dropout: Sequence[float] = (0.0, 0.7), scale: Sequence[float] = (0.0, 2.0),
                 max_pool_prob: float = 0.5, add_node_prob: float = 0.05,
                 add_connection_prob: float = 0.1, disable_connection_prob: float = 0.05,
                 perturb_scale: float = 0.1, perturb: bool = True,
                 reenable_connections: bool = False, sample_mutations: int = 20,
                 head_units: int = 96, head_pool: int = 2, head: bool = True,
                 max_parameters: Optional[int] = 150_000,
                 parameter_input: Sequence[int] = (3, 32, 32), parameter_classes: int = 10,
                 max_tries: int = 100) -> None:
        low, high = _range(filters, "filters")
        self.filters = (int(low), int(high))
        if self.filters[0] < 1:
            raise SettingsError(f"filters must be at least 1, got {filters}")
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        if not self.kernel_sizes or any(k < 1 or k % 2 == 0 for k in self.kernel_sizes):
            raise SettingsError(f"kernel_sizes must be odd positive integers, got {kernel_sizes}")
        self.dropout = _range(dropout, "dropout")
        if not (0 <= self.dropout[0] and self.dropout[1] < 1):
            raise SettingsError(f"dropout must lie in [0, 1), got {dropout}")
        self.scale = _range(scale, "scale")
        probs = (add_node_prob, add_connection_prob, disable_connection_prob)
        if min(probs) < 0 or sum(probs) > 1 + 1e-9 or not 0 <= max_pool_prob <= 1:
            raise SettingsError(f"mutation probabilities {probs} must be >= 0 and sum to at most "
                                f"1 (the rest perturbs a block); max_pool_prob must be in [0, 1]")
        self.max_pool_prob = float(max_pool_prob)
        self.add_node_prob, self.add_connection_prob, self.disable_connection_prob = map(
            float, probs)
        self.perturb_scale = float(perturb_scale)
        self.perturb = bool(perturb)
        if not self.perturb and sum(probs) <= 0:
            raise SettingsError("perturb=False leaves only the structural mutations, so "
                                "add_node_prob, add_connection_prob and disable_connection_prob "
                                "must not all be 0; give one a positive value or perturb=True")
        self.reenable_connections = bool(reenable_connections)
        self.sample_mutations = int(sample_mutations)
        self.head_units = int(head_units)
        self.head_pool = int(head_pool)
        self.head = bool(head)
        self.max_tries = int(max_tries)
        if self.max_tries < 1 or self.head_units < 1 or self.sample_mutations < 0:
            raise SettingsError("max_tries and head_units must be positive, sample_mutations >= 0")
        if self.head_pool < 0:
            raise SettingsError(f"head_pool is the side of the average-pooled map the dense "
                                f"head sees (0: no pooling), so it must be >= 0, got {head_pool}")
        self.max_parameters = None if max_parameters is None else int(max_parameters)
        if self.max_parameters is not None and self.max_parameters < 1:
            raise SettingsError(f"max_parameters must be positive (or None for no limit), "
                                f"got {max_parameters}")
        self.parameter_input = tuple(int(v) for v in parameter_input)
        self.parameter_classes = int(parameter_classes)
        if (len(self.parameter_input) != 3 or min(self.parameter_input) < 1
                or self.parameter_classes < 1):
            raise SettingsError(f"parameter_input is the (channels, height, width) and "
                                f"parameter_classes the class count max_parameters is counted "
                                f"for, e.g. (3, 32, 32) and 10 for CIFAR-10; got "
                                f"{parameter_input} and {parameter_classes}")

    @classmethod
    def chapter4(cls, **overrides: Any) -> "DeepNEATSpace":
        """The space of chapter 4 (Table 4.1, :data:`CHAPTER4`); ``overrides`` replace
        any setting. Evolve it with :func:`evolve_lineage`."""
        return cls(**{**CHAPTER4, **overrides})

    @property
    def perturb_prob(self) -> float:
        """Probability that a mutation perturbs a block (0.8 by default, 0 with perturb=False)."""
        if not self.perturb:
            return 0.0
        return max(0.0, 1.0 - self.add_node_prob - self.add_connection_prob
                   - self.disable_connection_prob)

    def settings(self) -> dict:
        return {"filters": list(self.filters), "kernel_sizes": list(self.kernel_sizes),
                "dropout": list(self.dropout), "scale": list(self.scale),
                "max_pool_prob": self.max_pool_prob, "add_node_prob": self.add_node_prob,
                "add_connection_prob": self.add_connection_prob,
                "disable_connection_prob": self.disable_connection_prob,
                "perturb_scale": self.perturb_scale, "perturb": self.perturb,
                "reenable_connections": self.reenable_connections,
                "sample_mutations": self.sample_mutations, "head_units": self.head_units,
                "head_pool": self.head_pool, "head": self.head,
                "max_parameters": self.max_parameters,
                "parameter_input": list(self.parameter_input),
                "parameter_classes": self.parameter_classes, "max_tries": self.max_tries}

    # ------------------------------------------------------------ genes
    def random_block(self, rng: np.random.Generator) -> Block:
        """A block with every parameter drawn from its range."""
        return Block(int(rng.integers(self.filters[0], self.filters[1] + 1)),
                     int(choose(rng, self.kernel_sizes)),
                     round(float(rng.uniform(*self.dropout)), 4),
                     round(float(rng.uniform(*self.scale)), 4),
                     bool(rng.random() < self.max_pool_prob))

    def perturb_block(self, block: Block, rng: np.random.Generator) -> Block:
        """``block`` with one random parameter perturbed."""
        what = choose(rng, PARAMETERS)
        if what == "filters":
            low, high = self.filters
            step = rng.normal(0.0, self.perturb_scale * (high - low))
            return replace(block, filters=int(np.clip(round(block.filters + step), low, high)))
        if what in ("dropout", "scale"):
            low, high = getattr(self, what)
            value = getattr(block, what) + rng.normal(0.0, self.perturb_scale * (high - low))
            return replace(block, **{what: round(float(np.clip(value, low, high)), 4)})
        if what == "kernel_size":
            others = [k for k in self.kernel_sizes if k != block.kernel_size]
            return replace(block, kernel_size=int(choose(rng, others))) if others else block
        return replace(block, max_pool=not block.max_pool)

    # ------------------------------------------------------------ evolution
    def sample(self, rng: np.random.Generator) -> Genome:
        """The two-node genome after ``sample_mutations`` mutations."""
        genome = Genome.minimal(INPUT_NODE, OUTPUT_NODE)
        for _ in range(self.sample_mutations):
            genome = self.mutate(genome, rng)
        return genome

    def mutate(self, architecture: Genome, rng: np.random.Generator) -> Genome:
        for _ in range(self.max_tries):
            child = self.mutate_once(architecture, rng)
            if child != architecture and self.is_valid(child):
                return child
        return replace(architecture)

    def is_valid(self, genome: Genome) -> bool:
        """An enabled input → output path, and at most ``max_parameters`` parameters."""
        return genome.has_path() and (self.max_parameters is None
                                      or self.parameter_count(genome) <= self.max_parameters)

    def mutate_once(self, genome: Genome, rng: np.random.Generator) -> Genome:
        """One operator, drawn with its probability; may leave the genome unchanged or invalid."""
        r = rng.random()
        if not self.perturb:  # the structural probabilities are relative weights
            r *= self.add_node_prob + self.add_connection_prob + self.disable_connection_prob
        if r < self.add_node_prob:
            enabled = genome.enabled()
            if not enabled:
                return genome
            return genome.insert_node(choose(rng, enabled), self.random_block(rng))
        r -= self.add_node_prob
        if r < self.add_connection_prob:
            pairs = genome.connectable(self.reenable_connections)
            return genome.add_connection(*choose(rng, pairs)) if pairs else genome
        r -= self.add_connection_prob
        if r < self.disable_connection_prob:
            enabled = genome.enabled()
            return genome.set_enabled(choose(rng, enabled), False) if enabled else genome
        if not genome.layers or not self.perturb:
            return genome
        node = choose(rng, genome.hidden_nodes)
        return genome.replace_layer(node, self.perturb_block(genome.layer(node), rng))

    def parameter_count(self, architecture: Genome, input_shape: Optional[Sequence[int]] = None,
                        num_classes: Optional[int] = None) -> int:
        """Trainable parameters of the network NORD compiles (minimum viable size,
        the default dense head), counted from the shape plan without building it.

        ``input_shape`` is ``(channels, height, width)``; both default to
        ``parameter_input`` and ``parameter_classes`` (CIFAR-10). Equal to
        ``sum(p.numel() for p in NeuralNet(...).parameters())``.
        """
        from nord.neural_nets.shape_planning import plan_network

        channels, *spatial = self.parameter_input if input_shape is None else input_shape
        classes = self.parameter_classes if num_classes is None else int(num_classes)
        plan = plan_network(self.to_descriptor(architecture), tuple(spatial), channels)
        total = 0
        for node in plan.nodes:
            for source in node.inputs:
                if source.project_to is not None:  # a 1×1 convolution without bias
                    width = source.shape.numel if source.flatten else source.shape.channels
                    total += width * source.project_to
            if node.layer is DeepNEATBlock:
                kernel, filters = node.params["kernel_size"], node.params["out_channels"]
                total += (node.in_shape.channels * kernel * kernel + 1) * filters
            elif node.layer is nn.Linear:
                total += (node.in_shape.numel + 1) * node.params["out_features"]
        return total + (plan.output_shape.numel + 1) * classes

    # ------------------------------------------------------------ conversion
    def to_descriptor(self, architecture: Genome):
        tail = []
        if self.head:
            if self.head_pool:
                tail.append(("pool", nn.AdaptiveAvgPool2d, {"output_size": self.head_pool}))
            tail += [("flatten", nn.Flatten, {}),
                     ("dense", nn.Linear, {"out_features": self.head_units}),
                     ("dense_relu", nn.ReLU, {})]
        return genome_to_descriptor(architecture, _block_spec, tail)

    def encode(self, architecture: Genome) -> dict:
        return architecture.to_value(Block.to_value)

    def decode(self, value: Any) -> Genome:
        return decode_genome(value, _decode_block, INPUT_NODE, OUTPUT_NODE, "DeepNEAT")

    def describe(self, architecture: Genome) -> str:
        return describe_genome(architecture, Block.label)


def _block_spec(block: Block):
    return DeepNEATBlock, {"out_channels": block.filters, "kernel_size": block.kernel_size,
                           "dropout": block.dropout, "scale": block.scale,
                           "max_pool": block.max_pool}


def _decode_block(value: Any) -> Block:
    try:
        return Block(int(value["filters"]), int(value["kernel_size"]), float(value["dropout"]),
                     float(value["scale"]), bool(value["max_pool"]))
    except (KeyError, TypeError, ValueError) as error:
        raise OutOfSearchSpaceError(f"not a DeepNEAT block: {value!r}; expected the keys "
                                    f"{', '.join(PARAMETERS)}") from error


# ---------------------------------------------------------------- the two generation schemes
def architecture_key(space: DeepNEATSpace, genome: Genome) -> str:
    """What makes two architectures the same: the canonical hash of the network
    they compile to (inactive nodes pruned, isomorphic graphs equal)."""
    return space.to_descriptor(genome).canonical_hash()


def evolve_lineage(space: DeepNEATSpace, rng: np.random.Generator,
                   generations: int = 20) -> List[Genome]:
    """Chapter 4's scheme (§4.2.2): one network evolved for ``generations`` generations.

    Generation 1 is the two-node genome (Figure 4.1's architecture 1); each
    later one is a mutation (:meth:`DeepNEATSpace.mutate`, so valid) of the one
    before that compiles to a network no earlier generation had, so the
    lineage holds ``generations`` distinct architectures. Use it with
    :meth:`DeepNEATSpace.chapter4` for Table 4.1's settings.
    """
    if int(generations) < 1:
        raise SettingsError(f"generations must be at least 1 (chapter 4 used 20), "
                            f"got {generations}")
    genome = Genome.minimal(INPUT_NODE, OUTPUT_NODE)
    lineage, seen = [genome], {architecture_key(space, genome)}
    while len(lineage) < int(generations):
        for _ in range(space.max_tries):
            child = space.mutate(genome, rng)
            key = architecture_key(space, child)
            if key not in seen:
                break
        else:
            raise SettingsError(
                f"generation {len(lineage) + 1}: {space.max_tries} mutations of "
                f"{space.describe(genome)} gave no architecture new to the lineage; raise "
                f"max_tries, max_parameters or the mutation probabilities")
        seen.add(key)
        lineage.append(child)
        genome = child
    return lineage


def diverse_sample(space: DeepNEATSpace, rng: np.random.Generator, n: int = 140,
                   max_draws: Optional[int] = None) -> List[Genome]:
    """Chapter 5's scheme (§5.2.1): ``n`` distinct random architectures.

    Each is :meth:`DeepNEATSpace.sample`: the two-node genome mutated
    ``sample_mutations`` times, an invalid child (no input → output path, more
    than ``max_parameters``) discarded at every step. A draw that compiles to
    a network already drawn is discarded too; after ``max_draws`` draws
    (default ``100 * n``) :class:`SettingsError` is raised.
    """
    n = int(n)
    limit = 100 * n if max_draws is None else int(max_draws)
    if n < 1 or limit < n:
        raise SettingsError(f"n must be at least 1 and max_draws at least n, got n={n}, "
                            f"max_draws={max_draws}")
    genomes: List[Genome] = []
    seen = set()
    for _ in range(limit):
        genome = space.sample(rng)
        key = architecture_key(space, genome)
        if key not in seen:
            seen.add(key)
            genomes.append(genome)
            if len(genomes) == n:
                return genomes
    raise SettingsError(f"only {len(genomes)} distinct architectures in {limit} draws, "
                        f"{n} asked; raise max_draws or sample_mutations, or widen the ranges")
