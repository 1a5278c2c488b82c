"""A descriptor of graph layers compiled into a network over batches of graphs.

Example (the chapter-7 EGraph tower, from a ``gcn`` genome)::

    from nord.design.spaces import get_space
    space = get_space("gcn", filters=32)
    descriptor = space.to_descriptor(space.sample(np.random.default_rng(0)))
    tower = GraphNetwork(descriptor, num_features=5)
    embeddings = tower(x, edge_index, graph_of_node, num_graphs)   # [graphs, E]
    print(tower.summary())

:class:`GraphNetwork` compiles the descriptor with
:class:`~nord.neural_nets.NeuralNet` (the same planner, merges and size
policies as every other network; default policy ``sum_to_widest``) over flat
node features, and gives its graph layers (:mod:`~nord.neural_nets.graph_layers`)
the batch's structure through one shared
:class:`~nord.neural_nets.graph_layers.GraphContext`. Messages follow the
edges (a node hears its predecessors); edges are sorted by target before the
layers see them, as the aggregators need.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn

from nord.errors import CompilationError
from nord.neural_nets.graph_layers import (GRAPH_OPS, GraphContext, GraphLayer,
                                           require_torch_geometric)
from nord.neural_nets.layers import LayerRegistry
from nord.neural_nets.neural_builder import NeuralNet

__all__ = ["GraphNetwork", "sorted_by_target"]


class GraphNetwork(nn.Module):
    """The network of a descriptor whose layers are graph ops.

    ``num_features`` is the width of each node's input features (the size of
    the one-hot vocabulary). ``network(x, edge_index, graph_of_node,
    num_graphs)`` takes packed batches: ``x [nodes, num_features]``,
    ``edge_index [2, edges]`` (any order), ``graph_of_node [nodes]`` (sorted),
    and returns the descriptor's output, ``[graphs, E]`` for a descriptor that
    ends in a global pooling (and ``ranking_head``). ``generator``: each node
    reads its neighbours in a random order drawn from it (training).
    """

    def __init__(self, descriptor, num_features: int, *, policy: str = "sum_to_widest",
                 registry: Optional[LayerRegistry] = None) -> None:
        super().__init__()
        require_torch_geometric()
        graph_ops = [name for name, spec in descriptor.layers.items()
                     if isinstance(spec.layer, str) and spec.layer in GRAPH_OPS]
        if not graph_ops:
            raise CompilationError("the descriptor has no graph layer (GraphSAGE or global "
                                   "pooling op); compile it with NeuralNet")
        self.net = NeuralNet(descriptor, None, (), int(num_features), policy=policy,
                             registry=registry)
        self.num_features = int(num_features)
        self.context = GraphContext()
        for module in self.net.modules():
            if isinstance(module, GraphLayer):
                module.context = self.context

    @property
    def output_features(self) -> int:
        """Features of the output (per graph, for a pooled descriptor)."""
        return self.net.output_shape.channels

    def forward(self, x, edge_index, graph_of_node, num_graphs: int, generator=None):
        if x.dim() != 2 or x.shape[1] != self.num_features:
            raise CompilationError(f"node features must be [nodes, {self.num_features}], got "
                                   f"{tuple(x.shape)}")
        self.context.set(sorted_by_target(edge_index, x.shape[0], generator), graph_of_node,
                         num_graphs)
        try:
            return self.net(x)
        finally:
            self.context.clear()

    def layer(self, name: str) -> nn.Module:
        """The compiled module of the descriptor's node ``name``."""
        return self.net.layer(name)

    def merge(self, name: str) -> Optional[nn.Module]:
        """The input merge in front of node ``name`` (see :meth:`NeuralNet.merge`)."""
        return self.net.merge(name)

    def summary(self) -> str:
        """The compiled network's table (see :meth:`NeuralNet.summary`); node
        shapes are per node, pooled ones per graph."""
        return self.net.summary()


def sorted_by_target(edge_index, num_nodes: int, generator=None):
    """Edges sorted by target (then by source, or in a random order among a
    target's edges when a generator is given)."""
    if edge_index.shape[1] == 0:
        return edge_index
    if generator is None:
        key = edge_index[1] * num_nodes + edge_index[0]
        return edge_index[:, torch.argsort(key)]
    shuffle = torch.randperm(edge_index.shape[1], generator=generator).to(edge_index.device)
    edge_index = edge_index[:, shuffle]
    return edge_index[:, torch.sort(edge_index[1], stable=True).indices]
