"""DARTS supernet and genotypes (chapter 8): hand-computed MixedOps, hand-set alphas."""

import json

import numpy as np
import pytest
import torch

from nord.darts.genotype import (PRIMITIVES, Genotype, edge_count, extract_genotype,
                                 random_genotype)
from nord.neural_nets.darts_ops import make_operation
from nord.darts.supernet import MixedOp, SuperNet
from nord.errors import GenotypeError, SettingsError


@pytest.mark.parametrize("name", PRIMITIVES)
@pytest.mark.parametrize("stride", [1, 2])
def test_every_operation_keeps_channels_and_applies_its_stride(name, stride):
    op = make_operation(name, 6, stride)
    out = op(torch.randn(2, 6, 8, 8))
    assert out.shape == (2, 6, 8 // stride, 8 // stride)
    if name == "none":
        assert torch.count_nonzero(out) == 0


def test_a_mixed_op_is_the_softmax_weighted_sum_of_its_operations():
    torch.manual_seed(0)
    mixed = MixedOp(4, 1).eval()
    x = torch.randn(3, 4, 6, 6)
    alpha = torch.tensor([0.3, -1.0, 2.0, 0.0, 0.5, -0.2, 1.1, 0.7])
    weights = torch.softmax(alpha, dim=0)
    by_hand = sum(float(w) * op(x) for w, op in zip(weights, mixed.ops))
    assert torch.allclose(mixed(x, weights), by_hand, atol=1e-6)
    # one-hot weights pick one operation
    one_hot = torch.zeros(8)
    one_hot[PRIMITIVES.index("max_pool_3x3")] = 1.0
    pooled = mixed.ops[PRIMITIVES.index("max_pool_3x3")](x)
    assert torch.allclose(mixed(x, one_hot), pooled, atol=1e-6)


def hand_alpha(steps=2):
    """Weights (already softmaxed) with a known genotype; rows are edges."""
    rows = np.full((edge_count(steps), len(PRIMITIVES)), 0.01)
    k = PRIMITIVES.index
    rows[0, k("sep_conv_3x3")] = 0.6     # node 2 <- node 0
    rows[1, k("skip_connect")] = 0.3     # node 2 <- node 1
    rows[2, k("none")] = 0.9             # node 3 <- node 0: strong, but only by 'none'
    rows[2, k("avg_pool_3x3")] = 0.05
    rows[3, k("dil_conv_5x5")] = 0.4     # node 3 <- node 1
    rows[4, k("max_pool_3x3")] = 0.7     # node 3 <- node 2
    return rows


def test_extraction_keeps_the_two_strongest_non_zero_edges_per_node():
    genotype = extract_genotype(hand_alpha(), hand_alpha()[::-1].copy(), steps=2, logits=False)
    assert genotype.normal == (("sep_conv_3x3", 0), ("skip_connect", 1),
                               ("dil_conv_5x5", 1), ("max_pool_3x3", 2))
    assert genotype.normal_concat == (2, 3) and genotype.steps == 2
    # logits give the same choice (softmax keeps each row's order)
    again = extract_genotype(np.log(hand_alpha()), np.log(hand_alpha()), steps=2)
    assert again.normal == genotype.normal


def test_ties_go_to_the_lower_edge_and_the_earlier_operation():
    flat = np.zeros((edge_count(3), len(PRIMITIVES)))
    genotype = extract_genotype(flat, flat, steps=3)
    assert genotype.normal == (("skip_connect", 0), ("skip_connect", 1)) * 3
    assert genotype.reduce_concat == (2, 3, 4)


def test_genotypes_round_trip_and_bad_ones_are_refused():
    genotype = extract_genotype(hand_alpha(), hand_alpha(), steps=2, logits=False)
    assert Genotype.from_json(json.dumps(genotype.to_json())) == genotype
    data = genotype.to_json()
    for change, message in [
            (lambda d: d["normal"][0].__setitem__(0, "conv_7x7"), "unknown operation 'conv_7x7'"),
            (lambda d: d["normal"][0].__setitem__(0, "none"), "unknown operation 'none'"),
            (lambda d: d["normal"][1].__setitem__(1, 2), "reads node 2; it can read nodes 0..1"),
            (lambda d: d["reduce"].pop(), "two edges per node"),
            (lambda d: d.pop("reduce_concat"), "keys"),
            (lambda d: d.__setitem__("normal_concat", [2, 2]), "distinct nodes")]:
        broken = json.loads(json.dumps(data))
        change(broken)
        with pytest.raises(GenotypeError, match=message):
            Genotype.from_json(broken)
    with pytest.raises(GenotypeError, match="JSON"):
        Genotype.from_json("{not json")
    with pytest.raises(GenotypeError, match=r"must be \[5 edges, 8 operations\]"):
        extract_genotype(np.zeros((4, 8)), np.zeros((5, 8)), steps=2)
    with pytest.raises(GenotypeError, match="NaN"):
        extract_genotype(np.full((5, 8), np.nan), np.zeros((5, 8)), steps=2)


def test_random_genotypes_are_valid_and_seeded():
    a = random_genotype(np.random.default_rng(3))
    assert a == random_genotype(np.random.default_rng(3)) and a.steps == 4
    assert all(op != "none" for op, _ in a.normal + a.reduce)


def test_the_supernet_shapes_parameters_and_seeding():
    state = torch.random.get_rng_state()
    net = SuperNet(channels=4, num_classes=10, cells=3, steps=2, multiplier=2, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    twin = SuperNet(channels=4, num_classes=10, cells=3, steps=2, multiplier=2, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(net.state_dict().values(),
                                                 twin.state_dict().values()))
    assert [c.reduction for c in net.cells] == [False, True, True]
    out = net(torch.randn(2, 1, 16, 16))
    assert out.shape == (2, 10)
    arch, weights = net.arch_parameters(), net.weights()
    assert [tuple(a.shape) for a in arch] == [(5, 8), (5, 8)]
    assert len(arch) + len(weights) == len(list(net.parameters()))
    out.sum().backward()
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in arch)
    assert net.genotype().steps == 2 and net.genotype().normal_concat == (2, 3)


def test_bad_supernet_settings():
    with pytest.raises(SettingsError, match="channels must be even"):
        SuperNet(channels=5)
    with pytest.raises(SettingsError, match="multiplier"):
        SuperNet(channels=4, steps=2, multiplier=3)
    with pytest.raises(SettingsError, match="include 'none'"):
        SuperNet(channels=4, primitives=("skip_connect", "max_pool_3x3"))
    with pytest.raises(GenotypeError, match="unknown DARTS operation 'conv'"):
        make_operation("conv", 4)
