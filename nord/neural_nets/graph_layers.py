"""Graph layers the descriptor compiler builds: GraphSAGE convolutions, global poolings.

The chapter-7 rankers (EGraph, Table 7.1) are descriptors like any other: their
nodes name the ops registered here, and
:class:`~nord.neural_nets.graph_network.GraphNetwork` compiles them with
:class:`~nord.neural_nets.NeuralNet`. The tensors passed from layer to layer
are node features ``[nodes, F]`` (a *flat* shape of ``F`` features per node:
the compiler's merges, projections and shape rules apply unchanged); the graph
structure (edges, the graph of each node) is not a tensor flowing through the
network but a :class:`GraphContext` the network shares with its graph layers
and fills before each forward pass.

Ops (their names are the thesis's):

* ``SAGE_LSTM.H|N|D`` (``out_channels``): torch-geometric's ``SAGEConv`` with
  an LSTM aggregator (hidden size = input size, as GraphSAGE and DGL have it)
  that reads each node's real in-neighbours only, in the order the edges are
  given (sorted by target). torch-geometric's own ``aggr="lstm"`` also reads
  the zero padding up to the largest in-degree of the batch, so a node's value
  would depend on the batch it is in. Then ReLU;
* ``SAGE_POOL.H|N|D`` (``out_channels``): ``SAGEConv(project=True,
  aggr="max")``, GraphSAGE's pooling aggregator (a trainable weight matrix and
  a non-linearity on each neighbour, then an element-wise max). Then ReLU;
* ``global_max_pool``, ``global_mean_pool``: one ``[graphs, F]`` embedding;
* ``sort_pool`` (``k``): nodes sorted by their last feature (descending,
  stably), the first ``k`` kept (zeros for missing ones), ``[graphs, k * F]``;
* ``ranking_head`` (``head``, ``filters``): marks where the pairwise ranking
  head takes over. A compiled network passes the embedding through; the head
  compares *two* embeddings, so the siamese network
  (:class:`~nord.design.predictors.egraph.SiameseGCN`) builds it.

The H/N/D suffix is the width the genome chose (half, normal, double the
standard width F); the layer's width itself is its ``out_channels``.
torch-geometric is imported when a layer is built; without it,
:class:`~nord.errors.MissingDependencyError` says how to install it.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch
import torch.nn as nn

from nord.errors import MissingDependencyError, ShapeError
from nord.neural_nets.tensor_shape import Shape

__all__ = ["GraphContext", "GraphLayer", "SAGEBlock", "GlobalPool", "RankingHeadMarker",
           "SAGE_OPS", "POOL_OPS", "HEAD_OP", "GRAPH_OPS", "require_torch_geometric",
           "INSTALL_HINT", "register_graph_ops"]

INSTALL_HINT = "pip install 'nord[gcn]'"
#: Table 7.1: op -> aggregator
SAGE_OPS = {"SAGE_LSTM.H": "lstm", "SAGE_POOL.H": "pool", "SAGE_LSTM.N": "lstm",
            "SAGE_POOL.N": "pool", "SAGE_LSTM.D": "lstm", "SAGE_POOL.D": "pool"}
#: the global pooling ops -> their mode
POOL_OPS = {"global_max_pool": "max", "global_mean_pool": "mean", "sort_pool": "sort"}
HEAD_OP = "ranking_head"
GRAPH_OPS = frozenset(SAGE_OPS) | frozenset(POOL_OPS) | {HEAD_OP}


def require_torch_geometric():
    """The ``torch_geometric`` module, or :class:`MissingDependencyError` with the
    install command."""
    try:
        import torch_geometric
        import torch_geometric.nn  # noqa: F401  (SAGEConv, aggregations)
    except ImportError as error:
        raise MissingDependencyError(f"graph layers (the GCN predictor, EGraph) need "
                                     f"torch-geometric: {INSTALL_HINT} (or pip install "
                                     f"torch-geometric)") from error
    return torch_geometric


class GraphContext:
    """The graph structure of the batch a graph network is running on.

    ``edge_index [2, edges]`` (sorted by target), ``graph_of_node [nodes]``
    (sorted) and ``num_graphs``. A :class:`GraphNetwork
    <nord.neural_nets.graph_network.GraphNetwork>` fills it before its forward
    pass and empties it after; a graph layer run outside one fails with a
    clear error.
    """

    __slots__ = ("edge_index", "graph_of_node", "num_graphs")

    def __init__(self) -> None:
        self.clear()

    def set(self, edge_index, graph_of_node, num_graphs: int) -> None:
        self.edge_index, self.graph_of_node, self.num_graphs = (edge_index, graph_of_node,
                                                                int(num_graphs))

    def clear(self) -> None:
        self.edge_index = self.graph_of_node = None
        self.num_graphs = 0

    def require(self, layer: str) -> "GraphContext":
        if self.edge_index is None:
            raise ShapeError(f"the graph layer {layer} runs on graphs: call the GraphNetwork "
                             f"it belongs to with (x, edge_index, graph_of_node, num_graphs), "
                             f"not the compiled NeuralNet inside it")
        return self


class GraphLayer(nn.Module):
    """A layer that reads the graph structure from its network's :class:`GraphContext`."""

    def __init__(self) -> None:
        super().__init__()
        self.context = GraphContext()  # replaced by the network's shared one

    def graph(self) -> GraphContext:
        return self.context.require(type(self).__name__)


