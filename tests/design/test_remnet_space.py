"""The chapter-6 REMNet space: genome operators, descriptors, networks, REMNet itself."""

import json
import math

import numpy as np
import pytest
from tests.design.genome_cases import mutation_history
import torch
import torch.nn as nn

from nord.configurations.all import Configs
from nord.data_curators.splits import make_splits
from nord.design.spaces import get_space
from nord.design.spaces.genome import ConnectionGene, Genome, LayerGene
from nord.design.spaces.remnet import (CHOICES, RemNetSpace, layer_spec, remnet_architecture,
                                       remnet_genome)
from nord.design.strategies.evolution import RegularizedEvolution
from nord.errors import NordError, NoPathError, OutOfSearchSpaceError
from nord.neural_nets import LocalEvaluator, NeuralDescriptor, NeuralNet
from nord.neural_nets.remnet_layers import RemNetConv, RemNetDenseHead, remnet_head


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def only(add_node_prob=0.0, connection_prob=0.0, **options):
    return RemNetSpace(channels=8, add_node_prob=add_node_prob,
                       connection_prob=connection_prob, **options)


def grown(space, seed, mutations):
    rng = np.random.default_rng(seed)
    genome = space.sample(rng)
    for _ in range(mutations):
        genome = space.mutate(genome, rng)
    return genome


# ------------------------------------------------------------------ genome
def test_table_6_1_choices_compile_to_the_documented_layers():
    assert len(CHOICES) == 12
    assert layer_spec("CONV_5.H", 64) == (RemNetConv, {"out_channels": 32, "kernel_size": 5,
                                                       "dropout": 0.1})
    assert layer_spec("CONV_2.N", 64) == (RemNetConv, {"out_channels": 64, "kernel_size": 2,
                                                       "dropout": 0.1})
    assert layer_spec("POOL_3.A", 64) == (nn.AvgPool2d, {"kernel_size": 3})
    assert layer_spec("POOL_5.M", 64) == (nn.MaxPool2d, {"kernel_size": 5})
    with pytest.raises(OutOfSearchSpaceError, match="CONV_7.N"):
        layer_spec("CONV_7.N", 64)


def test_new_individual_is_a_four_layer_chain_grown_by_insertions():
    genome = RemNetSpace().sample(np.random.default_rng(3))
    assert genome.hidden_nodes == (0, 1, 2, 3) and genome.next_node == 4
    assert (genome.input_node, genome.output_node) == (-2, 99)
    assert all(g.layer in CHOICES for g in genome.layers)
    assert len(genome.connections) == 9 and len(genome.enabled()) == 5  # 4 split genes kept
    assert [node for node, _ in genome.active_order()][0] == -2
    order = genome.active_order()
    assert [sources for _, sources in order[1:]] == [[n] for n, _ in order[:-1]]  # a chain
    assert genome.connections[0] == ConnectionGene(-2, 99, enabled=False)


def test_insertion_disables_the_split_connection_and_adds_two_enabled_ones():
    space, rng = only(add_node_prob=1.0), np.random.default_rng(0)
    parent = space.sample(rng)
    before = space.encode(parent)
    child = space.mutate(parent, rng)
    assert space.encode(parent) == before  # parent untouched
    assert child.hidden_nodes == parent.hidden_nodes + (parent.next_node,)
    new = parent.next_node
    split = [i for i, (a, b) in enumerate(zip(parent.connections, child.connections)) if a != b]
    assert len(split) == 1
    old = parent.connections[split[0]]
    assert old.enabled
    assert child.connections[split[0]] == ConnectionGene(old.source, old.target, False)
    assert child.connections[len(parent.connections):] == (
        ConnectionGene(old.source, new), ConnectionGene(new, old.target))


