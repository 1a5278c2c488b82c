"""The DeepNEAT space of chapters 4-5: block genes, the four mutations, networks."""

import json
from dataclasses import replace

import numpy as np
import pytest
from tests.design.genome_cases import mutation_history
import torch
import torch.nn as nn

from nord.design.spaces import get_space
from nord.design.spaces.deepneat import Block, DeepNEATSpace
from nord.design.spaces.genome import ConnectionGene, Genome
from nord.errors import NordError, NoPathError, OutOfSearchSpaceError
from nord.neural_nets import NeuralDescriptor, NeuralNet
from nord.neural_nets.layers import WeightScaling
from nord.neural_nets.remnet_layers import DeepNEATBlock

SMALL = dict(filters=(2, 6))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def only(operator, **options):
    probs = {"add_node_prob": 0.0, "add_connection_prob": 0.0, "disable_connection_prob": 0.0}
    if operator != "perturb":
        probs[operator] = 1.0
    return DeepNEATSpace(**SMALL, **probs, **options)


def in_ranges(space, block):
    return (space.filters[0] <= block.filters <= space.filters[1]
            and block.kernel_size in space.kernel_sizes
            and space.dropout[0] <= block.dropout <= space.dropout[1]
            and space.scale[0] <= block.scale <= space.scale[1])


def test_samples_grow_from_the_two_node_genome_and_are_valid():
    space, rng = DeepNEATSpace(), np.random.default_rng(0)
    for _ in range(50):
        genome = space.sample(rng).check()
        assert (genome.input_node, genome.output_node) == (-2, -1)
        assert genome.connections[0].source == -2 and genome.connections[0].target == -1
        assert genome.has_path() and len(genome.layers) >= 1
        assert all(in_ranges(space, g.layer) for g in genome.layers)
    assert space.perturb_prob == pytest.approx(0.8)
    assert DeepNEATSpace(sample_mutations=0).sample(rng) == Genome.minimal(-2, -1)


def test_add_node_splits_an_enabled_connection():
    space, rng = only("add_node_prob"), np.random.default_rng(1)
    parent = DeepNEATSpace(**SMALL).sample(np.random.default_rng(1))
    child = space.mutate(parent, rng)
    new = parent.next_node
    assert child.hidden_nodes == parent.hidden_nodes + (new,)
    split = [i for i, (a, b) in enumerate(zip(parent.connections, child.connections)) if a != b]
    assert len(split) == 1
    old = parent.connections[split[0]]
    assert old.enabled and not child.connections[split[0]].enabled
    assert child.connections[len(parent.connections):] == (
        ConnectionGene(old.source, new), ConnectionGene(new, old.target))
    assert in_ranges(space, child.layer(new))


def test_add_connection_adds_or_re_enables_without_cycles():
    space = only("add_connection_prob", reenable_connections=True)
    rng = np.random.default_rng(2)
    genome = DeepNEATSpace(**SMALL, add_node_prob=0.5).sample(np.random.default_rng(2))
    added = reenabled = 0
    while genome.connectable():
        child = space.mutate(genome, rng).check()  # check(): the gene graph stays acyclic
        assert len(child.enabled()) == len(genome.enabled()) + 1
        if len(child.connections) == len(genome.connections):
            reenabled += 1
        else:
            added += 1
            assert child.connections[-1].enabled
        assert child.layers == genome.layers
        genome = child
    assert added and reenabled
    assert space.mutate(genome, rng) == genome  # nothing left to connect: parent returned


def test_add_connection_by_default_only_adds_new_genes():
    """Chapter 5 adds connections; re-enabling a disabled gene (the input -> output
    one that the first block split, say) is chapter 6's operator."""
    space, rng = only("add_connection_prob"), np.random.default_rng(2)
    genome = DeepNEATSpace(**SMALL, add_node_prob=0.5).sample(np.random.default_rng(2))
    disabled = [g for g in genome.connections if not g.enabled]
    assert disabled and genome.connectable(reenable=False) != genome.connectable()
    while genome.connectable(reenable=False):
        child = space.mutate(genome, rng).check()
        assert child.connections[:len(genome.connections)] == genome.connections
        assert len(child.connections) == len(genome.connections) + 1
        assert child.connections[-1].enabled
        genome = child
    assert all(not g.enabled for g in genome.connections if g in disabled)
    assert space.mutate(genome, rng) == genome


def test_disable_connection_disables_exactly_one_and_keeps_a_path():
    space, rng = only("disable_connection_prob"), np.random.default_rng(3)
    genome = DeepNEATSpace(**SMALL, add_node_prob=0.4, add_connection_prob=0.4).sample(rng)
    child = space.mutate(genome, rng)
    flips = [(a, b) for a, b in zip(genome.connections, child.connections) if a != b]
    assert len(flips) == 1 and flips[0][0].enabled and not flips[0][1].enabled
    assert child.has_path()


def test_perturb_changes_one_parameter_of_one_block_within_its_range():
    space, rng = only("perturb"), np.random.default_rng(4)
    genome = DeepNEATSpace(**SMALL).sample(rng)
    for _ in range(100):
        child = space.mutate(genome, rng)
        assert child.connections == genome.connections
        changed = [(a.layer, b.layer) for a, b in zip(genome.layers, child.layers) if a != b]
        assert len(changed) == 1
        before, after = changed[0]
        assert sum(getattr(before, f) != getattr(after, f) for f in Block.__dataclass_fields__) == 1
        assert in_ranges(space, after)
        genome = child


