"""Architectures as labelled graphs, the input of performance predictors (chapter 7).

An :class:`ArchitectureGraph` is what a predictor sees of an architecture: one
node per operation, labelled with the operation's name, and the directed
connections between them, nodes in topological order (the input first, the
output last). Every search space with a graph form gives one through
:meth:`~nord.design.spaces.SearchSpace.to_graph`, and names the labels its
graphs can carry in ``graph_vocabulary``: a node's feature vector is the
one-hot code of its label in that vocabulary (NAS-Bench-101: input, the three
ops, output, the 5-long vector of table 3.1).

:class:`GraphBatch` packs graphs for a network in the two layouts predictors
use: sparse (node features stacked, an ``edge_index`` and a ``batch`` vector,
as torch-geometric takes them) and dense (a zero-padded ``[B, N, F]`` feature
tensor, ``[B, N, N]`` adjacency and a node mask).

Pure data; no torch-geometric needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from nord.errors import GraphDatasetError

__all__ = ["ArchitectureGraph", "GraphBatch", "graph_from_descriptor", "unique_labels"]


@dataclass(frozen=True)
class ArchitectureGraph:
    """Node labels in topological order and forward edges ``(source, target)``.

    >>> g = ArchitectureGraph(("input", "conv3x3-bn-relu", "output"), ((0, 1), (1, 2)))
    >>> g.num_nodes, g.adjacency().tolist()
    (3, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    """

    labels: Tuple[str, ...]
    edges: Tuple[Tuple[int, int], ...]

    def __post_init__(self) -> None:
        labels = tuple(str(label) for label in self.labels)
        edges = tuple(sorted({(int(a), int(b)) for a, b in self.edges}))
        if not labels:
            raise GraphDatasetError("an architecture graph needs at least one node")
        n = len(labels)
        for a, b in edges:
            if not (0 <= a < n and 0 <= b < n):
                raise GraphDatasetError(f"edge ({a}, {b}) names a node outside 0..{n - 1}")
            if a >= b:
                raise GraphDatasetError(f"edge ({a}, {b}) does not run forward; nodes must "
                                        f"be in topological order (sources before targets)")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "edges", edges)

    @property
    def num_nodes(self) -> int:
        return len(self.labels)

    def adjacency(self) -> np.ndarray:
        """``[n, n]`` 0/1 matrix, ``A[i, j] = 1`` for an edge ``i -> j`` (upper triangular)."""
        matrix = np.zeros((self.num_nodes, self.num_nodes), dtype=np.int64)
        for a, b in self.edges:
            matrix[a, b] = 1
        return matrix

    def label_indices(self, vocabulary: Sequence[str]) -> np.ndarray:
        """Each node's label as its index in ``vocabulary``."""
        index = _vocabulary_index(vocabulary)
        unknown = sorted({label for label in self.labels if label not in index})
        if unknown:
            raise GraphDatasetError(f"node labels {unknown} are not in the vocabulary "
                                    f"{list(vocabulary)}; build the graphs and the predictor "
                                    f"from the same search space")
        return np.array([index[label] for label in self.labels], dtype=np.int64)

    def features(self, vocabulary: Sequence[str]) -> np.ndarray:
        """``[n, len(vocabulary)]`` one-hot node features (float32)."""
        codes = self.label_indices(vocabulary)
        out = np.zeros((self.num_nodes, len(vocabulary)), dtype=np.float32)
        out[np.arange(self.num_nodes), codes] = 1.0
        return out

    def key(self) -> str:
        """Isomorphism-invariant hash: isomorphic graphs share it (the split of a
        dataset into train and test keeps each key on one side)."""
        from nord.neural_nets.graph_hash import graph_hash
        return graph_hash(list(self.labels), list(self.edges))

    def to_json(self) -> dict:
        return {"labels": list(self.labels), "edges": [list(e) for e in self.edges]}

    @classmethod
    def from_json(cls, data) -> "ArchitectureGraph":
        if (not isinstance(data, dict) or not isinstance(data.get("labels"), list)
                or not isinstance(data.get("edges"), list)):
            raise GraphDatasetError("an architecture graph is {'labels': [...], 'edges': "
                                    "[[source, target], ...]}")
        try:
            edges = [(int(a), int(b)) for a, b in data["edges"]]
        except (TypeError, ValueError) as error:
            raise GraphDatasetError(f"graph edges must be pairs of node indices ({error})") \
                from error
        return cls(tuple(data["labels"]), tuple(edges))


def _vocabulary_index(vocabulary: Sequence[str]) -> Dict[str, int]:
    index = {str(label): i for i, label in enumerate(vocabulary)}
    if len(index) != len(vocabulary):
        raise GraphDatasetError(f"the vocabulary {list(vocabulary)} lists a label twice")
    return index


def graph_from_descriptor(descriptor, label=None, stop_at: Optional[str] = None
                          ) -> ArchitectureGraph:
    """The graph of a descriptor's active layers (those on an input -> output path),
    in topological order.

    ``label(name, spec)`` gives a node's label (default: the layer's op string,
    or its class name for torch layers); ``stop_at`` names the last node kept
    (a space's output node, so a dense head appended after it is left out).
    """
    from nord.neural_nets.graph import active_nodes, topological_order

    if stop_at is not None:
        descriptor = descriptor.copy()
        for name in list(descriptor.connections[stop_at]):
            descriptor.disconnect_layers(stop_at, name)
        descriptor.last_layer = stop_at
    nodes = topological_order(descriptor, active_nodes(descriptor))
    position = {name: i for i, name in enumerate(nodes)}
    if label is None:
        label = _default_label
    labels = tuple(label(name, descriptor.layers[name]) for name in nodes)
    edges = tuple((position[a], position[b]) for a, b in descriptor.edges()
                  if a in position and b in position)
    return ArchitectureGraph(labels, edges)


def _default_label(name: str, spec) -> str:
    layer = spec.layer
    return layer if isinstance(layer, str) else getattr(layer, "__name__", str(layer))


class GraphBatch:
    """Graphs packed for a network: sparse (``x``, ``edge_index``, ``batch``) and
    dense (:meth:`dense`). Tensors are built on first use, on ``device``.

    ``edge_index`` holds the forward edges; ``reverse=True`` adds each edge's
    reverse too, so messages also flow from a node's successors.
    """

    def __init__(self, graphs: Sequence[ArchitectureGraph], vocabulary: Sequence[str],
                 device=None) -> None:
        if not graphs:
            raise GraphDatasetError("a batch needs at least one graph")
        self.graphs = list(graphs)
        self.vocabulary = tuple(vocabulary)
        self.device = device
        self.sizes = np.array([g.num_nodes for g in self.graphs], dtype=np.int64)
        self.codes = np.concatenate([g.label_indices(self.vocabulary) for g in self.graphs])
        offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.offsets = offsets
        edges = [np.asarray(g.edges, dtype=np.int64).reshape(-1, 2) + offset
                 for g, offset in zip(self.graphs, offsets)]
        self.edge_array = np.concatenate(edges).T if edges else np.zeros((2, 0), np.int64)

    @property
    def num_graphs(self) -> int:
        return len(self.graphs)

    @property
    def max_nodes(self) -> int:
        return int(self.sizes.max())

    def x(self):
        """``[total nodes, F]`` one-hot features."""
        import torch
        x = torch.zeros(int(self.sizes.sum()), len(self.vocabulary), device=self.device)
        x[torch.arange(x.shape[0], device=self.device),
          torch.as_tensor(self.codes, device=self.device)] = 1.0
        return x

    def edge_index(self, reverse: bool = False):
        """``[2, E]`` long tensor of ``(source, target)`` node indices."""
        import torch
        edges = self.edge_array
        if reverse:
            edges = np.concatenate([edges, edges[::-1]], axis=1)
        return torch.as_tensor(np.ascontiguousarray(edges), dtype=torch.long, device=self.device)

    def batch(self):
        """``[total nodes]`` long tensor: which graph each node belongs to."""
        import torch
        return torch.as_tensor(np.repeat(np.arange(self.num_graphs), self.sizes),
                               dtype=torch.long, device=self.device)

    def dense(self, max_nodes: Optional[int] = None):
        """``(x [B, N, F], adjacency [B, N, N], mask [B, N])``, zero-padded to
        ``max_nodes`` (default: the largest graph)."""
        import torch
        n = self.max_nodes if max_nodes is None else int(max_nodes)
        if self.max_nodes > n:
            raise GraphDatasetError(f"a graph of {self.max_nodes} nodes does not fit "
                                    f"{n} x {n}")
        b, f = self.num_graphs, len(self.vocabulary)
        x = torch.zeros(b, n, f, device=self.device)
        adjacency = torch.zeros(b, n, n, device=self.device)
        mask = torch.zeros(b, n, dtype=torch.bool, device=self.device)
        graph = np.repeat(np.arange(b), self.sizes)
        local = np.arange(int(self.sizes.sum())) - np.repeat(self.offsets, self.sizes)
        x[torch.as_tensor(graph), torch.as_tensor(local), torch.as_tensor(self.codes)] = 1.0
        mask[torch.as_tensor(graph), torch.as_tensor(local)] = True
        if self.edge_array.shape[1]:
            source, target = self.edge_array
            g = graph[source]
            adjacency[torch.as_tensor(g), torch.as_tensor(local[source]),
                      torch.as_tensor(local[target])] = 1.0
        return x, adjacency, mask


def unique_labels(graphs: Iterable[ArchitectureGraph]) -> List[str]:
    """Every label the graphs use, sorted (a vocabulary for graphs of unknown origin)."""
    return sorted({label for g in graphs for label in g.labels})
