"""Architectures as graphs and datasets of them: exact values on hand cases."""

import json

import numpy as np
import pytest

from nord.design.predictors.datasets import (BETTER, EQUAL, NASBENCH101_VOCABULARY, WORSE,
                                             ArchitectureDataset, graph_from_matrix,
                                             pair_labels, ranking_pairs)
from nord.design.predictors.graphs import ArchitectureGraph, GraphBatch, graph_from_descriptor
from nord.design.spaces import get_space
from nord.errors import GraphDatasetError
from nord.neural_nets import NeuralDescriptor

VOCAB = ("input", "a", "b", "output")


def chain(*ops):
    labels = ("input", *ops, "output")
    return ArchitectureGraph(labels, tuple((i, i + 1) for i in range(len(labels) - 1)))


def test_graph_adjacency_features_and_checks():
    g = ArchitectureGraph(("input", "a", "b", "output"), ((0, 1), (0, 2), (1, 3), (2, 3), (1, 3)))
    assert g.edges == ((0, 1), (0, 2), (1, 3), (2, 3))  # duplicates merged, sorted
    assert g.adjacency().tolist() == [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert g.features(VOCAB).tolist() == np.eye(4).tolist()
    with pytest.raises(GraphDatasetError, match="not in the vocabulary"):
        g.features(("input", "a", "output"))
    with pytest.raises(GraphDatasetError, match="does not run forward"):
        ArchitectureGraph(("input", "output"), ((1, 0),))
    with pytest.raises(GraphDatasetError, match="outside"):
        ArchitectureGraph(("input", "output"), ((0, 5),))
    assert ArchitectureGraph.from_json(json.loads(json.dumps(g.to_json()))) == g


def test_isomorphic_graphs_share_a_key_others_do_not():
    # a diamond whose two branches are listed in either order is the same architecture
    one = ArchitectureGraph(("input", "a", "b", "output"), ((0, 1), (0, 2), (1, 3), (2, 3)))
    two = ArchitectureGraph(("input", "b", "a", "output"), ((0, 1), (0, 2), (1, 3), (2, 3)))
    assert one.key() == two.key()
    assert chain("a", "b").key() != chain("b", "a").key()


def test_batch_sparse_and_dense_layouts():
    graphs = [chain("a"), chain("b", "a")]
    batch = GraphBatch(graphs, VOCAB)
    assert batch.num_graphs == 2 and batch.max_nodes == 4
    assert batch.batch().tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert batch.edge_index().tolist() == [[0, 1, 3, 4, 5], [1, 2, 4, 5, 6]]
    assert batch.edge_index(reverse=True).shape == (2, 10)
    assert batch.x().argmax(1).tolist() == [0, 1, 3, 0, 2, 1, 3]
    x, adjacency, mask = batch.dense()
    assert x.shape == (2, 4, 4) and mask.tolist() == [[True, True, True, False], [True] * 4]
    assert adjacency[0].tolist() == [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert x[0, 3].sum() == 0  # padding
    with pytest.raises(GraphDatasetError, match="does not fit"):
        batch.dense(max_nodes=3)


def test_pair_labels_with_epsilon():
    first = np.array([0.90, 0.90, 0.90, 0.90, 0.90])
    second = np.array([0.80, 0.905, 0.95, 0.8951, 0.90])
    assert pair_labels(first, second, 0.01).tolist() == [BETTER, EQUAL, WORSE, EQUAL, EQUAL]
    # a difference of exactly epsilon is not "within" it (|d| < epsilon is equal)
    assert pair_labels(np.array([0.5]), np.array([0.25]), 0.25).tolist() == [BETTER]
    assert pair_labels(first, second, 0.0).tolist() == [BETTER, WORSE, WORSE, BETTER, WORSE]
    with pytest.raises(GraphDatasetError):
        pair_labels(first, second, -0.1)


def test_ranking_pairs():
    i, j = ranking_pairs(3)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    i, j = ranking_pairs(3, ordered=False)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (1, 2)]


def test_build_merges_isomorphic_architectures():
    one = ArchitectureGraph(("input", "a", "b", "output"), ((0, 1), (0, 2), (1, 3), (2, 3)))
    two = ArchitectureGraph(("input", "b", "a", "output"), ((0, 1), (0, 2), (1, 3), (2, 3)))
    ds = ArchitectureDataset.build([one, chain("a"), two], [0.5, 0.2, 0.7], VOCAB, "hand")
    assert len(ds) == 2 and ds.targets.tolist() == pytest.approx([0.6, 0.2])
    with pytest.raises(GraphDatasetError, match="not in the vocabulary"):
        ArchitectureDataset.build([chain("c")], [0.1], VOCAB)
    with pytest.raises(GraphDatasetError, match="target"):
        ArchitectureDataset.build([chain("a"), chain("b")], [0.1, float("nan")], VOCAB)
    again = ArchitectureDataset.from_json(json.loads(json.dumps(ds.to_json())))
    assert again.keys == ds.keys and again.targets.tolist() == ds.targets.tolist()


def test_split_never_shares_an_architecture_up_to_isomorphism():
    space = get_space("nasbench101")
    rng = np.random.default_rng(3)
    architectures = [space.sample(rng) for _ in range(120)]
    # the same cells again with their layers renamed: isomorphic copies
    copies = [space.from_matrix(*space.to_matrix(a)) for a in architectures[:40]]
    ds = ArchitectureDataset.from_architectures(space, architectures + copies,
                                                rng.random(160))
    assert len(ds) < 120  # the copies (and isomorphic samples) were merged
    train, test = ds.split(0.7, seed=1)
    assert len(train) + len(test) == len(ds)
    assert not set(train.keys) & set(test.keys)
    assert len(set(train.keys) | set(test.keys)) == len(ds)
    train2, _ = ds.split(0.7, seed=1)
    assert train2.keys == train.keys  # seeded
    assert ds.split(0.7, seed=2)[0].keys != train.keys
    small_train, small_test = ds.split(10, 20, seed=0)
    assert (len(small_train), len(small_test)) == (10, 20)


def test_empty_and_tiny_datasets_are_refused():
    empty = ArchitectureDataset.build([], [], VOCAB, "empty")
    with pytest.raises(GraphDatasetError, match="holds 0 architectures"):
        empty.split()
    one = ArchitectureDataset.build([chain("a")], [0.3], VOCAB, "one")
    with pytest.raises(GraphDatasetError, match="holds 1 architecture;"):
        one.check_trainable()
    three = ArchitectureDataset.build([chain("a"), chain("b"), chain("a", "b")], [1, 2, 3], VOCAB)
    with pytest.raises(GraphDatasetError, match="at least 2"):
        three.split(0.5)


def test_space_graph_forms():
    rng = np.random.default_rng(0)
    nb201 = get_space("nasbench201")
    g = nb201.to_graph("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|"
                       "nor_conv_1x1~1|skip_connect~2|")
    assert g.labels == ("IN", "nor_conv_3x3", "none", "avg_pool_3x3", "skip_connect",
                        "nor_conv_1x1", "skip_connect", "OUT")
    assert len(g.edges) == 10
    g.features(nb201.graph_vocabulary)
    nb101 = get_space("nasbench101")
    matrix = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    ops = ["input", "conv3x3-bn-relu", "maxpool3x3", "output"]
    cell = nb101.from_matrix(matrix, ops)
    assert nb101.to_graph(cell) == graph_from_matrix(matrix, ops)
    assert nb101.graph_vocabulary == NASBENCH101_VOCABULARY
    remnet = get_space("remnet")
    genome = remnet.sample(rng)
    graph = remnet.to_graph(genome)
    assert graph.labels[0] == "input" and graph.labels[-1] == "output"
    assert len(graph.labels) == len(genome.active_nodes())
    graph.features(remnet.graph_vocabulary)
    with pytest.raises(GraphDatasetError, match="no graph form"):
        get_space("deepneat").to_graph(None)


def test_graph_from_descriptor_keeps_active_layers_and_stops_at_the_output():
    d = NeuralDescriptor()
    d.add_layer_sequential("input", {})
    d.add_layer_sequential("a", {}, "x")
    d.add_layer_sequential("output", {}, "out")
    d.add_layer_sequential("head", {}, "head")
    d.add_layer("b", {}, "dead")  # reaches no output: pruned
    d.connect_layers("x", "dead")
    d.last_layer = "head"
    assert graph_from_descriptor(d).labels == ("input", "a", "output", "head")
    assert graph_from_descriptor(d, stop_at="out").labels == ("input", "a", "output")


@pytest.mark.slow
def test_nasbench101_dataset_and_run_store(tmp_path):
    from nord.execution.runs import SearchSettings, run_search
    ds = ArchitectureDataset.from_nasbench101(50, seed=4)
    assert len(ds) == 50 and ds.vocabulary == NASBENCH101_VOCABULARY
    assert np.all((ds.targets > 0) & (ds.targets < 1)) and ds.max_nodes <= 7
    assert ArchitectureDataset.from_nasbench101(50, seed=4).keys == ds.keys
    with pytest.raises(GraphDatasetError, match="size"):
        ArchitectureDataset.from_nasbench101(1)
    run_search(SearchSettings(space="nasbench201", budget=12, seed=1), tmp_path / "run")
    from_store = ArchitectureDataset.from_run_store(tmp_path / "run", space="nasbench201")
    assert 2 <= len(from_store) <= 12
    assert from_store.vocabulary == get_space("nasbench201").graph_vocabulary
    with pytest.raises(GraphDatasetError, match="nasbench201 space, not of nasbench101"):
        ArchitectureDataset.from_run_store(tmp_path / "run", space="nasbench101")
    with pytest.raises(GraphDatasetError, match="does not exist"):
        ArchitectureDataset.from_run_store(tmp_path / "nothing")
