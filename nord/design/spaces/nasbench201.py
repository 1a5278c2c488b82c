"""The NAS-Bench-201 cell space: six edges, five ops each (15,625 cells).

Architectures are official cell strings
(``|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|...|``). ``sample``
draws each edge's op uniformly; ``mutate`` is the cell edit of NAS-Bench-201's
regularized-evolution baseline: one edge, chosen uniformly, gets a different
op, chosen uniformly.
"""

from __future__ import annotations

import numpy as np

from nord.design.spaces.base import SearchSpace
from nord.neural_nets.benchmarks.nasbench201 import (OPS, arch_to_descriptor, arch_to_ops,
                                                     ops_to_arch)

__all__ = ["NASBench201Space"]


class NASBench201Space(SearchSpace):
    """NAS-Bench-201 cells as strings; descriptors carry one node per edge."""

    name = "nasbench201"

    def __init__(self, ops=OPS) -> None:
        self.ops = tuple(ops)
        #: node labels of :meth:`to_graph`: the cell's input and output, one node per edge
        self.graph_vocabulary = ("IN", *OPS, "OUT")

    def sample(self, rng: np.random.Generator) -> str:
        return ops_to_arch([self.ops[i] for i in rng.integers(len(self.ops), size=6)])

    def mutate(self, architecture: str, rng: np.random.Generator) -> str:
        ops = list(arch_to_ops(architecture))
        edge = int(rng.integers(len(ops)))
        choices = [op for op in self.ops if op != ops[edge]]
        ops[edge] = choices[int(rng.integers(len(choices)))]
        return ops_to_arch(ops)

    def to_descriptor(self, architecture: str):
        return arch_to_descriptor(architecture)

    def to_graph(self, architecture: str):
        """The cell's descriptor as a graph: ``IN``, one node per edge labelled with
        its op (``none`` kept, so every cell has 8 nodes), ``OUT``."""
        from nord.design.predictors.graphs import graph_from_descriptor
        return graph_from_descriptor(self.to_descriptor(architecture))

    def decode(self, value: str) -> str:
        return ops_to_arch(arch_to_ops(value))  # validates