_LSTM_AGGREGATION = []


def _lstm_aggregation_class():
    """The LSTM aggregator (built on first use: torch-geometric is optional)."""
    if _LSTM_AGGREGATION:
        return _LSTM_AGGREGATION[0]
    from torch_geometric.nn.aggr import Aggregation

    class NeighbourLSTMAggregation(Aggregation):
        """GraphSAGE's LSTM aggregator over each node's real neighbours: the LSTM
        output after the last neighbour (zeros for a node without any)."""

        def __init__(self, channels: int) -> None:
            super().__init__()
            self.channels = int(channels)
            self.lstm = torch.nn.LSTM(self.channels, self.channels, batch_first=True)

        def reset_parameters(self) -> None:
            self.lstm.reset_parameters()

        def forward(self, x, index=None, ptr=None, dim_size=None, dim=-2,
                    max_num_elements=None):
            dense, mask = self.to_dense_batch(x, index, ptr, dim_size, dim,
                                              max_num_elements=max_num_elements)
            if dense.shape[1] == 0:
                return x.new_zeros(dense.shape[0], self.channels)
            out, _ = self.lstm(dense)
            lengths = mask.sum(dim=1)
            rows = torch.arange(out.shape[0], device=out.device)
            last = out[rows, (lengths - 1).clamp(min=0)]
            return last * (lengths > 0).unsqueeze(-1).to(last.dtype)

        def __repr__(self) -> str:
            return f"{type(self).__name__}({self.channels})"

    _LSTM_AGGREGATION.append(NeighbourLSTMAggregation)
    return NeighbourLSTMAggregation


class SAGEBlock(GraphLayer):
    """A GraphSAGE convolution (``'lstm'`` or ``'pool'`` aggregator), then ReLU."""

    def __init__(self, aggregator: str, in_channels: int, out_channels: int) -> None:
        super().__init__()
        require_torch_geometric()
        from torch_geometric.nn import SAGEConv
        if aggregator == "lstm":
            self.conv = SAGEConv(in_channels, out_channels,
                                 aggr=_lstm_aggregation_class()(in_channels))
        elif aggregator == "pool":
            self.conv = SAGEConv(in_channels, out_channels, aggr="max", project=True)
        else:
            raise ShapeError(f"unknown GraphSAGE aggregator {aggregator!r}; use 'lstm' or 'pool'")
        self.aggregator = aggregator

    def forward(self, x):
        return torch.relu(self.conv(x, self.graph().edge_index))

    def extra_repr(self) -> str:
        return f"aggregator={self.aggregator!r}"


