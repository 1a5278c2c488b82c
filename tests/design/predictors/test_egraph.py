"""EGraph (chapter 7): the GCN genome, the siamese GraphSAGE ranker, its training and
the gcn search space."""

import json
import sys

import numpy as np
import pytest
import torch

from nord.design.predictors.datasets import (BETTER, EQUAL, WORSE, ArchitectureDataset,
                                             NASBENCH101_VOCABULARY)
from nord.design.predictors.egraph import (LAYER_CHOICES, POOLINGS, GCNArchitecture, SAGELayer,
                                           SiameseGCN, egraph_architecture)
from nord.design.predictors.graphs import ArchitectureGraph, GraphBatch
from nord.design.predictors.training import (evaluate_ranker, predict_scores, train_ranker)
from nord.design.spaces import get_space
from nord.design.spaces.gcn import GCNSpace, architecture_from_descriptor
from nord.design.spaces.genome import ConnectionGene, Genome, LayerGene
from nord.neural_nets.graph_layers import SAGEBlock
from nord.neural_nets.graph_network import GraphNetwork
from nord.errors import (GraphDatasetError, MissingDependencyError, OutOfSearchSpaceError,
                         PredictorError, SettingsError)

pytest.importorskip("torch_geometric")

VOCAB = NASBENCH101_VOCABULARY
IN, C3, C1, MP, OUT = VOCAB


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def graphs():
    """Graphs of 2 to 7 nodes: chains, skips, a node of in-degree 4, a lone input."""
    return [
        ArchitectureGraph((IN, OUT), ((0, 1),)),
        ArchitectureGraph((IN, C3, OUT), ((0, 1), (1, 2))),
        ArchitectureGraph((IN, C3, C1, MP, OUT), ((0, 1), (0, 2), (1, 3), (2, 3), (3, 4),
                                                  (0, 4))),
        ArchitectureGraph((IN, C1, C1, C3, MP, C3, OUT),
                          ((0, 1), (1, 2), (0, 3), (2, 6), (3, 6), (4, 6), (0, 4), (4, 5),
                           (5, 6))),
        ArchitectureGraph((IN, MP, OUT), ((0, 1), (1, 2), (0, 2))),
        ArchitectureGraph((IN, C3, C3, OUT), ((0, 1), (0, 2), (1, 3), (2, 3))),
    ]


def branching(pooling="max", head="ternary", filters=8):
    """-2 -> 0 (LSTM.D) -> 1 (POOL.H) -> 99 with skips -2 -> 1 and 0 -> 99: nodes
    with two inputs of different widths."""
    layers = (LayerGene(0, SAGELayer("lstm", 2)), LayerGene(1, SAGELayer("pool", 0.5)))
    pairs = [(-2, 0), (0, 1), (1, 99), (-2, 1), (0, 99)]
    genome = Genome(layers, tuple(ConnectionGene(a, b) for a, b in pairs), -2, 99, 2)
    return GCNArchitecture(genome, pooling, head, filters)


# ---------------------------------------------------------------- genome and JSON
def test_table_7_1_layers_and_the_thesis_network():
    assert [SAGELayer.from_choice(c).choice for c in LAYER_CHOICES] == list(LAYER_CHOICES)
    assert [(SAGELayer.from_choice(c).aggregator, SAGELayer.from_choice(c).features(300))
            for c in LAYER_CHOICES] == [("lstm", 150), ("pool", 150), ("lstm", 300),
                                        ("pool", 300), ("lstm", 600), ("pool", 600)]
    arch = egraph_architecture()
    assert arch.describe() == ("IN -> SAGE_LSTM.H(0) -> SAGE_LSTM.H(1) -> OUT | max pooling, "
                               "ternary head, F=300")
    assert arch.embedding_features(5) == 150
    # LSTM(5,5) 240 + lin_l 5*150+150 + lin_r 750, LSTM(150,150) 181,200 + 22,650 + 22,500,
    # head 300*150+150 + 150*3+3: 273,843 (the thesis reports "330,000" for this network)
    assert SiameseGCN(arch, 5).num_parameters() == 273_843
    assert branching("sort3").node_features(5) == {-2: 5, 0: 16, 1: 4, 99: 16}
    assert branching("sort3").embedding_features(5) == 48