def test_toggle_flips_exactly_one_connection_and_identity_changes_nothing():
    space, rng = only(connection_prob=1.0), np.random.default_rng(1)
    genome = grown(RemNetSpace(channels=8), 1, 10)
    for _ in range(30):
        child = space.mutate(genome, rng)
        flips = [(a, b) for a, b in zip(genome.connections, child.connections) if a != b]
        assert len(flips) == 1 and len(child.connections) == len(genome.connections)
        (a, b), = flips
        assert (a.source, a.target) == (b.source, b.target) and a.enabled != b.enabled
        assert child.layers == genome.layers
        genome = child
    same = only().mutate(genome, rng)
    assert same == genome and same is not genome


def test_mutation_probabilities_are_0_25_0_7_0_05():
    space, rng = RemNetSpace(), np.random.default_rng(7)
    parent = space.sample(rng)
    kinds = {"add": 0, "toggle": 0, "identity": 0}
    for _ in range(4000):
        child = space.mutate(parent, rng)
        kinds["add" if len(child.layers) > len(parent.layers)
              else "toggle" if child != parent else "identity"] += 1
    assert space.identity_prob == pytest.approx(0.05)
    assert kinds["add"] / 4000 == pytest.approx(0.25, abs=0.025)
    assert kinds["toggle"] / 4000 == pytest.approx(0.70, abs=0.025)
    assert kinds["identity"] / 4000 == pytest.approx(0.05, abs=0.015)


def test_ids_stay_unique_and_increasing_and_skip_the_output_id():
    space, rng = RemNetSpace(add_node_prob=0.6, connection_prob=0.4), np.random.default_rng(4)
    genome = space.sample(rng)
    for _ in range(300):
        genome = space.mutate(genome, rng).check()  # unique, increasing, acyclic
        assert genome.nodes[0] == -2 and genome.nodes[-1] == 99
    hidden = genome.hidden_nodes
    assert len(hidden) > 100 and 99 not in hidden and 100 in hidden
    assert list(hidden) == sorted(set(hidden))


def test_same_seed_same_genomes():
    space = RemNetSpace()

    def run(seed):
        return mutation_history(space, np.random.default_rng(seed))

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_encode_decode_round_trip_through_json():
    space = RemNetSpace()
    for seed in range(20):
        genome = grown(space, seed, 15)
        value = json.loads(json.dumps(space.encode(genome)))
        assert space.decode(value) == genome
    assert space.decode(space.encode(remnet_genome())) == remnet_genome()


def test_decode_rejects_what_is_not_a_remnet_genome():
    space = RemNetSpace()
    value = space.encode(remnet_genome())
    with pytest.raises(OutOfSearchSpaceError, match="CONV_4.N"):
        space.decode({**value, "layers": [[0, "CONV_4.N"]] + value["layers"][1:]})
    with pytest.raises(OutOfSearchSpaceError, match="cycle"):
        space.decode({**value, "connections": value["connections"] + [[6, 0, False]]})
    with pytest.raises(OutOfSearchSpaceError, match="input -2 and output 99"):
        space.decode({**value, "output": -1, "connections": [[-2, -1, True]], "layers": []})
    with pytest.raises(OutOfSearchSpaceError, match="not a genome"):
        space.decode({"layers": []})


def test_settings_rebuild_the_space_and_bad_settings_are_refused():
    space = get_space("remnet", channels=32, add_node_prob=0.5, connection_prob=0.5)
    assert isinstance(space, RemNetSpace)
    settings = json.loads(json.dumps(space.settings()))
    assert get_space("remnet", **settings).settings() == space.settings()
    with pytest.raises(NordError, match="even"):
        RemNetSpace(channels=15)
    with pytest.raises(NordError, match="sum to at most 1"):
        RemNetSpace(add_node_prob=0.5, connection_prob=0.6)