def test_mutate_never_returns_the_parent_unchanged_or_an_invalid_child():
    space, rng = DeepNEATSpace(**SMALL), np.random.default_rng(5)
    genome = space.sample(rng)
    for _ in range(100):
        before = space.encode(genome)
        child = space.mutate(genome, rng)
        assert space.encode(genome) == before
        assert child != genome and child.has_path()
        genome = child


def test_same_seed_same_genomes_and_json_round_trip():
    space = DeepNEATSpace()

    def run(seed):
        return mutation_history(space, np.random.default_rng(seed))

    history = run(8)
    assert history == run(8) and history != run(9)
    for genome in history:
        assert space.decode(json.loads(json.dumps(space.encode(genome)))) == genome
    with pytest.raises(OutOfSearchSpaceError, match="not a DeepNEAT block"):
        space.decode({**space.encode(history[-1]), "layers": [[0, {"filters": 3}]]})
    with pytest.raises(OutOfSearchSpaceError, match="input -2 and output -1"):
        space.decode(Genome.minimal(-2, 99).to_value())


def test_settings_rebuild_the_space_and_bad_settings_are_refused():
    space = get_space("deepneat", filters=(32, 56), add_node_prob=0.2)
    settings = json.loads(json.dumps(space.settings()))
    assert get_space("deepneat", **settings).settings() == space.settings()
    with pytest.raises(NordError, match="odd"):
        DeepNEATSpace(kernel_sizes=(2,))
    with pytest.raises(NordError, match="sum to at most 1"):
        DeepNEATSpace(add_node_prob=0.6, add_connection_prob=0.6)
    with pytest.raises(NordError, match=r"\[0, 1\)"):
        DeepNEATSpace(dropout=(0.0, 1.0))


def test_block_compiles_to_conv_relu_dropout_scaling_pool():
    block = Block(5, 3, 0.25, 1.5, True)
    space = DeepNEATSpace()
    genome = Genome.minimal(-2, -1).insert_node(0, block)
    d = space.to_descriptor(genome)
    assert d.layers["0"].layer is DeepNEATBlock
    assert list(d.layers) == ["-2", "0", "-1", "pool", "flatten", "dense", "dense_relu"]
    assert NeuralDescriptor.from_json(d.to_json()) == d
    net = NeuralNet(d, 10, (28, 28), 1)
    module = net.layers["L0"]
    assert [type(m) for m in module] == [nn.Conv2d, nn.ReLU, nn.Dropout, WeightScaling,
                                         nn.MaxPool2d]
    assert (module.conv.kernel_size, module.drop.p, module.scale.scale) == ((3, 3), 0.25, 1.5)
    assert str(net.plan.nodes[1].out_shape) == "5x14x14"
    # average-pooled to 5x2x2 features -> 96 -> 10 ("a simple 2-layer dense head")
    assert sum(p.numel() for p in net.parameters()) == 50 + 20 * 96 + 96 + 970
    assert space.parameter_count(genome, (1, 28, 28)) == 50 + 20 * 96 + 96 + 970
    unpooled = DeepNEATSpace(head_pool=0, head_units=64)
    assert "pool" not in unpooled.to_descriptor(genome).layers
    net = NeuralNet(unpooled.to_descriptor(genome), 10, (28, 28), 1)
    assert sum(p.numel() for p in net.parameters()) == 50 + 980 * 64 + 64 + 650
    assert space.describe(genome) == "IN -> C5k3d0.25s1.50+MP(0) -> OUT"


def test_200_random_genomes_train_forward_and_backward():
    space = DeepNEATSpace(**SMALL, add_node_prob=0.3, add_connection_prob=0.3,
                          disable_connection_prob=0.1, sample_mutations=5)
    rng = np.random.default_rng(99)
    x, y = torch.randn(2, 1, 28, 28), torch.tensor([1, 4])
    torch.manual_seed(0)
    blocks = []
    for _ in range(200):
        genome = space.sample(rng)
        for _ in range(int(rng.integers(0, 6))):
            genome = space.mutate(genome, rng)
        blocks.append(len(genome.active_nodes()) - 2)
        net = NeuralNet(space.to_descriptor(genome), 10, (28, 28), 1)
        out = net(x)
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        nn.functional.cross_entropy(out, y).backward()
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), (
                space.describe(genome), name)
    assert max(blocks) >= 4 and min(blocks) >= 0


def test_genome_without_path_fails_validation_with_no_path():
    space = DeepNEATSpace()
    genome = Genome.minimal(-2, -1).insert_node(0, Block(4, 1, 0.0, 1.0, False))
    cut = genome.set_enabled(1, False)
    assert not cut.has_path()
    with pytest.raises(NoPathError):
        space.to_descriptor(cut).validate()
    # the only repair re-enables a disabled gene: chapter 5's add-connection cannot
    assert space.mutate(replace(cut), np.random.default_rng(0)) == cut
    repairing = DeepNEATSpace(reenable_connections=True)
    assert repairing.mutate(replace(cut), np.random.default_rng(0)).has_path()