def test_json_round_trip():
    for arch in (egraph_architecture(), branching("sort2", "regression", 16)):
        value = arch.to_json()
        assert GCNArchitecture.from_json(json.loads(json.dumps(value))) == arch
        assert GCNArchitecture.from_json(json.dumps(value)) == arch
    assert egraph_architecture(filters=8).to_json() == {
        "input": -2, "output": 99, "next_node": 2,
        "layers": [[0, "SAGE_LSTM.H"], [1, "SAGE_LSTM.H"]],
        "connections": [[-2, 99, False], [-2, 0, True], [0, 99, False], [0, 1, True],
                        [1, 99, True]],
        "pooling": "max", "head": "ternary", "filters": 8}


@pytest.mark.parametrize("change, message", [
    (lambda v: v.update(pooling="sort4"), "unknown global pooling 'sort4'"),
    (lambda v: v.update(head="binary"), "unknown head 'binary'"),
    (lambda v: v.update(filters=7), "even whole number"),
    (lambda v: v.update(filters=True), "'filters' must be a whole number"),
    (lambda v: v.update(filters="300"), "'filters' must be a whole number"),
    (lambda v: v["layers"][0].__setitem__(1, "SAGE_GCN.N"), "unknown layer choice 'SAGE_GCN.N'"),
    (lambda v: v["layers"][0].__setitem__(1, 3), "layer choices are Table 7.1 names"),
    (lambda v: v.update(layers={"0": "SAGE_LSTM.H"}), "'layers' must be a list"),
    (lambda v: v["connections"].append([1, 0, True]), "cycle"),
    (lambda v: v["connections"].append([0, 7, True]), "unknown node"),
    (lambda v: v["connections"][3].__setitem__(2, "yes"), "true or false"),
    (lambda v: v["connections"][3].__setitem__(2, False), "do not lead from the input"),
    (lambda v: v.update(input=-1, connections=[[-1 if n == -2 else n for n in c[:2]] + c[2:]
                                               for c in v["connections"]]),
     "input -2 and output 99"),
    (lambda v: v.pop("pooling"), "missing \\['pooling'\\]"),
    (lambda v: v.update(code="import os"), "unknown \\['code'\\]"),
])
def test_bad_json_is_rejected(change, message):
    value = egraph_architecture(filters=8).to_json()
    change(value)
    with pytest.raises(OutOfSearchSpaceError, match=message):
        GCNArchitecture.from_json(value)


def test_bad_json_text_and_shapes():
    for bad, message in [("{", "not JSON text"), ([1, 2], "JSON object"), ("null", "JSON object")]:
        with pytest.raises(OutOfSearchSpaceError, match=message):
            GCNArchitecture.from_json(bad)
    direct = Genome.minimal(-2, 99)  # input straight to output: no layer
    with pytest.raises(OutOfSearchSpaceError, match="no active SAGE layer"):
        GCNArchitecture(direct)
    with pytest.raises(OutOfSearchSpaceError, match="width"):
        SAGELayer("lstm", 3)


# ---------------------------------------------------------------- network
def test_swapping_the_pair_swaps_better_and_worse_exactly():
    gs = graphs()
    first, second = GraphBatch(gs, VOCAB), GraphBatch(gs[::-1], VOCAB)
    for arch in (egraph_architecture(filters=16), branching("sort2"), branching("mean")):
        model = SiameseGCN(arch, len(VOCAB), seed=3)
        forward, backward = model(first, second), model(second, first)
        assert forward.shape == (len(gs), 3)
        assert torch.allclose(forward[:, BETTER], backward[:, WORSE], atol=1e-6)
        assert torch.allclose(forward[:, WORSE], backward[:, BETTER], atol=1e-6)
        assert torch.allclose(forward[:, EQUAL], backward[:, EQUAL], atol=1e-6)
        same = model(first, first)  # a graph against itself: BETTER == WORSE
        assert torch.allclose(same[:, BETTER], same[:, WORSE], atol=1e-6)
    regression = SiameseGCN(branching(head="regression"), len(VOCAB))
    assert torch.allclose(regression(first, second), -regression(second, first), atol=1e-6)
    assert regression(first, second).shape == (len(gs),)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("choice", LAYER_CHOICES)
