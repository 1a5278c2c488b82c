"""NAS-Bench-101 cells from descriptors: isomorphism, roles, pruning and the space's limits."""

import numpy as np
import pytest
from nasbench101_cases import CONV1, CONV3, POOL, chain, read_rows, scrambled
from torch import nn

from nord.errors import NordError, NotInTableError, OutOfSearchSpaceError
from nord.neural_nets import NeuralDescriptor
from nord.neural_nets.benchmarks.nasbench101 import NASBench_101Evaluator
from nord.neural_nets.graph_hash import nasbench101_hash


@pytest.fixture(scope="module")
def evaluator(csv_path):
    return NASBench_101Evaluator(csv_path)


@pytest.fixture(scope="module")
def rows(csv_path):
    return read_rows(csv_path)


@pytest.fixture(autouse=True)
def _fresh_counter(request):
    if "evaluator" in request.fixturenames:
        request.getfixturevalue("evaluator").reset_counter()


# ---------------------------------------------------------------- isomorphism, roles
def test_isomorphic_descriptors_get_the_same_answer(evaluator):
    d = evaluator.sample(np.random.default_rng(3))[0]
    base = evaluator.descriptor_evaluate(d)
    matrix, ops = evaluator.descriptor_to_matrix(d)
    rng = np.random.default_rng(4)
    for _ in range(5):
        assert evaluator.descriptor_evaluate(scrambled(matrix, ops, rng, "x")) == base
    # extra dangling layers (off every input->output path) are pruned
    extra = scrambled(matrix, ops, rng, "y")
    first_inner = next(n for n, s in extra.layers.items() if s.layer not in ("input", "output"))
    inp = next(n for n, s in extra.layers.items() if s.layer == "input")
    out = next(n for n, s in extra.layers.items() if s.layer == "output")
    extra.add_layer(CONV1, None, "dead_end")              # fed, but reaches nothing
    extra.connect_layers(inp, "dead_end")
    extra.add_layer(nn.Conv2d, {"kernel_size": 3}, "orphan")  # reaches the output only
    extra.connect_layers("orphan", out)
    extra.connect_layers(first_inner, "dead_end")
    assert len(extra) == len(ops) + 2
    assert evaluator.descriptor_evaluate(extra) == base
    got_matrix, got_ops = evaluator.descriptor_to_matrix(extra)
    assert nasbench101_hash(got_matrix, got_ops) == evaluator.hash_of(d)


def test_input_and_output_are_found_by_role(evaluator):
    d = evaluator.sample(np.random.default_rng(5))[0]
    matrix, ops = evaluator.descriptor_to_matrix(d)
    n = len(ops)
    names = ["a_out"] + [f"m{i}" for i in range(1, n - 1)] + ["z_in"]
    backwards = NeuralDescriptor()
    backwards.add_layer("output", None, names[0])           # output added first
    for i in range(1, n - 1):
        backwards.add_layer(ops[i], None, names[i])
    backwards.add_layer("input", None, names[-1])            # input added last
    rename = {0: names[-1], n - 1: names[0], **{i: names[i] for i in range(1, n - 1)}}
    for i in range(n):
        for j in range(n):
            if matrix[i][j]:
                backwards.connect_layers(rename[i], rename[j])
    assert backwards.first_layer == "a_out" and backwards.last_layer == "z_in"
    assert evaluator.descriptor_evaluate(backwards) == evaluator.descriptor_evaluate(d)
    got_matrix, got_ops = evaluator.descriptor_to_matrix(backwards)
    assert got_ops[0] == "input" and got_ops[-1] == "output"
    assert got_matrix.tolist() == np.triu(got_matrix, 1).tolist()


def test_untyped_first_and_last_layers_stand_in_for_input_and_output(evaluator):
    d = NeuralDescriptor()
    d.add_layer(None, None, "start")
    d.add_layer_sequential(CONV3, None, "c")
    d.add_layer_sequential(None, None, "end")
    assert evaluator.descriptor_to_matrix(d)[1] == ["input", CONV3, "output"]



# ---------------------------------------------------------------- out of the space
def test_too_many_vertices(evaluator):
    with pytest.raises(OutOfSearchSpaceError, match="8 vertices"):
        evaluator.descriptor_evaluate(chain([CONV3] * 6))
    # a dead 8th vertex is pruned first, as NAS-Bench-101 prunes
    d = chain([CONV3] * 5)
    d.add_layer(POOL, None, "dead")
    d.connect_layers("in", "dead")
    assert evaluator.descriptor_to_matrix(d)[0].shape == (7, 7)
    assert not evaluator.is_held(chain([CONV3] * 6))


def test_too_many_edges(evaluator):
    d = chain([CONV3, CONV1, POOL, CONV3, CONV1],
               [("in", "n2"), ("in", "n3"), ("in", "n4"), ("n1", "out")])
    with pytest.raises(OutOfSearchSpaceError, match="10 edges"):
        evaluator.descriptor_evaluate(d)
    d.disconnect_layers("in", "n4")
    evaluator.descriptor_to_matrix(d)  # 9 edges: inside the space


@pytest.mark.parametrize("layer, params, match", [
    ("conv5x5-bn-relu", None, "available ops"),
    ("conv3x3", None, "did you mean 'conv3x3-bn-relu'"),
    (nn.Conv2d, None, "Conv2d"),
    (CONV3, {"out_channels": 8}, "parameters"),
])
def test_unknown_ops_and_params(evaluator, layer, params, match):
    d = NeuralDescriptor()
    d.add_layer("input", None, "in")
    d.add_layer_sequential(layer, params, "odd")
    d.add_layer_sequential("output", None, "out")
    with pytest.raises(OutOfSearchSpaceError, match=match) as info:
        evaluator.descriptor_evaluate(d)
    assert "maxpool3x3" in str(info.value) or match == "parameters"
    assert evaluator.queries == 0


def test_cycles_paths_and_ambiguous_roles(evaluator):
    d = chain([CONV3, CONV1])
    d.connect_layers("n2", "n1")
    with pytest.raises(OutOfSearchSpaceError, match="cycle.*n1 -> n2 -> n1"):
        evaluator.descriptor_evaluate(d)
    d = chain([CONV3])
    d.disconnect_layers("n1", "out")
    with pytest.raises(OutOfSearchSpaceError, match="no path"):
        evaluator.descriptor_evaluate(d)
    d = chain([CONV3])
    d.add_layer("input", None, "in2")
    with pytest.raises(OutOfSearchSpaceError, match="2 layers of type 'input'"):
        evaluator.descriptor_evaluate(d)
    d = NeuralDescriptor()
    d.add_layer(CONV3, None, "a")
    d.add_layer_sequential("output", None, "out")
    with pytest.raises(OutOfSearchSpaceError, match="no layer of type 'input'"):
        evaluator.descriptor_evaluate(d)
    with pytest.raises(OutOfSearchSpaceError):
        evaluator.hash_of(([[0, 1], [1, 0]], ["input", "output"]))


def test_valid_cell_missing_from_table(evaluator, rows):
    missing = chain([CONV3, POOL, CONV1, CONV1, POOL], [("in", "n3")])
    key = nasbench101_hash(*evaluator.descriptor_to_matrix(missing))
    assert key not in rows
    with pytest.raises(NotInTableError, match=key):
        evaluator.descriptor_evaluate(missing)
    assert not isinstance(NotInTableError("x"), OutOfSearchSpaceError)
    assert isinstance(NotInTableError("x"), NordError)
    assert evaluator.queries == 0 and evaluator.simulated_time == 0

