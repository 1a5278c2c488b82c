"""Graph layers compiled from descriptors (chapter 7): against a hand-written network."""

import sys

import pytest
import torch
import torch.nn as nn

pytest.importorskip("torch_geometric")

from nord.errors import CompilationError, MissingDependencyError, ShapeError  # noqa: E402
from nord.neural_nets import NeuralDescriptor, NeuralNet  # noqa: E402
from nord.neural_nets.graph_layers import GlobalPool, SAGEBlock  # noqa: E402
from nord.neural_nets.graph_network import GraphNetwork  # noqa: E402
from nord.neural_nets.shape_planning import plan_network  # noqa: E402

FEATURES = 5


def two_graphs():
    """Graph A: 0 -> 1, 0 -> 2, 1 -> 3, 2 -> 3; graph B: 4 -> 5 -> 6, 4 -> 6."""
    edges = torch.tensor([[0, 0, 1, 2, 4, 5, 4], [1, 2, 3, 3, 5, 6, 6]])
    labels = torch.tensor([0, 1, 2, 4, 0, 3, 4])
    x = torch.eye(FEATURES)[labels]
    graph_of_node = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    return x, edges, graph_of_node, 2


def descriptor(pool="global_max_pool", pool_params=None):
    """in -> SAGE_LSTM.N(8) -> SAGE_POOL.H(4) -> out, a skip in -> out, then pooling."""
    d = NeuralDescriptor()
    d.add_layer("input", {}, "in")
    d.add_layer("SAGE_LSTM.N", {"out_channels": 8}, "a")
    d.add_layer("SAGE_POOL.H", {"out_channels": 4}, "b")
    d.add_layer("output", {}, "out")
    for source, target in (("in", "a"), ("a", "b"), ("b", "out"), ("in", "out")):
        d.connect_layers(source, target)
    d.add_layer_sequential(pool, dict(pool_params or {}), "pooling")
    return d


class HandWritten(nn.Module):
    """The same network written out by hand, reading the compiled one's weights:
    neighbours aggregated node by node in a Python loop."""

    def __init__(self, tower: GraphNetwork, pool: str):
        super().__init__()
        self.a, self.b = tower.layer("a").conv, tower.layer("b").conv
        merge = tower.merge("out")
        self.skip = next(p for p in merge.projections if isinstance(p, nn.Linear))
        self.pool = pool

    @staticmethod
    def neighbours(edges, node):
        return sorted(int(s) for s, t in edges.T.tolist() if t == node)

    def forward(self, x, edges, graph_of_node, num_graphs):
        n = x.shape[0]
        # a: SAGEConv with the LSTM aggregator (last LSTM output over the in-neighbours)
        lstm = self.a.aggr_module.lstm
        aggregate = torch.zeros(n, x.shape[1])
        for node in range(n):
            sources = self.neighbours(edges, node)
            if sources:
                out, _ = lstm(x[sources].unsqueeze(0))
                aggregate[node] = out[0, -1]
        h_a = torch.relu(self.a.lin_l(aggregate) + self.a.lin_r(x))
        # b: SAGEConv pooling aggregator: max over relu(W x_j + c) of the in-neighbours
        projected = torch.relu(self.b.lin(h_a))
        aggregate = torch.zeros(n, projected.shape[1])
        for node in range(n):
            sources = self.neighbours(edges, node)
            if sources:
                aggregate[node] = projected[sources].max(dim=0).values
        h_b = torch.relu(self.b.lin_l(aggregate) + self.b.lin_r(h_a))
        # out: the 4-wide layer projected up to the 5-wide input, then summed
        h = self.skip(h_b) + x
        rows = []
        for g in range(num_graphs):
            nodes = h[graph_of_node == g]
            rows.append(nodes.max(dim=0).values if self.pool == "max" else nodes.mean(dim=0))
        return torch.stack(rows)


@pytest.mark.parametrize("pool, mode", [("global_max_pool", "max"),
                                        ("global_mean_pool", "mean")])
