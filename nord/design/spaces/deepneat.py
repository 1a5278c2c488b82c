"""DeepNEAT genomes of chapters 4 and 5 (thesis §2.2.1, §4.2.1, §5.2.1).

Architectures are :class:`~nord.design.spaces.genome.Genome` objects whose
layer genes are :class:`Block` values ``(K filters, kernel N, dropout d,
weight scaling S, max-pool M)``; the input is node −2 and the output node −1
(Figure 5.2), hidden nodes are numbered by age from 0. A block compiles to
:class:`~nord.neural_nets.remnet_layers.DeepNEATBlock`: convolution (same
padding) → ReLU → dropout ``d`` → :class:`~nord.neural_nets.layers.WeightScaling`
``S`` → 2×2 max-pool when ``M`` (the thesis names no activation; a ReLU after
the convolution is our assumption). After the output, the descriptor holds
the first layer of the "simple 2-layer dense head" (§4.2.1): flatten,
``head_units`` linear units (the thesis gives no size; 64 by default) and a
ReLU; the compiler's default head is the second (class-sized) layer.
``head=False`` leaves them out.

Parameter ranges (Table 5.2; Table 4.1 used 32..56 filters and p = 0.5):
``filters`` 32..256, ``kernel_sizes`` {1, 3}, ``dropout`` [0, 0.7],
``scale`` [0, 2], max-pool with probability ``max_pool_prob`` 0.5.

Mutation (§5.2.1: "perturbing parameter values, adding a block or a
connection, or even removing a connection"). One draw picks one operator:

* ``add_node_prob`` (0.05, Table 4.1): a random enabled connection ``a → b``
  becomes ``a → new → b`` with a random block; ``a → b`` is disabled;
* ``add_connection_prob`` (0.1, Table 4.1): a random pair of nodes without
  an enabled connection is connected (a disabled gene between them is
  re-enabled); pairs that would close a cycle, leave the output or enter the
  input are never drawn;
* ``disable_connection_prob`` (0.05; the thesis gives no value): a random
  enabled connection is disabled;
* otherwise (0.8, NEAT's usual weight-perturbation rate): one parameter of
  one random block is perturbed: ``filters``, ``dropout`` and ``scale`` by a
  Gaussian step of ``perturb_scale`` × their range (clipped), the kernel size
  and the max-pool flag switch.

"Any invalid architecture is discarded" (§5.2.1): a child without an input →
output path, or one equal to its parent, is drawn again (up to
``max_tries``; then the parent is returned). New individuals start "from the
same simple architecture (only input and output nodes)" and receive
``sample_mutations`` mutations (chapter 4 evolved for 20 generations), so the
first one always adds a block.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence, Tuple

import numpy as np
import torch.nn as nn

from nord.design.spaces.base import SearchSpace
from nord.design.spaces.genome import (Genome, choose, decode_genome, describe_genome,
                                       genome_to_descriptor)
from nord.errors import OutOfSearchSpaceError, SettingsError
from nord.neural_nets.remnet_layers import DeepNEATBlock

__all__ = ["DeepNEATSpace", "Block", "INPUT_NODE", "OUTPUT_NODE"]

INPUT_NODE, OUTPUT_NODE = -2, -1
PARAMETERS = ("filters", "kernel_size", "dropout", "scale", "max_pool")


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
                 perturb_scale: float = 0.1, sample_mutations: int = 20,
                 head_units: int = 64, head: bool = True, max_tries: int = 100) -> None:
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
        self.sample_mutations = int(sample_mutations)
        self.head_units = int(head_units)
        self.head = bool(head)
        self.max_tries = int(max_tries)
        if self.max_tries < 1 or self.head_units < 1 or self.sample_mutations < 0:
            raise SettingsError("max_tries and head_units must be positive, sample_mutations >= 0")

    @property
    def perturb_prob(self) -> float:
        """Probability that a mutation perturbs a block (0.8 by default)."""
        return max(0.0, 1.0 - self.add_node_prob - self.add_connection_prob
                   - self.disable_connection_prob)

    def settings(self) -> dict:
        return {"filters": list(self.filters), "kernel_sizes": list(self.kernel_sizes),
                "dropout": list(self.dropout), "scale": list(self.scale),
                "max_pool_prob": self.max_pool_prob, "add_node_prob": self.add_node_prob,
                "add_connection_prob": self.add_connection_prob,
                "disable_connection_prob": self.disable_connection_prob,
                "perturb_scale": self.perturb_scale, "sample_mutations": self.sample_mutations,
                "head_units": self.head_units, "head": self.head, "max_tries": self.max_tries}

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
            if child != architecture and child.has_path():
                return child
        return replace(architecture)

    def mutate_once(self, genome: Genome, rng: np.random.Generator) -> Genome:
        """One operator, drawn with its probability; may leave the genome unchanged or invalid."""
        r = rng.random()
        if r < self.add_node_prob:
            enabled = genome.enabled()
            if not enabled:
                return genome
            return genome.insert_node(choose(rng, enabled), self.random_block(rng))
        r -= self.add_node_prob
        if r < self.add_connection_prob:
            pairs = genome.connectable()
            return genome.add_connection(*choose(rng, pairs)) if pairs else genome
        r -= self.add_connection_prob
        if r < self.disable_connection_prob:
            enabled = genome.enabled()
            return genome.set_enabled(choose(rng, enabled), False) if enabled else genome
        if not genome.layers:
            return genome
        node = choose(rng, genome.hidden_nodes)
        return genome.replace_layer(node, self.perturb_block(genome.layer(node), rng))

    # ------------------------------------------------------------ conversion
    def to_descriptor(self, architecture: Genome):
        tail = ([("flatten", nn.Flatten, {}),
                 ("dense", nn.Linear, {"out_features": self.head_units}),
                 ("dense_relu", nn.ReLU, {})] if self.head else [])
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