def test_every_layer_and_pooling_runs_forward_and_backward(choice, pooling):
    gs = graphs()
    arch = GCNArchitecture.chain([choice, choice], pooling=pooling, filters=8)
    model = SiameseGCN(arch, len(VOCAB), seed=0)
    width = SAGELayer.from_choice(choice).features(8)
    assert model.embed(GraphBatch(gs, VOCAB)).shape == (len(gs), width * arch.sort_k)
    logits = model(GraphBatch(gs, VOCAB), GraphBatch(gs[1:] + gs[:1], VOCAB))
    assert torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0, 1, 2])).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    convs = [model.tower.layer(str(g.node)) for g in arch.genome.layers]
    assert all(isinstance(c, SAGEBlock) for c in convs)
    assert any(p.grad.abs().sum() > 0 for c in convs for p in c.parameters())


def test_branching_genomes_and_regression_heads_train_a_step():
    gs = graphs()
    for pooling in POOLINGS:
        model = SiameseGCN(branching(pooling, "regression"), len(VOCAB))
        out = model(GraphBatch(gs, VOCAB), GraphBatch(gs[::-1], VOCAB))
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters())
        merge = model.tower.merge("1")
        assert len(merge.projections) == 2
        assert sorted(type(p).__name__ for p in merge.projections) == ["Identity", "Linear"]


def test_embeddings_do_not_depend_on_the_batch_or_the_edge_order():
    gs = graphs()
    model = SiameseGCN(branching("sort3"), len(VOCAB), seed=1).eval()
    together = model.embed(GraphBatch(gs, VOCAB))
    for i, g in enumerate(gs):  # alone, no padding to the batch's largest in-degree
        alone = model.embed(GraphBatch([g], VOCAB))
        assert torch.allclose(alone[0], together[i], atol=1e-6)
    batch = GraphBatch(gs, VOCAB)
    batch.edge_array = batch.edge_array[:, ::-1].copy()  # targets in descending order
    assert torch.allclose(model.embed(batch), together, atol=1e-6)


def test_an_lstm_layer_reads_only_real_neighbours():
    # the input node has no predecessor: its aggregate is zero, so after one layer its
    # value is relu(lin_r(x) + lin_l.bias), whatever the rest of the batch holds
    model = SiameseGCN(GCNArchitecture.chain(["SAGE_LSTM.N"], filters=8), len(VOCAB)).eval()
    conv = model.tower.layer("0").conv
    x = torch.eye(len(VOCAB))[[0]]
    expected = torch.relu(conv.lin_r(x) + conv.lin_l.bias)
    lone = ArchitectureGraph((IN,), ())
    assert torch.allclose(model.embed(GraphBatch([lone], VOCAB)), expected, atol=1e-6)
    assert torch.allclose(model.embed(GraphBatch([lone, graphs()[3]], VOCAB))[0], expected[0],
                          atol=1e-6)


def test_models_are_seeded_and_leave_the_global_generator_alone():
    state = torch.random.get_rng_state()
    a, b = SiameseGCN(branching(), 5, seed=4), SiameseGCN(branching(), 5, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(),
                                                 b.state_dict().values()))
    c = SiameseGCN(branching(), 5, seed=5)
    assert not torch.equal(a.head[0].weight, c.head[0].weight)


def test_bad_model_inputs():
    with pytest.raises(PredictorError, match="num_features"):
        SiameseGCN(egraph_architecture(), 0)
    with pytest.raises(PredictorError, match="GCNArchitecture"):
        SiameseGCN("SAGE_LSTM.H", 5)
    model = SiameseGCN(egraph_architecture(filters=8), 5)
    with pytest.raises(PredictorError, match="vocabulary has 2 labels"):
        model.embed(GraphBatch([ArchitectureGraph(("a", "b"), ((0, 1),))], ("a", "b")))
    with pytest.raises(PredictorError, match="equally many graphs"):
        model(GraphBatch(graphs()[:2], VOCAB), GraphBatch(graphs()[:3], VOCAB))
    with pytest.raises(PredictorError, match="regression-head"):
        SiameseGCN(branching(head="regression"), 5).pair_logits(torch.ones(1, 16),
                                                                torch.ones(1, 16))
    with pytest.raises(PredictorError, match="ternary-head"):
        model.score(torch.ones(1, 4))


def test_a_missing_torch_geometric_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_geometric", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'nord\[gcn\]'"):
        SiameseGCN(egraph_architecture(filters=8), 5)
    GCNArchitecture.from_json(egraph_architecture().to_json())  # genomes need no GCN library
    GCNSpace(filters=8).sample(np.random.default_rng(0))