def test_compiled_graph_network_matches_the_hand_written_one(pool, mode):
    torch.manual_seed(0)
    tower = GraphNetwork(descriptor(pool), FEATURES).eval()
    assert isinstance(tower.layer("a"), SAGEBlock) and isinstance(tower.layer("pooling"),
                                                                  GlobalPool)
    x, edges, graph_of_node, num_graphs = two_graphs()
    got = tower(x, edges, graph_of_node, num_graphs)
    with torch.no_grad():
        expected = HandWritten(tower, mode)(x, edges, graph_of_node, num_graphs)
    assert got.shape == (2, 5) and tower.output_features == 5
    assert torch.allclose(got, expected, atol=1e-6)
    # the edges' order does not matter (they are sorted by target first)
    assert torch.allclose(tower(x, edges.flip(1), graph_of_node, num_graphs), got, atol=1e-6)


def test_sort_pooling_keeps_k_nodes_by_their_last_feature():
    tower = GraphNetwork(descriptor("sort_pool", {"k": 3}), FEATURES).eval()
    x, edges, graph_of_node, num_graphs = two_graphs()
    out = tower(x, edges, graph_of_node, num_graphs)
    assert out.shape == (2, 15) and tower.output_features == 15
    # each graph keeps 3 nodes, in descending order of their last feature
    for row in out.detach():
        kept = row.reshape(3, 5)
        assert torch.all(kept[:-1, -1] >= kept[1:, -1])
    # a graph of one node keeps it and pads with zeros
    one = tower(torch.eye(FEATURES)[[2]], torch.zeros(2, 0, dtype=torch.long),
                torch.tensor([0]), 1).detach().reshape(3, 5)
    assert torch.equal(one[1:], torch.zeros(2, 5)) and one[0].abs().sum() > 0


def test_sum_to_widest_projects_the_narrow_inputs_up():
    d = descriptor()
    plans = {n.name: n for n in plan_network(d, (), FEATURES, policy="sum_to_widest").nodes}
    assert plans["out"].in_shape.channels == 5
    assert sorted(p.project_to for p in plans["out"].inputs if p.project_to) == [5]
    narrow = {n.name: n for n in plan_network(d, (), FEATURES).nodes}
    assert narrow["out"].in_shape.channels == 4  # the default policy: the narrowest


def test_graph_layers_outside_a_graph_network_say_how_to_call_them():
    tower = GraphNetwork(descriptor(), FEATURES)
    x, _, _, _ = two_graphs()
    with pytest.raises(ShapeError, match="call the GraphNetwork"):
        tower.net(x)
    with pytest.raises(CompilationError, match=r"node features must be \[nodes, 5\]"):
        tower(torch.zeros(3, 4), torch.zeros(2, 0, dtype=torch.long), torch.zeros(3), 1)
    with pytest.raises(CompilationError, match="no graph layer"):
        conv = NeuralDescriptor()
        conv.add_layer_sequential(nn.Linear, {"in_features": 5, "out_features": 3}, "fc")
        GraphNetwork(conv, FEATURES)
    with pytest.raises(ShapeError, match="takes flat"):
        NeuralNet(descriptor(), None, (8, 8), 3)  # graph layers on images


def test_a_descriptor_file_of_graph_ops_compiles_to_the_same_network():
    d = descriptor("sort_pool", {"k": 2})
    back = NeuralDescriptor.from_json(d.to_json())
    first, second = GraphNetwork(d, FEATURES).eval(), GraphNetwork(back, FEATURES).eval()
    second.load_state_dict(first.state_dict())
    x, edges, graph_of_node, num_graphs = two_graphs()
    assert torch.equal(first(x, edges, graph_of_node, num_graphs),
                       second(x, edges, graph_of_node, num_graphs))
    assert "SAGE_LSTM.N" in first.summary()


def test_without_torch_geometric_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_geometric", None)
    with pytest.raises(MissingDependencyError, match=r"nord\[gcn\]"):
        GraphNetwork(descriptor(), FEATURES)