class GlobalPool(GraphLayer):
    """Node features ``[nodes, F]`` to graph embeddings: ``'max'``, ``'mean'`` or
    ``'sort'`` pooling keeping ``k`` nodes (``[graphs, k * F]``)."""

    def __init__(self, mode: str, k: int = 1) -> None:
        super().__init__()
        if mode not in ("max", "mean", "sort"):
            raise ShapeError(f"unknown global pooling {mode!r}; use 'max', 'mean' or 'sort'")
        self.mode, self.k = mode, int(k)

    def forward(self, h):
        graph = self.graph()
        from torch_geometric.nn import global_max_pool, global_mean_pool
        from torch_geometric.utils import to_dense_batch
        batch, num_graphs = graph.graph_of_node, graph.num_graphs
        if self.mode == "max":
            return global_max_pool(h, batch, num_graphs)
        if self.mode == "mean":
            return global_mean_pool(h, batch, num_graphs)
        k = self.k
        dense, mask = to_dense_batch(h, batch, batch_size=num_graphs)
        if dense.shape[1] < k:
            pad = k - dense.shape[1]
            dense = torch.cat([dense, dense.new_zeros(num_graphs, pad, dense.shape[2])], 1)
            mask = torch.cat([mask, mask.new_zeros(num_graphs, pad)], 1)
        key = dense[:, :, -1].masked_fill(~mask, float("-inf"))
        order = torch.sort(key, dim=1, descending=True, stable=True).indices[:, :k]
        kept = torch.gather(dense, 1, order.unsqueeze(-1).expand(-1, -1, dense.shape[2]))
        kept = kept * torch.gather(mask, 1, order).unsqueeze(-1).to(kept.dtype)
        return kept.reshape(num_graphs, -1)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}" + (f", k={self.k}" if self.mode == "sort" else "")


class RankingHeadMarker(nn.Identity):
    """Where the pairwise ranking head takes over (passes the embedding through)."""

    def __init__(self, head: str = "ternary", filters: Optional[int] = None) -> None:
        super().__init__()
        self.head, self.filters = head, filters

    def extra_repr(self) -> str:
        return f"head={self.head!r}"


# ---------------------------------------------------------------- registry rules
def _sage_factory(op: str):
    def factory(in_shape: Shape, out_channels: int) -> nn.Module:
        return SAGEBlock(SAGE_OPS[op], in_shape.channels, int(out_channels))
    factory.__doc__ = (f"GraphSAGE convolution with the {SAGE_OPS[op]} aggregator, then ReLU "
                       f"(Table 7.1)")
    return factory


def _sage_shape(params: Dict[str, Any], in_shape: Shape) -> Shape:
    out = params["out_channels"]
    if isinstance(out, bool) or not isinstance(out, int) or out < 1:
        raise ShapeError(f"out_channels must be a positive whole number, got {out!r}")
    return Shape(out, ())


def _pool_factory(op: str):
    def factory(in_shape: Shape, k: int = 1) -> nn.Module:
        return GlobalPool(POOL_OPS[op], k)
    factory.__doc__ = {"global_max_pool": "global max pooling of node features",
                       "global_mean_pool": "global mean pooling of node features",
                       "sort_pool": "sort pooling: the k nodes with the largest last feature"}[op]
    return factory


def _pool_shape(params: Dict[str, Any], in_shape: Shape) -> Shape:
    k = params.get("k", 1)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ShapeError(f"sort pooling keeps k >= 1 nodes, got k={k!r}")
    return Shape(in_shape.channels * k, ())


def _head_factory(in_shape: Shape, head: str = "ternary", filters: Optional[int] = None):
    """the pairwise ranking head's place (the siamese network builds the head)"""
    return RankingHeadMarker(head, filters)


def register_graph_ops(registry, register_op) -> None:
    """Register the ops of this module into ``registry`` (``register_op`` is
    :func:`nord.neural_nets.layers.register_op`; the layer registry calls this)."""
    for op in SAGE_OPS:
        register_op(op, _sage_factory(op), output_shape=_sage_shape, ranks=[0],
                    registry=registry)
    for op in POOL_OPS:
        register_op(op, _pool_factory(op), output_shape=_pool_shape, ranks=[0],
                    channel_param=None, registry=registry)
    register_op(HEAD_OP, _head_factory, output_shape=lambda params, shape: shape, ranks=[0],
                channel_param=None, registry=registry)
