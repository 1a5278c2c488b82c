"""The chapter-6 global search space (REMNet), searched by regularized evolution.

Architectures are :class:`~nord.design.spaces.genome.Genome` objects (thesis
§6.3.1): layer genes pick one of the 12 choices of Table 6.1 at a fixed
channel count ``C``, connection genes are enabled or disabled. The input is
node −2, the output node 99, hidden nodes are numbered by age from 0 (99 is
skipped).

What a choice compiles to (§6.3.3, checked against REMNet-128's 791,338
parameters of §6.4.2, which these choices reproduce exactly):

* ``CONV_k.N`` / ``CONV_k.H``: ``k×k`` convolution with ``C`` / ``C/2``
  filters, stride 1, **no padding** (each side shrinks by ``k − 1``), then
  ReLU6, BatchNorm and Dropout(0.1)
  (:class:`~nord.neural_nets.remnet_layers.RemNetConv`);
* ``POOL_k.A`` / ``POOL_k.M``: ``k×k`` average / max pooling with stride
  ``k``, no padding.

A node with several inputs sums them after the minimum viable size policy
brought them to a common shape; a layer whose input is smaller than its
kernel gets it interpolated up to the kernel size, so every genome with an
input → output path compiles (28×28 Fashion-MNIST images included).

The dense head (§6.3.3): FC1 with a quarter of the output's features, FC2
with half of FC1, then one unit per class; ReLU after FC1 and FC2 (the thesis
names no activation there). The first two layers are part of the descriptor
(nodes ``flatten`` and ``dense_head`` after the output), and the compiler's
default one-linear-layer head is the third, so the descriptor compiles to the
thesis's network with any evaluator and dataset. ``head=False`` leaves them
out; then register the dataset with ``dense_head=remnet_head``.

Evolution (§6.3.2, §6.4.1). A new individual has 4 layers: starting from
``−2 → 99``, a node with a random choice is inserted 4 times into a random
enabled connection, which gives a random-order chain whose split genes stay
in the genome, disabled, ready to become skip connections. ``mutate`` draws
once:

* with ``add_node_prob`` (0.25) it inserts a node with a random choice into a
  random *enabled* connection ``a → b``: ``a → new → b`` are added and
  ``a → b`` is disabled, not removed (if no connection is enabled the genome
  is left as it is);
* with ``connection_prob`` (0.7) it flips one random connection gene: an
  enabled one is disabled, a disabled one re-activated. No connection that
  never existed is created (§6.3.1: "mutation operators can only disable a
  connection and not generate a novel connection"); re-activating is the
  "adding a new connection" of §6.4.1;
* otherwise (``p_identity`` = 0.05) the child equals its parent.

§6.3.2's ``p_mutate`` is not a separate setting: §6.4.1 defines
``p_identity = 1 − p_add − 0.7``, so the three outcomes above are one draw.

Disabling may cut every input → output path. Such a genome still has a
descriptor, whose ``validate()`` raises :class:`~nord.errors.NoPathError`, so
a search records it as invalid with fitness 0, as the thesis's runs did.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Tuple

import numpy as np
import torch.nn as nn

from nord.design.spaces.base import SearchSpace
from nord.design.spaces.genome import (Genome, LayerGene, ConnectionGene, choose,
                                       decode_genome, describe_genome, genome_graph,
                                       genome_to_descriptor)
from nord.errors import OutOfSearchSpaceError, SettingsError
from nord.neural_nets.remnet_layers import RemNetConv, RemNetDenseHead

__all__ = ["RemNetSpace", "CHOICES", "INPUT_NODE", "OUTPUT_NODE", "layer_spec",
           "remnet_genome", "remnet_architecture"]

#: Table 6.1, in the thesis's order
CHOICES = ("CONV_2.H", "CONV_3.H", "CONV_5.H", "CONV_2.N", "CONV_3.N", "CONV_5.N",
           "POOL_2.A", "POOL_3.A", "POOL_5.A", "POOL_2.M", "POOL_3.M", "POOL_5.M")
INPUT_NODE, OUTPUT_NODE = -2, 99
DROPOUT = 0.1


def layer_spec(choice: str, channels: int, dropout: float = DROPOUT) -> Tuple[type, dict]:
    """``(layer type, params)`` of one Table 6.1 choice at ``channels`` channels.

    >>> layer_spec("CONV_3.H", 64)[1]
    {'out_channels': 32, 'kernel_size': 3, 'dropout': 0.1}
    """
    if choice not in CHOICES:
        raise OutOfSearchSpaceError(f"unknown layer choice {choice!r}; Table 6.1 choices: "
                                    f"{', '.join(CHOICES)}")
    kind, rest = choice.split("_")
    kernel, variant = rest.split(".")
    if kind == "CONV":
        filters = channels if variant == "N" else channels // 2
        return RemNetConv, {"out_channels": filters, "kernel_size": int(kernel),
                            "dropout": dropout}
    return (nn.AvgPool2d if variant == "A" else nn.MaxPool2d), {"kernel_size": int(kernel)}


class RemNetSpace(SearchSpace):
    """Chapter-6 genomes of Table 6.1 layers; see the module docstring.

    >>> space = RemNetSpace(channels=16)
    >>> genome = space.sample(np.random.default_rng(0))
    >>> len(genome.layers), space.to_descriptor(genome).first_layer
    (4, '-2')
    """

    name = "remnet"
    input_rank = 2

    def __init__(self, channels: int = 16, initial_layers: int = 4,
                 add_node_prob: float = 0.25, connection_prob: float = 0.7,
                 dropout: float = DROPOUT, head: bool = True) -> None:
        if int(channels) < 2 or int(channels) % 2:
            raise SettingsError(f"channels must be an even number >= 2 (CONV_k.H layers use "
                                f"half of them), got {channels}")
        if int(initial_layers) < 0:
            raise SettingsError(f"initial_layers must be >= 0, got {initial_layers}")
        if min(add_node_prob, connection_prob) < 0 or add_node_prob + connection_prob > 1 + 1e-9:
            raise SettingsError(f"add_node_prob ({add_node_prob}) and connection_prob "
                                f"({connection_prob}) must be >= 0 and sum to at most 1; the "
                                f"rest is the probability of leaving a genome unchanged")
        if not 0 <= dropout < 1:
            raise SettingsError(f"dropout must be in [0, 1), got {dropout}")
        self.channels = int(channels)
        self.initial_layers = int(initial_layers)
        self.add_node_prob = float(add_node_prob)
        self.connection_prob = float(connection_prob)
        self.dropout = float(dropout)
        self.head = bool(head)
        #: node labels of :meth:`to_graph`: the ends and the 12 choices of Table 6.1
        self.graph_vocabulary = ("input", *CHOICES, "output")

    @property
    def identity_prob(self) -> float:
        """Probability that ``mutate`` leaves the genome unchanged (0.05 by default)."""
        return max(0.0, 1.0 - self.add_node_prob - self.connection_prob)

    def settings(self) -> dict:
        return {"channels": self.channels, "initial_layers": self.initial_layers,
                "add_node_prob": self.add_node_prob, "connection_prob": self.connection_prob,
                "dropout": self.dropout, "head": self.head}

    # ------------------------------------------------------------ evolution
    def sample(self, rng: np.random.Generator) -> Genome:
        """A new individual: ``initial_layers`` node insertions into ``−2 → 99``."""
        genome = Genome.minimal(INPUT_NODE, OUTPUT_NODE)
        for _ in range(self.initial_layers):
            genome = self.insert_node(genome, rng)
        return genome

    def mutate(self, architecture: Genome, rng: np.random.Generator) -> Genome:
        r = rng.random()
        if r < self.add_node_prob:
            return self.insert_node(architecture, rng)
        if r < self.add_node_prob + self.connection_prob:
            return self.toggle_connection(architecture, rng)
        return replace(architecture)

    def insert_node(self, genome: Genome, rng: np.random.Generator) -> Genome:
        """A random choice inserted into a random enabled connection."""
        enabled = genome.enabled()
        if not enabled:
            return replace(genome)
        return genome.insert_node(choose(rng, enabled), choose(rng, CHOICES))

    def toggle_connection(self, genome: Genome, rng: np.random.Generator) -> Genome:
        """One random connection gene with its state flipped."""
        return genome.toggle(int(rng.integers(len(genome.connections))))

    # ------------------------------------------------------------ conversion
    def to_descriptor(self, architecture: Genome):
        tail = ([("flatten", nn.Flatten, {}), ("dense_head", RemNetDenseHead, {})]
                if self.head else [])
        return genome_to_descriptor(
            architecture, lambda choice: layer_spec(choice, self.channels, self.dropout), tail)

    def encode(self, architecture: Genome) -> dict:
        return architecture.to_value()

    def decode(self, value: Any) -> Genome:
        return decode_genome(value, _checked_choice, INPUT_NODE, OUTPUT_NODE, "REMNet")

    def to_graph(self, architecture: Genome):
        """The active layers as a graph labelled with their Table 6.1 choices."""
        return genome_graph(architecture)

    def describe(self, architecture: Genome) -> str:
        return describe_genome(architecture, str)


def _checked_choice(choice: Any) -> str:
    if choice not in CHOICES:
        raise OutOfSearchSpaceError(f"unknown layer choice {choice!r}; Table 6.1 choices: "
                                    f"{', '.join(CHOICES)}")
    return choice


def remnet_genome() -> Genome:
    """REMNet (§6.4.2): CONV_2.N, CONV_2.N, CONV_3.N, CONV_5.N, POOL_5.A in a chain,
    then two CONV_3.H branching from the pool into the output."""
    chain = ("CONV_2.N", "CONV_2.N", "CONV_3.N", "CONV_5.N", "POOL_5.A")
    layers = tuple(LayerGene(i, c) for i, c in enumerate(chain + ("CONV_3.H", "CONV_3.H")))
    pairs = [(INPUT_NODE, 0), (0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (4, 6),
             (5, OUTPUT_NODE), (6, OUTPUT_NODE)]
    return Genome(layers, tuple(ConnectionGene(a, b) for a, b in pairs),
                  INPUT_NODE, OUTPUT_NODE, 7).check()


def remnet_architecture(channels: int = 128, head: bool = True):
    """REMNet's descriptor at ``channels`` channels (REMNet-128 has 791,338
    parameters on Fashion-MNIST, REMNet-256 about 3.1 million)."""
    return RemNetSpace(channels=channels, head=head).to_descriptor(remnet_genome())
