"""DeepNEAT networks of the thesis's size, and chapters 4 and 5's generation schemes.

Chapter 5 (§5.2.1): 140 distinct random architectures on CIFAR-10, "an average
architecture has 70,000 trainable parameters, but all of them are in
[9,099 - 148,140]". Chapter 4 (§4.2.2): "evolving a single network for 20
generations" with Table 4.1's settings.
"""

import numpy as np
import pytest

from nord.design.spaces import get_space
from nord.design.spaces.deepneat import (CHAPTER4, DeepNEATSpace, architecture_key,
                                         diverse_sample, evolve_lineage)
from nord.design.spaces.genome import Genome
from nord.errors import SettingsError
from nord.neural_nets import NeuralNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

THESIS_MEAN, THESIS_MIN, THESIS_MAX = 70_000, 9_099, 148_140


def compiled_parameters(space, genome, shape=(3, 32, 32), classes=10):
    """Trainable parameters of the network NORD compiles (CIFAR-10 by default)."""
    net = NeuralNet(space.to_descriptor(genome), classes, shape[1:], shape[0])
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def one_mutation_apart(parent: Genome, child: Genome) -> bool:
    """Whether ``child`` is ``parent`` after exactly one of the four operators."""
    pc, cc = parent.connections, child.connections
    flips = [i for i, (a, b) in enumerate(zip(pc, cc)) if a != b]
    if len(child.layers) == len(parent.layers) + 1:  # a connection split by a new block
        new = child.layers[-1].node
        if child.layers[:-1] != parent.layers or len(cc) != len(pc) + 2 or len(flips) != 1:
            return False
        split = pc[flips[0]]
        return (split.enabled and not cc[flips[0]].enabled
                and [(g.source, g.target, g.enabled) for g in cc[len(pc):]]
                == [(split.source, new, True), (new, split.target, True)])
    if child.layers != parent.layers:  # one parameter of one block perturbed
        changed = [(a, b) for a, b in zip(parent.layers, child.layers) if a != b]
        return (cc == pc and len(child.layers) == len(parent.layers) and len(changed) == 1
                and sum(getattr(changed[0][0].layer, f) != getattr(changed[0][1].layer, f)
                        for f in ("filters", "kernel_size", "dropout", "scale", "max_pool")) == 1)
    if len(cc) == len(pc) + 1:  # a new connection
        return cc[:len(pc)] == pc and cc[-1].enabled
    return len(cc) == len(pc) and len(flips) == 1  # one connection disabled (or re-enabled)


def test_140_cifar10_networks_have_chapter5s_parameter_statistics():
    space = DeepNEATSpace()
    genomes = diverse_sample(space, np.random.default_rng(0), 140)
    counts = np.array([compiled_parameters(space, g) for g in genomes])
    assert [space.parameter_count(g) for g in genomes] == counts.tolist()
    # the thesis: mean 70,000, all in [9,099, 148,140]; here (seed 0) mean 75k, median 72k
    assert 55_000 <= counts.mean() <= 85_000
    assert 0.75 * THESIS_MEAN <= np.median(counts) <= 1.25 * THESIS_MEAN
    assert counts.min() >= THESIS_MIN and counts.max() <= space.max_parameters == 150_000
    assert np.mean(counts <= THESIS_MAX) >= 0.95
    # diverse: one- to several-block networks, 1x1 and 3x3, some with more than one path
    blocks = [len(g.active_nodes()) - 2 for g in genomes]
    assert min(blocks) == 1 and max(blocks) >= 3 and np.mean(blocks) > 1.3
    assert any(len(sources) > 1 for g in genomes for _, sources in g.active_order())


def test_the_old_unpooled_head_made_the_networks_about_20_times_larger():
    old = DeepNEATSpace(head_pool=0, head_units=64, reenable_connections=True,
                        max_parameters=None)
    new = DeepNEATSpace()
    old_counts = [old.parameter_count(old.sample(np.random.default_rng(s))) for s in range(40)]
    new_counts = [new.parameter_count(new.sample(np.random.default_rng(s))) for s in range(40)]
    assert np.mean(old_counts) > 12 * np.mean(new_counts)
    assert np.mean(old_counts) > 10 * THESIS_MEAN


def test_without_the_size_limit_chained_wide_blocks_exceed_the_thesis_range():
    """Two chained 3x3 blocks of up to 256 filters hold up to 590k weights: only
    validating the networks against a size limit keeps them all in chapter 5's range."""
    space = DeepNEATSpace(max_parameters=None)
    rng = np.random.default_rng(0)
    counts = [space.parameter_count(space.sample(rng)) for _ in range(140)]
    assert max(counts) > 2 * THESIS_MAX
    capped = DeepNEATSpace(max_parameters=20_000)
    rng = np.random.default_rng(0)
    for _ in range(30):
        genome = capped.sample(rng)
        assert capped.parameter_count(genome) <= 20_000
        assert capped.parameter_count(capped.mutate(genome, rng)) <= 20_000