# ---------------------------------------------------------------- training
@pytest.fixture(scope="module")
def nasbench60():
    return ArchitectureDataset.from_nasbench101(60, seed=0).split(40, 20, seed=0)


def test_training_ranks_unseen_nasbench101_cells(nasbench60):
    train, test = nasbench60
    model = SiameseGCN(egraph_architecture(filters=16), len(train.vocabulary), seed=0)
    before = evaluate_ranker(model, test)
    history = train_ranker(model, train, epochs=4, batch_size=32, seed=0)
    after = evaluate_ranker(model, test)
    assert history.steps == 4 * 25 and history.pairs == 4 * 780  # 40 * 39 / 2 pairs an epoch
    assert history.losses[-1] < history.losses[0]
    # measured: tau -0.242 untrained, 0.358 trained (n=20)
    assert before.tau < 0 and after.tau > 0.3 and after.tau > before.tau + 0.45
    assert not model.training


def test_regression_head_training(nasbench60):
    train, _ = nasbench60
    model = SiameseGCN(egraph_architecture(filters=16, head="regression"), 5, seed=0)
    before = evaluate_ranker(model, train)
    history = train_ranker(model, train, epochs=10, batch_size=32, seed=0, epsilon=0.003)
    after = evaluate_ranker(model, train)
    # measured on the training set: tau 0.504 untrained, 0.724 trained; loss 0.088 -> 0.035
    assert history.losses[-1] < history.losses[0] / 2
    assert after.tau > 0.65 and after.tau > before.tau + 0.15