# ------------------------------------------------------------------ descriptors, networks
def test_descriptor_names_nodes_by_id_and_leaves_disabled_genes_out():
    genome = remnet_genome().insert_node(7, "POOL_2.M")  # split 5 -> 99
    d = RemNetSpace(channels=8).to_descriptor(genome)
    assert list(d.layers) == ["-2", "0", "1", "2", "3", "4", "5", "6", "7", "99",
                              "flatten", "dense_head"]
    assert (d.first_layer, d.last_layer) == ("-2", "dense_head")
    assert ("5", "99") not in set(d.edges()) and {("5", "7"), ("7", "99")} <= set(d.edges())
    assert NeuralDescriptor.from_json(d.to_json()) == d


def test_genome_without_path_has_a_descriptor_that_fails_validation_with_no_path():
    space = RemNetSpace(channels=8)
    genome = space.sample(np.random.default_rng(0))
    cut = genome.set_enabled(genome.enabled()[0], False)
    assert not cut.has_path()
    assert space.describe(cut).startswith("invalid: no enabled path")
    with pytest.raises(NoPathError):
        space.to_descriptor(cut).validate()


def test_200_random_genomes_train_forward_and_backward():
    space, rng = RemNetSpace(channels=8), np.random.default_rng(2024)
    x, y = torch.randn(2, 1, 28, 28), torch.tensor([3, 7])
    valid = invalid = 0
    torch.manual_seed(0)
    for _ in range(200):
        genome = space.sample(rng)
        for _ in range(int(rng.integers(0, 10))):
            genome = space.mutate(genome, rng)
        descriptor = space.to_descriptor(genome)
        if not genome.has_path():
            invalid += 1
            with pytest.raises(NoPathError):
                descriptor.validate()
            continue
        valid += 1
        net = NeuralNet(descriptor, 10, (28, 28), 1)
        out = net(x)
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        nn.functional.cross_entropy(out, y).backward()
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), (space.describe(genome), name)
    assert valid > 100 and invalid > 5


def test_remnet_is_the_architecture_of_section_6_4_2():
    genome = remnet_genome()
    assert RemNetSpace().describe(genome) == (
        "CONV_2.N(0)<-IN, CONV_2.N(1)<-0, CONV_3.N(2)<-1, CONV_5.N(3)<-2, POOL_5.A(4)<-3, "
        "CONV_3.H(5)<-4, CONV_3.H(6)<-4, OUT<-5+6")
    net = NeuralNet(remnet_architecture(128), 10, (28, 28), 1)
    rows = [(n.name, n.layer.__name__ if isinstance(n.layer, type) else n.layer,
             n.params.get("out_channels"), str(n.out_shape)) for n in net.plan.nodes]
    assert rows == [("-2", "input", None, "1x28x28"),
                    ("0", "RemNetConv", 128, "128x27x27"),
                    ("1", "RemNetConv", 128, "128x26x26"),
                    ("2", "RemNetConv", 128, "128x24x24"),
                    ("3", "RemNetConv", 128, "128x20x20"),
                    ("4", "AvgPool2d", None, "128x4x4"),
                    ("5", "RemNetConv", 64, "64x2x2"),
                    ("6", "RemNetConv", 64, "64x2x2"),
                    ("99", "output", None, "64x2x2"),
                    ("flatten", "Flatten", None, "256"),
                    ("dense_head", "RemNetDenseHead", None, "32")]


@pytest.mark.parametrize("channels, parameters", [(16, 12_686), (128, 791_338), (256, 3_159_626)])
def test_remnet_parameter_counts_match_the_thesis(channels, parameters):
    # §6.4.2: REMNet-128 has 791,338 parameters, REMNet-256 "3.1 million".
    net = NeuralNet(remnet_architecture(channels), 10, (28, 28), 1)
    assert sum(p.numel() for p in net.parameters()) == parameters


