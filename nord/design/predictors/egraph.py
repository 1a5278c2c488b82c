"""EGraph: the siamese GraphSAGE ranker of chapter 7 (§7.3) and its genome.

A :class:`GCNArchitecture` is a chapter-6 genome (§7.3.2): layer genes pick
one of the six GraphSAGE layers of Table 7.1, connection genes (enabled or
disabled, as in chapter 6) wire them into a DAG from the input node (−2: the
one-hot node labels) to the output node (99), and a hyper-parameter gene picks
the global pooling (max, mean, or sort pooling keeping ``k`` = 1, 2, 3 nodes).
``filters`` is the standard width ``F`` (Table 7.2: 300), ``head`` the ranking
head. The thesis's best NAS-Bench-101 network is :func:`egraph_architecture`.

:class:`SiameseGCN` is the network such a genome compiles to (§7.3.3, figure
7.2). Its shared tower is the genome's descriptor
(:meth:`GCNArchitecture.to_descriptor`) compiled by
:class:`~nord.neural_nets.graph_network.GraphNetwork` with the ops of
:mod:`nord.neural_nets.graph_layers`, so a genome exports, draws and is
stored as any descriptor is:

* every active node in topological order (the compiler's ``sum_to_widest``
  policy). A node with several inputs sums
  them after a bias-free linear projection of each input narrower or wider
  than the widest one to that width (the chapter-6 rule of one common size,
  taken at the largest so that a skip from the 5-wide input does not squeeze
  a 300-wide layer). A layer node then applies its GraphSAGE layer and ReLU;
  the output node only sums;
* ``SAGE_LSTM.*``: torch-geometric's ``SAGEConv`` with an LSTM aggregator
  (hidden size = input size, as GraphSAGE and DGL have it) that reads each
  node's real in-neighbours only, in order of their index (during training in
  a random order drawn from the training generator, §7.3.1: "a random
  shuffling of the inputs"). torch-geometric's own ``aggr="lstm"`` also reads
  the zero padding up to the largest in-degree of the batch, so a node's
  value would depend on the batch it is in; edges are sorted by target here,
  as its aggregators require;
* ``SAGE_POOL.*``: ``SAGEConv(project=True, aggr="max")``, GraphSAGE's
  pooling aggregator (§7.3.1: a trainable weight matrix and a non-linearity
  on each neighbour, then an element-wise max);
* the global pooling of the output node's features gives a graph embedding
  of ``E`` features (``k * width`` for sort pooling: nodes sorted by their
  last feature, stably, the first ``k`` kept, missing ones zero);
* ``ternary`` head: the two embeddings concatenated (``2E``), a dense layer of
  half that (``E``), ReLU, 3 logits in the order of
  :data:`~nord.design.predictors.datasets.BETTER`, ``EQUAL``, ``WORSE``. The
  weights are shared by both graphs, and the logits are antisymmetrised:
  ``BETTER(G1, G2) = (b(G1, G2) + w(G2, G1)) / 2`` and so on, so swapping the
  pair swaps the BETTER and WORSE logits exactly and keeps EQUAL;
* ``regression`` head: one score per graph (a dense layer of ``E / 2``, ReLU,
  one output); a pair's output is the difference of the scores, trained with
  a margin ranking loss (Table 7.4, "EGraph-Regression").

Messages follow the edges (a node hears its predecessors), as the graph is
given; ``bidirectional=True`` adds the reverse edges. Weights are drawn from
``seed`` in a forked generator: building a model never moves torch's global
random state. torch-geometric is imported when a model is built;
without it, :class:`~nord.errors.MissingDependencyError` says how to install it.
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from nord.design.spaces.genome import Genome, LayerGene, describe_genome, genome_to_descriptor
from nord.errors import OutOfSearchSpaceError, PredictorError
from nord.neural_nets.graph_layers import HEAD_OP, require_torch_geometric
from nord.neural_nets.graph_network import GraphNetwork

__all__ = ["SAGELayer", "GCNArchitecture", "SiameseGCN", "egraph_architecture",
           "require_torch_geometric", "LAYER_CHOICES", "AGGREGATORS", "WIDTHS", "POOLINGS",
           "HEADS", "INPUT_NODE", "OUTPUT_NODE", "POOLING_OPS", "HEAD_OP"]

#: Table 7.1, in the thesis's order
LAYER_CHOICES = ("SAGE_LSTM.H", "SAGE_POOL.H", "SAGE_LSTM.N", "SAGE_POOL.N",
                 "SAGE_LSTM.D", "SAGE_POOL.D")
AGGREGATORS = ("lstm", "pool")
#: width variant -> multiple of the standard width F (half, normal, double)
WIDTHS = {"H": 0.5, "N": 1.0, "D": 2.0}
#: the hyper-parameter gene: global max / mean pooling, sort pooling with k = 1, 2, 3
POOLINGS = ("max", "mean", "sort1", "sort2", "sort3")
HEADS = ("ternary", "regression")
INPUT_NODE, OUTPUT_NODE = -2, 99
#: the pooling node's op and params for each pooling gene
POOLING_OPS = {"max": ("global_max_pool", {}), "mean": ("global_mean_pool", {}),
               "sort1": ("sort_pool", {"k": 1}), "sort2": ("sort_pool", {"k": 2}),
               "sort3": ("sort_pool", {"k": 3})}


# ---------------------------------------------------------------- genome
@dataclass(frozen=True)
class SAGELayer:
    """One Table 7.1 layer gene: its aggregator and its width as a multiple of F.

    >>> layer = SAGELayer.from_choice("SAGE_LSTM.H")
    >>> layer.aggregator, layer.width, layer.features(300), str(layer)
    ('lstm', 0.5, 150, 'SAGE_LSTM.H')
    """

    aggregator: str
    width: float

    def __post_init__(self) -> None:
        if self.aggregator not in AGGREGATORS:
            raise OutOfSearchSpaceError(f"unknown aggregator {self.aggregator!r}; Table 7.1 "
                                        f"aggregators: {', '.join(AGGREGATORS)}")
        if isinstance(self.width, bool) or self.width not in WIDTHS.values():
            raise OutOfSearchSpaceError(f"layer width must be one of "
                                        f"{sorted(WIDTHS.values())} times F, got {self.width!r}")
        object.__setattr__(self, "width", float(self.width))

    @property
    def choice(self) -> str:
        """The Table 7.1 name, e.g. ``SAGE_POOL.D``."""
        variant = next(k for k, v in WIDTHS.items() if v == self.width)
        return f"SAGE_{self.aggregator.upper()}.{variant}"

    def features(self, filters: int) -> int:
        """Output features of this layer at standard width ``filters``."""
        return int(round(self.width * filters))

    @classmethod
    def from_choice(cls, choice: Any) -> "SAGELayer":
        if isinstance(choice, SAGELayer):
            return choice
        if choice not in LAYER_CHOICES:
            raise OutOfSearchSpaceError(f"unknown layer choice {choice!r}; Table 7.1 choices: "
                                        f"{', '.join(LAYER_CHOICES)}")
        kind, variant = choice[len("SAGE_"):].split(".")
        return cls(kind.lower(), WIDTHS[variant])

    def __str__(self) -> str:
        return self.choice


@dataclass(frozen=True)
class GCNArchitecture:
    """A chapter-7 genome: SAGE layer genes, connection genes, the pooling gene.

    ``genome`` is a :class:`~nord.design.spaces.genome.Genome` from −2 (input)
    to 99 (output) whose layer genes are :class:`SAGELayer` values (Table 7.1
    names are accepted and converted). It must connect the input to the
    output through at least one active layer.

    >>> arch = GCNArchitecture.chain(["SAGE_LSTM.H", "SAGE_LSTM.H"], pooling="max")
    >>> arch.describe()
    'IN -> SAGE_LSTM.H(0) -> SAGE_LSTM.H(1) -> OUT | max pooling, ternary head, F=300'
    >>> GCNArchitecture.from_json(arch.to_json()) == arch
    True
    """

    genome: Genome
    pooling: str = "max"
    head: str = "ternary"
    filters: int = 300

    def __post_init__(self) -> None:
        if not isinstance(self.genome, Genome):
            raise OutOfSearchSpaceError(f"a GCN architecture holds a Genome, got "
                                        f"{type(self.genome).__name__}")
        if self.pooling not in POOLINGS:
            raise OutOfSearchSpaceError(f"unknown global pooling {self.pooling!r}; choose one "
                                        f"of {', '.join(POOLINGS)}")
        if self.head not in HEADS:
            raise OutOfSearchSpaceError(f"unknown head {self.head!r}; choose one of "
                                        f"{', '.join(HEADS)}")
        if (isinstance(self.filters, bool) or not isinstance(self.filters, numbers.Integral)
                or self.filters < 2 or self.filters % 2):
            raise OutOfSearchSpaceError(f"filters (F) must be an even whole number >= 2 "
                                        f"(half-width layers use F/2), got {self.filters!r}")
        genome = self.genome
        layers = tuple(LayerGene(g.node, SAGELayer.from_choice(g.layer)) for g in genome.layers)
        genome = replace(genome, layers=layers).check()
        if (genome.input_node, genome.output_node) != (INPUT_NODE, OUTPUT_NODE):
            raise OutOfSearchSpaceError(f"a GCN genome has input {INPUT_NODE} and output "
                                        f"{OUTPUT_NODE}, got {genome.input_node} and "
                                        f"{genome.output_node}")
        active = genome.active_nodes()
        if not active:
            raise OutOfSearchSpaceError("the genome's enabled connections do not lead from the "
                                        "input to the output; enable a connection on a path")
        if len(active) < 3:
            raise OutOfSearchSpaceError("the genome has no active SAGE layer (the input feeds "
                                        "the output directly); insert a layer")
        object.__setattr__(self, "genome", genome)
        object.__setattr__(self, "filters", int(self.filters))

    # ------------------------------------------------------------ building
    @classmethod
    def chain(cls, layers: Sequence[Any], pooling: str = "max", head: str = "ternary",
              filters: int = 300) -> "GCNArchitecture":
        """Layers in a chain, input -> layers -> output (as node insertions into
        ``-2 -> 99``, so the genome is one evolution could have made)."""
        if not layers:
            raise OutOfSearchSpaceError("a GCN architecture needs at least one layer")
        genome = Genome.minimal(INPUT_NODE, OUTPUT_NODE)
        for layer in layers:
            genome = genome.insert_node(len(genome.connections) - 1, SAGELayer.from_choice(layer))
        return cls(genome, pooling, head, filters)

    # ------------------------------------------------------------ queries
    @property
    def layers(self) -> Tuple[SAGELayer, ...]:
        """Every layer gene (active or not), oldest first."""
        return tuple(g.layer for g in self.genome.layers)

    def active_order(self) -> List[Tuple[int, List[int]]]:
        """Active nodes in topological order, each with its active sources."""
        return self.genome.active_order()

    def node_features(self, num_features: int) -> Dict[int, int]:
        """Features each active node outputs, the input having ``num_features``."""
        widths: Dict[int, int] = {}
        for node, sources in self.active_order():
            if node == INPUT_NODE:
                widths[node] = int(num_features)
            elif node == OUTPUT_NODE:
                widths[node] = max(widths[s] for s in sources)
            else:
                widths[node] = self.genome.layer(node).features(self.filters)
        return widths

    @property
    def sort_k(self) -> int:
        """Nodes kept by sort pooling (1 for max and mean pooling)."""
        return int(self.pooling[4:]) if self.pooling.startswith("sort") else 1

    def embedding_features(self, num_features: int) -> int:
        """Features of one graph's embedding (the input of the head, per graph)."""
        return self.node_features(num_features)[OUTPUT_NODE] * self.sort_k

    def to_descriptor(self):
        """The :class:`~nord.neural_nets.NeuralDescriptor` of the network: node
        ``-2`` the input, one node per layer gene named by its id with its
        Table 7.1 name as op and ``{'out_channels': width}``, ``99`` the output
        (it sums its inputs), then a ``pooling`` node (``global_max_pool``,
        ``global_mean_pool`` or ``sort_pool`` with ``k``) and a ``head`` node
        (``ranking_head``). It compiles with
        :class:`~nord.neural_nets.graph_network.GraphNetwork` into the tower
        of :class:`SiameseGCN`; disabled connections are left out."""
        pool_op, pool_params = POOLING_OPS[self.pooling]
        tail = [("pooling", pool_op, dict(pool_params)),
                ("head", HEAD_OP, {"head": self.head, "filters": self.filters})]
        filters = self.filters
        return genome_to_descriptor(
            self.genome, lambda layer: (layer.choice, {"out_channels": layer.features(filters)}),
            tail)

    def describe(self) -> str:
        return (f"{describe_genome(self.genome, str)} | {self.pooling} pooling, "
                f"{self.head} head, F={self.filters}")

    # ------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        """A JSON-ready dict (layers by their Table 7.1 names)."""
        value = self.genome.to_value(str)
        value.update({"pooling": self.pooling, "head": self.head, "filters": self.filters})
        return value

    @classmethod
    def from_json(cls, data: Any) -> "GCNArchitecture":
        """The architecture :meth:`to_json` wrote (a dict or its JSON text; untrusted:
        every field is checked, only data is read)."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except ValueError as error:
                raise OutOfSearchSpaceError(f"not JSON text: {error}") from error
        keys = {"input", "output", "next_node", "layers", "connections", "pooling", "head",
                "filters"}
        if not isinstance(data, dict):
            raise OutOfSearchSpaceError(f"a GCN architecture is a JSON object with keys "
                                        f"{sorted(keys)}, got {type(data).__name__}")
        missing, unknown = sorted(keys - set(data)), sorted(set(data) - keys)
        if missing or unknown:
            raise OutOfSearchSpaceError(f"a GCN architecture has keys {sorted(keys)}; "
                                        f"missing {missing}, unknown {unknown}")
        for key in ("layers", "connections"):
            if not isinstance(data[key], list) or not all(
                    isinstance(item, list) and len(item) == (2 if key == "layers" else 3)
                    for item in data[key]):
                shape = "[node, choice]" if key == "layers" else "[source, target, enabled]"
                raise OutOfSearchSpaceError(f"'{key}' must be a list of {shape} lists")
        if not all(isinstance(choice, str) for _, choice in data["layers"]):
            raise OutOfSearchSpaceError(f"layer choices are Table 7.1 names "
                                        f"({', '.join(LAYER_CHOICES)})")
        for key in ("pooling", "head"):
            if not isinstance(data[key], str):
                raise OutOfSearchSpaceError(f"'{key}' must be a string, got {data[key]!r}")
        filters = data["filters"]
        if isinstance(filters, bool) or not isinstance(filters, numbers.Integral):
            raise OutOfSearchSpaceError(f"'filters' must be a whole number, got {filters!r}")
        genome = Genome.from_value(data, SAGELayer.from_choice)
        return cls(genome, data["pooling"], data["head"], int(filters))


def egraph_architecture(filters: int = 300, head: str = "ternary") -> GCNArchitecture:
    """The best NAS-Bench-101 network of §7.4.2: two ``SAGE_LSTM.H`` layers in a
    chain, then global max pooling."""
    return GCNArchitecture.chain(["SAGE_LSTM.H", "SAGE_LSTM.H"], pooling="max", head=head,
                                 filters=filters)


# ---------------------------------------------------------------- network
class SiameseGCN(nn.Module):
    """The network of a :class:`GCNArchitecture` for graphs with ``num_features``
    one-hot node features (see the module docstring).

    ``model(batch1, batch2)`` takes two
    :class:`~nord.design.predictors.graphs.GraphBatch` objects of equally many
    graphs and returns ``[B, 3]`` logits (ternary head: is G1 BETTER, EQUAL or
    WORSE than G2) or ``[B]`` score differences ``s(G1) - s(G2)`` (regression).
    ``embed`` gives graph embeddings, ``score`` one score per graph
    (regression head), ``pair_logits`` / ``comparison_logits`` compare
    embeddings.
    """

    def __init__(self, architecture: GCNArchitecture, num_features: int, *, seed: int = 0,
                 bidirectional: bool = False) -> None:
        super().__init__()
        require_torch_geometric()
        if not isinstance(architecture, GCNArchitecture):
            raise PredictorError(f"SiameseGCN needs a GCNArchitecture, got "
                                 f"{type(architecture).__name__}")
        if isinstance(num_features, bool) or not isinstance(num_features, numbers.Integral) \
                or num_features < 1:
            raise PredictorError(f"num_features must be a whole number >= 1 (the size of "
                                 f"the graphs' vocabulary), got {num_features!r}")
        self.architecture = architecture
        self.num_features = int(num_features)
        self.bidirectional = bool(bidirectional)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.tower = GraphNetwork(architecture.to_descriptor(), self.num_features)
            features = architecture.embedding_features(self.num_features)
            self.embedding_size = features
            if architecture.head == "ternary":
                self.head = nn.Sequential(nn.Linear(2 * features, features), nn.ReLU(),
                                          nn.Linear(features, 3))
            else:
                hidden = max(1, features // 2)
                self.head = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(),
                                          nn.Linear(hidden, 1))

    @property
    def ternary(self) -> bool:
        return self.architecture.head == "ternary"

    @property
    def device(self):
        return next(self.parameters()).device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------ embeddings
    def embed(self, batch, generator=None):
        """``[B, E]`` embeddings of a :class:`~nord.design.predictors.graphs.GraphBatch`."""
        if len(batch.vocabulary) != self.num_features:
            raise PredictorError(f"the batch's vocabulary has {len(batch.vocabulary)} labels but "
                                 f"the model was built for {self.num_features} node features; "
                                 f"build both from the same dataset")
        device = self.device
        x = batch.x().to(device)
        edges = torch.as_tensor(np.ascontiguousarray(batch.edge_array), dtype=torch.long,
                                device=device)
        graph_of_node = batch.batch().to(device)
        return self.embed_tensors(x, edges, graph_of_node, batch.num_graphs, generator)

    def embed_tensors(self, x, edge_index, graph_of_node, num_graphs: int, generator=None):
        """Embeddings from packed tensors: ``x [nodes, F]``, forward ``edge_index
        [2, edges]`` (any order), ``graph_of_node [nodes]`` (sorted). With a
        ``generator``, each node reads its neighbours in a random order."""
        if self.bidirectional:
            edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
        return self.tower(x, edge_index, graph_of_node, int(num_graphs), generator)

    # ------------------------------------------------------------ heads
    def score(self, embeddings):
        """One score per embedding (regression head)."""
        if self.ternary:
            raise PredictorError("a ternary-head model compares pairs; use pair_logits or "
                                 "training.predict_scores for one score per architecture")
        return self.head(embeddings).squeeze(-1)

    def pair_logits(self, first, second):
        """Antisymmetrised ternary logits ``[B, 3]`` of embedding pairs (row by row)."""
        if not self.ternary:
            raise PredictorError("a regression-head model scores graphs; use score")
        forward = self.head(torch.cat([first, second], dim=1))
        backward = self.head(torch.cat([second, first], dim=1))
        return _antisymmetrise(forward, backward)

    def comparison_logits(self, rows, columns):
        """Antisymmetrised logits ``[R, C, 3]`` of every row embedding against every
        column embedding (the first dense layer split in two halves, so this
        costs ``R * C * E`` rather than a head pass per pair)."""
        if not self.ternary:
            raise PredictorError("a regression-head model scores graphs; use score")
        first, activation, last = self.head
        weight, bias = first.weight, first.bias
        e = self.embedding_size
        row_a, row_b = rows @ weight[:, :e].T, rows @ weight[:, e:].T
        col_a, col_b = columns @ weight[:, :e].T, columns @ weight[:, e:].T
        forward = last(torch.relu(row_a[:, None, :] + col_b[None, :, :] + bias))
        backward = last(torch.relu(col_a[None, :, :] + row_b[:, None, :] + bias))
        return _antisymmetrise(forward, backward)

    def forward(self, first, second, generator=None):
        if first.num_graphs != second.num_graphs:
            raise PredictorError(f"pairs need equally many graphs on both sides, got "
                                 f"{first.num_graphs} and {second.num_graphs}")
        e1, e2 = self.embed(first, generator), self.embed(second, generator)
        if self.ternary:
            return self.pair_logits(e1, e2)
        return self.score(e1) - self.score(e2)


def _antisymmetrise(forward, backward):
    """``(l(G1, G2) + flip(l(G2, G1))) / 2``: BETTER with WORSE swapped, EQUAL kept."""
    return (forward + backward.flip(-1)) / 2
