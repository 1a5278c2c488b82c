"""NAS-Bench-201 cells: strings, the descriptor conversion rule, isomorphism."""

import random

import pytest
from nasbench201_cases import (ALL_NONE, LISTING_3_3, chain, evaluator_or_skip, listing_3_3,
                               scrambled)

from nord.errors import CycleError, OutOfSearchSpaceError, UnknownOpError
from nord.neural_nets.benchmarks.nasbench201_cells import (OPS, arch_to_ops, isomorphism_key,
                                                           ops_to_arch)
from nord.neural_nets.benchmarks.nasbench201_descriptors import (arch_to_descriptor,
                                                                 descriptor_to_arch)
from nord.neural_nets.neural_descriptor import NeuralDescriptor


@pytest.fixture(scope="module")
def evaluator():
    return evaluator_or_skip()


# ------------------------------------------------------------------ round trips
def test_every_cell_round_trips_through_its_descriptor(evaluator):
    assert len(evaluator) == 15625
    seen = set()
    for index, arch in evaluator:
        assert descriptor_to_arch(arch_to_descriptor(arch)) == arch, index
        seen.add(index)
    assert seen == set(range(15625))


def test_renamed_and_reordered_descriptors_give_the_same_cell(evaluator):
    rng = random.Random(201)
    d = listing_3_3()
    for _ in range(5):
        copy = scrambled(d, rng)
        assert descriptor_to_arch(copy) == LISTING_3_3
        assert evaluator.descriptor_evaluate(copy, ["validation_accuracy", "test_accuracy"]) \
            == evaluator.descriptor_evaluate(d, ["validation_accuracy", "test_accuracy"])
    archs = [arch for _, arch in evaluator]
    for arch in rng.sample(archs, 1500):
        assert descriptor_to_arch(scrambled(arch_to_descriptor(arch), rng)) == arch
        bare = arch_to_descriptor(arch, none_nodes=False)
        assert (descriptor_to_arch(scrambled(bare, rng)) == descriptor_to_arch(bare))