class HandWrittenREMNet(nn.Module):
    """REMNet written out by hand, in the compiled network's parameter order."""

    def __init__(self, c):
        super().__init__()
        self.trunk = nn.Sequential(RemNetConv(1, c, 2), RemNetConv(c, c, 2), RemNetConv(c, c, 3),
                                   RemNetConv(c, c, 5), nn.AvgPool2d(5))
        self.left, self.right = RemNetConv(c, c // 2, 3), RemNetConv(c, c // 2, 3)
        features = c // 2 * 4
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(features, features // 4), nn.ReLU(),
                                  nn.Linear(features // 4, features // 8), nn.ReLU(),
                                  nn.Linear(features // 8, 10))

    def forward(self, x):
        x = self.trunk(x)
        return self.head(self.left(x) + self.right(x))


def test_compiled_remnet_computes_what_the_hand_written_one_does():
    torch.manual_seed(0)
    compiled, reference = NeuralNet(remnet_architecture(16), 10, (28, 28), 1), HandWrittenREMNet(16)
    with torch.no_grad():
        for a, b in zip(reference.parameters(), compiled.parameters(), strict=True):
            a.copy_(b)
    compiled.eval(), reference.eval()
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(compiled(x), reference(x))


def test_head_false_with_remnet_head_as_dense_head_is_the_same_network():
    inside = NeuralNet(remnet_architecture(16), 10, (28, 28), 1)
    outside = NeuralNet(remnet_architecture(16, head=False), 10, (28, 28), 1, head=remnet_head)
    assert isinstance(outside.head[0], RemNetDenseHead)
    assert (sum(p.numel() for p in inside.parameters())
            == sum(p.numel() for p in outside.parameters()))


# ------------------------------------------------------------------ evaluation, search
def noise_data(percentage=1.0):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(48, 1, 28, 28, generator=g), torch.randint(0, 10, (48,), generator=g)
    return make_splits(x[:32], y[:32], x[32:], y[32:], percentage=percentage,
                       validation_fraction=0.25)


def test_one_epoch_local_evaluation_gives_a_finite_loss():
    configs = Configs(isolated=True)
    configs.add_classification_dataset("noise-28", 10, (28, 28), 1, noise_data)
    genome = remnet_genome()
    result = LocalEvaluator("adam", {}, configs=configs, batch_size=8).descriptor_evaluate(
        RemNetSpace(channels=8).to_descriptor(genome), 1, "noise-28")
    assert not result.failed and math.isfinite(result.loss)
    assert len(result.train_losses) == 1 and 0 <= result.metrics["accuracy"] <= 1


def test_regularized_evolution_resumes_the_same_run_from_its_state():
    space = RemNetSpace()

    def fitness(genome):
        return float(len(genome.active_nodes()))

    def run(strategy, steps):
        seen = []
        for _ in range(steps):
            candidate = strategy.ask()
            seen.append(space.encode(candidate.architecture))
            strategy.tell(candidate.id, fitness(candidate.architecture))
        return seen

    a = RegularizedEvolution(space, population_size=6, sample_size=3, rng=5)
    run(a, 10)
    state = json.loads(json.dumps(a.state_dict()))
    b = RegularizedEvolution(space, population_size=6, sample_size=3, rng=0)
    b.load_state_dict(state)
    assert run(a, 15) == run(b, 15)


def test_genome_building_blocks():
    genome = Genome.minimal(-2, 99).insert_node(0, "CONV_3.N")
    assert genome.layers == (LayerGene(0, "CONV_3.N"),)
    assert genome.edges(enabled_only=False) == [(-2, 99), (-2, 0), (0, 99)]
    assert genome.active_nodes() == (-2, 0, 99)
    assert genome.connectable() == [(-2, 99)]  # the disabled gene; 0 -> -2 would enter the input
    assert genome.add_connection(-2, 99).connections[0].enabled
    with pytest.raises(OutOfSearchSpaceError, match="cycle"):
        genome.add_connection(99, 0)
    with pytest.raises(OutOfSearchSpaceError, match="no hidden node 5"):
        genome.layer(5)