def test_training_is_reproducible(nasbench60):
    train, _ = nasbench60

    def trained(seed):
        model = SiameseGCN(branching("sort2", filters=8), 5, seed=0)
        train_ranker(model, train, epochs=1, batch_size=64, seed=seed, pairs_per_epoch=300)
        return model.state_dict()

    a, b, c = trained(1), trained(1), trained(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_ternary_scores_are_expected_wins_against_a_reference(nasbench60):
    train, test = nasbench60
    model = SiameseGCN(egraph_architecture(filters=8), 5, seed=2)
    scores = predict_scores(model, test)
    assert scores.shape == (20,) and np.all(np.abs(scores) <= 1)
    ref = test.subset([0, 1, 2])
    against = predict_scores(model, test, reference=ref)
    first = GraphBatch([test.graphs[4]] * 3, VOCAB)
    probabilities = torch.softmax(model(first, GraphBatch(ref.graphs, VOCAB)), dim=-1)
    probabilities = probabilities.detach()
    expected = float((probabilities[:, BETTER] - probabilities[:, WORSE]).mean())
    assert against[4] == pytest.approx(expected, abs=1e-6)
    regression = SiameseGCN(egraph_architecture(filters=8, head="regression"), 5)
    direct = regression.score(regression.embed(GraphBatch(test.graphs, VOCAB)))
    assert np.allclose(predict_scores(regression, test), direct.detach().numpy(), atol=1e-6)


def test_datasets_too_small_to_rank_are_refused(nasbench60):
    train, _ = nasbench60
    model = SiameseGCN(egraph_architecture(filters=8), 5)
    one = train.subset([0], "one cell")
    empty = train.subset([], "no cells")
    with pytest.raises(GraphDatasetError, match="holds 1 architecture; a ranking needs at least"):
        train_ranker(model, one)
    with pytest.raises(GraphDatasetError, match="holds 0 architectures"):
        train_ranker(model, empty)
    with pytest.raises(GraphDatasetError, match="holds no architectures"):
        predict_scores(model, empty)
    with pytest.raises(PredictorError, match="at least 4 architectures"):
        evaluate_ranker(model, train.subset([0, 1]))
    same = ArchitectureDataset.build(train.graphs[:3], [0.9, 0.9, 0.9], VOCAB)
    with pytest.raises(GraphDatasetError, match="within epsilon"):
        train_ranker(SiameseGCN(egraph_architecture(filters=8, head="regression"), 5), same)
    with pytest.raises(PredictorError, match="batch_size must be a whole number > 0"):
        train_ranker(model, train, batch_size=0)
    with pytest.raises(PredictorError, match="vocabulary has 5 labels"):
        train_ranker(SiameseGCN(egraph_architecture(filters=8), 7), train)


# ---------------------------------------------------------------- the gcn space
def test_the_gcn_space_samples_and_mutates_valid_seeded_genomes():
    space = get_space("gcn", filters=8)
    assert isinstance(space, GCNSpace) and space.name == "gcn"
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    assert len(arch.layers) == 1 and arch.filters == 8 and arch.head == "ternary"
    seen_layers, seen_pooling, changed = set(), set(), 0
    for _ in range(200):
        child = space.mutate(arch, rng)
        assert isinstance(child, GCNArchitecture)  # validated on creation: a path, a layer
        changed += child != arch
        seen_layers.update(layer.choice for layer in child.layers)
        seen_pooling.add(child.pooling)
        arch = child
    assert seen_layers == set(LAYER_CHOICES) and seen_pooling == set(POOLINGS)
    assert changed > 150 and len(arch.layers) > 20
    again = np.random.default_rng(0)
    replay = space.sample(again)
    for _ in range(200):
        replay = space.mutate(replay, again)
    assert replay == arch
    assert space.decode(json.loads(json.dumps(space.encode(arch)))) == arch


def test_gcn_descriptors_describe_the_active_network():
    space = GCNSpace(filters=8)
    arch = branching("sort2", filters=8)
    d = space.to_descriptor(arch)
    assert {name: (spec.layer, spec.params) for name, spec in d.layers.items()} == {
        "-2": ("input", {}), "0": ("SAGE_LSTM.D", {"out_channels": 16}),
        "1": ("SAGE_POOL.H", {"out_channels": 4}), "99": ("output", {}),
        "pooling": ("sort_pool", {"k": 2}),
        "head": ("ranking_head", {"head": "ternary", "filters": 8})}
    assert '"0" [label="0\\nSAGE_LSTM.D\\nc=16"' in d.to_dot()
    # graph layers are registered ops: the descriptor validates and compiles into the tower
    assert d.problems() == []
    tower = GraphNetwork(d, len(VOCAB))
    model = SiameseGCN(arch, len(VOCAB), seed=3)
    tower.load_state_dict(model.tower.state_dict())
    batch = GraphBatch(graphs(), VOCAB)
    edges = torch.as_tensor(batch.edge_array, dtype=torch.long)
    assert torch.equal(tower(batch.x(), edges, batch.batch(), batch.num_graphs),
                       model.embed(batch))
    from nord.neural_nets import NeuralDescriptor
    back = architecture_from_descriptor(NeuralDescriptor.from_json(d.to_json()))
    # the same network; connection genes in the descriptor's order, disabled ones left out
    assert (back.active_order(), back.pooling, back.head, back.filters) == (
        arch.active_order(), "sort2", "ternary", 8)
    assert back.describe() == arch.describe() == (
        "SAGE_LSTM.D(0)<-IN, SAGE_POOL.H(1)<-IN+0, OUT<-0+1 | sort2 pooling, ternary head, F=8")
    assert space.to_descriptor(back).canonical_hash() == d.canonical_hash()
    assert d.canonical_hash() != space.to_descriptor(branching("sort3", filters=8)).canonical_hash()
    chain = egraph_architecture()
    enabled = tuple(c for c in chain.genome.connections if c.enabled)
    assert architecture_from_descriptor(space.to_descriptor(chain)).genome.connections == enabled
    with pytest.raises(OutOfSearchSpaceError, match="'pooling' and a 'head' node"):
        architecture_from_descriptor(get_space("remnet").to_descriptor(
            get_space("remnet").sample(np.random.default_rng(0))))


def test_gcn_space_settings_are_checked():
    for settings, message in [({"filters": 5}, "even whole number"),
                              ({"mutate_prob": 1.5}, "probability"),
                              ({"head": "binary"}, "head must be"),
                              ({"poolings": ["max", "min"]}, "unknown: \\['min'\\]"),
                              ({"initial_layers": 0}, "initial_layers")]:
        with pytest.raises(SettingsError, match=message):
            GCNSpace(**settings)
    assert GCNSpace(poolings=["max"]).settings()["poolings"] == ["max"]
    with pytest.raises(OutOfSearchSpaceError, match="GCNArchitecture"):
        GCNSpace().mutate("SAGE_LSTM.H", np.random.default_rng(0))