@pytest.mark.parametrize("options, shape", [
    ({}, (3, 32, 32)), ({"head_pool": 0, "max_parameters": None}, (3, 32, 32)),
    ({"head": False, "max_parameters": None}, (1, 28, 28)),
    ({"head_pool": 1, "reenable_connections": True, "disable_connection_prob": 0.2,
      "add_connection_prob": 0.3, "add_node_prob": 0.2, "filters": (4, 12)}, (1, 28, 28))])
def test_parameter_count_is_that_of_the_compiled_network(options, shape):
    space, rng = DeepNEATSpace(**options), np.random.default_rng(3)
    for _ in range(12):
        genome = space.sample(rng)
        assert space.parameter_count(genome, shape, 7) == compiled_parameters(
            space, genome, shape, 7)


def test_chapter4_preset_has_table_4_1s_settings():
    space = DeepNEATSpace.chapter4()
    assert space.filters == (32, 56) and space.kernel_sizes == (1, 3)
    assert space.dropout == (0.0, 0.7) and space.scale == (0.0, 2.0)
    assert space.max_pool_prob == 0.5
    assert (space.add_node_prob, space.add_connection_prob) == (0.05, 0.1)
    assert space.disable_connection_prob == 0.0 and space.perturb_prob == 0.0
    assert DeepNEATSpace.chapter4(filters=(8, 16)).filters == (8, 16)
    rebuilt = get_space("deepneat", **space.settings())
    assert rebuilt.settings() == space.settings() and CHAPTER4["perturb"] is False
    # the chapter-5 defaults: Table 5.2
    five = DeepNEATSpace()
    assert five.filters == (32, 256) and five.perturb_prob == pytest.approx(0.8)


def test_chapter4_lineage_is_20_distinct_architectures_each_one_mutation_of_the_last():
    space = DeepNEATSpace.chapter4()
    lineage = evolve_lineage(space, np.random.default_rng(0))
    assert len(lineage) == 20 and lineage[0] == Genome.minimal(-2, -1)
    assert len({architecture_key(space, g) for g in lineage}) == 20
    for parent, child in zip(lineage, lineage[1:]):
        assert one_mutation_apart(parent, child) and child.has_path()
        # chapter 4's operator only adds blocks and connections: nothing is lost
        assert set(parent.hidden_nodes) <= set(child.hidden_nodes)
        assert set(parent.edges()) - set(child.edges()) <= {
            (g.source, g.target) for g in child.connections if not g.enabled}
    assert len(lineage[-1].active_nodes()) >= 6  # it grew (Figure 4.1's 20th has 15 nodes)
    counts = [space.parameter_count(g) for g in lineage]
    assert counts[-1] > counts[1] > counts[0]
    assert evolve_lineage(space, np.random.default_rng(0)) == lineage
    assert evolve_lineage(space, np.random.default_rng(1)) != lineage


def test_a_chapter5_space_evolves_a_lineage_too():
    space = DeepNEATSpace()
    lineage = evolve_lineage(space, np.random.default_rng(4), generations=12)
    assert len({architecture_key(space, g) for g in lineage}) == 12
    assert all(one_mutation_apart(a, b) for a, b in zip(lineage, lineage[1:]))
    assert all(space.parameter_count(g) <= space.max_parameters for g in lineage)


def test_diverse_sample_is_distinct_seeded_and_refuses_a_space_too_small():
    space = DeepNEATSpace(sample_mutations=3)
    genomes = diverse_sample(space, np.random.default_rng(5), 30)
    assert len({architecture_key(space, g) for g in genomes}) == 30
    assert all(g.has_path() and len(g.active_nodes()) >= 3 for g in genomes)
    assert diverse_sample(space, np.random.default_rng(5), 30) == genomes
    single = DeepNEATSpace(filters=(4, 4), kernel_sizes=(1,), dropout=(0, 0), scale=(1, 1),
                           max_pool_prob=0.0, sample_mutations=1)
    with pytest.raises(SettingsError, match="only 1 distinct architectures in 20 draws"):
        diverse_sample(single, np.random.default_rng(0), 2, max_draws=20)


def test_bad_size_and_scheme_settings_are_refused_with_the_fix():
    with pytest.raises(SettingsError, match="head_pool"):
        DeepNEATSpace(head_pool=-1)
    with pytest.raises(SettingsError, match="max_parameters must be positive"):
        DeepNEATSpace(max_parameters=0)
    with pytest.raises(SettingsError, match=r"\(channels, height, width\)"):
        DeepNEATSpace(parameter_input=(32, 32))
    with pytest.raises(SettingsError, match="perturb=True"):
        DeepNEATSpace(perturb=False, add_node_prob=0, add_connection_prob=0,
                      disable_connection_prob=0)
    with pytest.raises(SettingsError, match="chapter 4 used 20"):
        evolve_lineage(DeepNEATSpace(), np.random.default_rng(0), generations=0)
    with pytest.raises(SettingsError, match="max_draws at least n"):
        diverse_sample(DeepNEATSpace(), np.random.default_rng(0), 5, max_draws=2)
