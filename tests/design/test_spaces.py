"""Search spaces: samples, mutations and descriptors, checked exactly."""

import os
from pathlib import Path

import numpy as np
import pytest

from nord.design.spaces import get_space
from nord.design.spaces.nasbench101 import NASBench101Space
from nord.errors import NordError, UnknownNameError
from nord.neural_nets.benchmarks.nasbench201 import arch_to_ops, descriptor_to_arch
from nord.neural_nets.graph_hash import prune_nasbench101

DATA = Path(os.environ.get("NORD_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")
NB101 = DATA / "nasbench101" / "nb101_30k_subset.csv.gz"


def test_nasbench201_mutation_changes_exactly_one_edge():
    space, rng = get_space("nasbench201"), np.random.default_rng(0)
    cell = space.sample(rng)
    for _ in range(200):
        child = space.mutate(cell, rng)
        changed = [a != b for a, b in zip(arch_to_ops(cell), arch_to_ops(child))]
        assert sum(changed) == 1
        cell = child


def test_nasbench201_samples_are_uniform_and_round_trip():
    space, rng = get_space("nasbench201"), np.random.default_rng(1)
    cells = [space.sample(rng) for _ in range(3000)]
    ops = np.array([[space.ops.index(o) for o in arch_to_ops(c)] for c in cells])
    shares = np.bincount(ops.ravel(), minlength=5) / ops.size
    assert np.allclose(shares, 0.2, atol=0.02)
    for cell in cells[:50]:
        assert descriptor_to_arch(space.to_descriptor(cell)) == cell
        assert space.decode(space.encode(cell)) == cell


def test_listing_3_6_sample_is_a_chain_with_numeric_prefixes():
    space, rng = NASBench101Space(second_connection_prob=0.0), np.random.default_rng(2)
    d = space.sample(rng)
    names = list(d.layers)
    assert names[0] == "0_Layer" and names[-1] == "9999"
    assert d.layers["0_Layer"].layer == "input" and d.layers["9999"].layer == "output"
    assert list(d.edges()) == list(zip(names, names[1:]))
    assert 1 <= len(names) - 2 <= 5


def test_listing_3_6_node_insertion_splits_a_connection():
    space = NASBench101Space(add_connection_prob=0.0, add_node_prob=1.0)
    rng = np.random.default_rng(0)
    parent = space.from_matrix([[0, 1, 0], [0, 0, 1], [0, 0, 0]],
                               ["input", "conv3x3-bn-relu", "output"])
    child = space.mutate(parent, rng)
    assert len(child.layers) == 4 and len(parent.layers) == 3  # parent untouched
    new = next(n for n in child.layers if n not in parent.layers)
    assert new in ("0.5_Layer", "5000_Layer")  # midpoints of 0-1 and 1-9999
    source, target = ("0_Layer", "1_Layer") if new == "0.5_Layer" else ("1_Layer", "9999")
    assert (source, target) not in set(child.edges())
    assert {(source, new), (new, target)} <= set(child.edges())
    assert child.last_layer == "9999"
    # a second insertion on the same edge bisects again, names never collide
    grandchild = space.mutate(child, rng)
    assert len(set(grandchild.layers)) == 5


def test_listing_3_6_connections_only_run_forward():
    space = NASBench101Space(add_connection_prob=0.6, add_node_prob=0.4)
    rng = np.random.default_rng(5)
    d = space.sample(rng)
    for _ in range(30):
        d = space.mutate(d, rng)
        for src, dst in d.edges():
            assert float(src.split("_")[0]) < float(dst.split("_")[0])
        assert len(d.layers) - 2 <= 5


def test_nasbench_mutation_gives_different_valid_cells():
    space = NASBench101Space(mutation="nasbench")
    rng = np.random.default_rng(3)
    d = space.from_matrix([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
                          ["input", "conv3x3-bn-relu", "maxpool3x3", "output"])
    for _ in range(30):
        child = space.mutate(d, rng)
        matrix, ops = space.to_matrix(child)
        assert (matrix, ops) != space.to_matrix(d)
        assert sum(map(sum, matrix)) <= 9 and len(ops) <= 7
        assert prune_nasbench101(matrix, ops) == (matrix, ops)
        d = child


@pytest.mark.skipif(not NB101.exists(), reason="../shared/data/nasbench101 not present")
def test_held_only_stays_inside_the_table():
    from nord.neural_nets.benchmarks.nasbench101 import NASBench_101Evaluator
    evaluator = NASBench_101Evaluator(NB101)
    space = NASBench101Space(held_only=True, evaluator=evaluator, mutation="nasbench")
    rng = np.random.default_rng(0)
    d = space.sample(rng)
    for _ in range(20):
        assert evaluator.is_held(d)
        d = space.mutate(d, rng)
    assert space.fallbacks < 20


def test_unknown_space_and_mutation_are_named():
    with pytest.raises(UnknownNameError, match="^unknown search space 'nasbench301' \\(did you "
                       "mean 'nasbench201', 'nasbench101'\\?\\); available: nasbench201, "
                       "nasbench101, remnet, deepneat, gcn; register one with "):
        get_space("nasbench301")
    with pytest.raises(NordError, match="unknown mutation"):
        NASBench101Space(mutation="flip")