# ------------------------------------------------------------------ conversion rule
def test_descriptors_without_none_nodes():
    # A chain of three ops: states 1 and 2 in order, missing edges are 'none'.
    assert descriptor_to_arch(chain("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")) == (
        "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|")
    # One intermediate state is state 1.
    assert descriptor_to_arch(chain("nor_conv_3x3", "skip_connect")) == (
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
    assert descriptor_to_arch(chain("nor_conv_3x3")) == (
        "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    # No path from IN to OUT: every op is inactive.
    d = NeuralDescriptor()
    d.add_layer("IN", None, "IN")
    d.add_layer("nor_conv_3x3", None, "dangling")
    d.connect_layers("IN", "dangling")
    d.add_layer("OUT", None, "OUT")
    assert descriptor_to_arch(d) == ALL_NONE


def test_inactive_layers_and_parallel_none_are_ignored():
    d = chain("nor_conv_3x3", "nor_conv_1x1")
    d.add_layer("avg_pool_3x3", None, "dead_end")          # reads op1, feeds nothing
    d.connect_layers("op1", "dead_end")
    d.add_layer("none", None, "parallel_none")              # same edge as op2
    d.connect_layers("op1", "parallel_none")
    d.connect_layers("parallel_none", "OUT")
    assert descriptor_to_arch(d) == (
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|")


def test_independent_intermediate_states_are_numbered_canonically():
    def two_paths(first, second):
        d = NeuralDescriptor()
        d.add_layer("IN", None, "IN")
        for k, (a, b) in enumerate((first, second)):
            d.add_layer(a, None, f"a{k}")
            d.add_layer(b, None, f"b{k}")
            d.connect_layers("IN", f"a{k}")
            d.connect_layers(f"a{k}", f"b{k}")
        d.add_layer("OUT", None, "OUT")
        d.connect_layers("b0", "OUT")
        d.connect_layers("b1", "OUT")
        return d

    one = descriptor_to_arch(two_paths(("nor_conv_3x3", "avg_pool_3x3"),
                                       ("skip_connect", "nor_conv_1x1")))
    two = descriptor_to_arch(two_paths(("skip_connect", "nor_conv_1x1"),
                                       ("nor_conv_3x3", "avg_pool_3x3")))
    assert one == two == ("|skip_connect~0|+|nor_conv_3x3~0|none~1|+"
                          "|none~0|nor_conv_1x1~1|avg_pool_3x3~2|")


@pytest.mark.parametrize("build,match", [
    (lambda: _with(chain("nor_conv_3x3"), ("skip_connect", "p", [("IN", "p"), ("p", "OUT")])),
     "both lie on the edge from state 0 to state 3"),
    (lambda: _connect(chain("nor_conv_3x3", "nor_conv_1x1"), ("IN", "op2")),
     "sums 'IN' with the op outputs"),
    (chain, "connects straight to 'OUT'"),
    (lambda: _connect(chain("nor_conv_3x3", "nor_conv_1x1"), ("op1", "OUT")),
     "op node 'op1' is summed into 2 different states"),
    (lambda: _with(chain("nor_conv_3x3"), ("IN", "IN2", [])), "2 layers of type 'IN'"),
    (lambda: _without(chain("nor_conv_3x3"), "OUT"), "no layer of type 'OUT'"),
])
def test_descriptors_outside_the_cell_say_why(build, match):
    with pytest.raises(OutOfSearchSpaceError, match=match):
        descriptor_to_arch(build())


def _with(d, spec):
    layer, name, edges = spec
    d.add_layer(layer, None, name)
    for a, b in edges:
        d.connect_layers(a, b)
    return d


def _connect(d, edge):
    d.connect_layers(*edge)
    return d


def _without(d, name):
    d.remove_layer(name)
    return d


def test_cycle_is_reported():
    d = chain("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3")
    d.disconnect_layers("op3", "OUT")
    d.connect_layers("op2", "OUT")
    d.connect_layers("op3", "op2")
    with pytest.raises(CycleError, match="op2 -> op3 -> op2|op3 -> op2 -> op3"):
        descriptor_to_arch(d)


def test_unknown_op_lists_the_available_ops(evaluator):
    d = chain("nor_conv_3x3", "conv3x3-bn-relu")
    with pytest.raises(UnknownOpError) as info:
        evaluator.descriptor_evaluate(d)
    for op in OPS:
        assert repr(op) in str(info.value)
    assert "'op2'" in str(info.value)
    with pytest.raises(UnknownOpError, match="skip_connect"):
        evaluator.evaluate_string("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_cell_strings():
    assert arch_to_ops(LISTING_3_3) == ("nor_conv_3x3", "skip_connect", "nor_conv_1x1",
                                        "nor_conv_3x3", "skip_connect", "avg_pool_3x3")
    assert ops_to_arch(arch_to_ops(LISTING_3_3)) == LISTING_3_3
    # edges within a state in another order are accepted and normalised
    shuffled = "|nor_conv_3x3~0|+|nor_conv_1x1~1|skip_connect~0|+" \
               "|avg_pool_3x3~2|nor_conv_3x3~0|skip_connect~1|"
    assert arch_to_ops(shuffled) == arch_to_ops(LISTING_3_3)
    for bad, match in [("|none~0|+|none~0|none~1|", "3 '\\+'-separated groups"),
                       ("|none~0|+|none~0|+|none~0|none~1|none~2|", "no op for input"),
                       ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "cannot take"),
                       ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "twice")]:
        with pytest.raises(OutOfSearchSpaceError, match=match):
            arch_to_ops(bad)


def test_isomorphism_classes(evaluator):
    keys = {isomorphism_key(arch) for _, arch in evaluator}
    assert len(keys) == 6466
    # state 1 is zero, so the op on edge 1 -> 3 does not matter
    a = "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    b = "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
    members = evaluator.isomorphism_class(a)
    assert evaluator.index_of(a) in members and evaluator.index_of(b) in members
    assert evaluator.isomorphism_class(arch_to_descriptor(b)) == members
    assert evaluator.isomorphism_class(6111) == [6111]
    # isomorphic cells are separate rows with their own numbers
    assert evaluator.evaluate_string(a) != evaluator.evaluate_string(b)
