"""Random graphs either compile and train, or fail with a typed NORD error.

The property test draws descriptors from a pool of 2-D layers with random
hyper-parameters, wired as random DAGs or as arbitrary graphs (cycles,
self-loops, unreachable layers, dead ends, dangling connections, moved
input/output roles), then compiles them under a random size policy. Each one
must either compile *and* run forward and backward with finite values and the
planned shapes, or raise a :class:`~nord.errors.NordError` of the right kind.
The deterministic tests below pin the messages of the typed errors.
"""

from __future__ import annotations

import time
from typing import Dict, Tuple

import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nord.errors import (
    CompilationError,
    CycleError,
    DanglingConnectionError,
    InvalidDescriptorError,
    NoPathError,
    NordError,
    ShapeError,
    UnknownOpError,
)
from nord.neural_nets import NeuralDescriptor, NeuralNet
from nord.neural_nets.graph import active_nodes, find_cycles
from nord.neural_nets.layers import WeightScaling
from nord.neural_nets.shape_planning import POLICIES

BATCH = 2  # BatchNorm needs more than one value per channel in train mode
MAX_NODES = 7  # concatenation doubles channels per layer: keep nets small on CPU


# ---------------------------------------------------------------------- strategies
def _window_params(kernel_max: int = 5):
    return st.fixed_dictionaries({
        "kernel_size": st.integers(1, kernel_max),
        "stride": st.one_of(st.none(), st.integers(1, 3)),
        "padding": st.integers(0, 2),
    })


conv2d = st.builds(
    lambda w, out: (nn.Conv2d, {**w, "stride": w["stride"] or 1, "out_channels": out}),
    _window_params(), st.integers(1, 16))
pool2d = st.builds(lambda cls, w: (cls, w),
                   st.sampled_from([nn.MaxPool2d, nn.AvgPool2d]), _window_params())
out_channels = st.one_of(st.just({}), st.builds(lambda c: {"out_channels": c},
                                                st.integers(1, 16)))
LAYERS = st.one_of(
    conv2d,
    pool2d,
    st.just((nn.BatchNorm2d, {})),
    st.just((nn.ReLU, {})),
    st.builds(lambda p: (nn.Dropout, {"p": p}), st.sampled_from([0.0, 0.2, 0.5])),
    st.just((nn.Identity, {})),
    st.builds(lambda p: ("conv3x3-bn-relu", p), out_channels),
    st.just(("maxpool3x3", {})),
    st.builds(lambda p: ("nor_conv_1x1", p), out_channels),
    st.builds(lambda p: ("skip_connect", p), out_channels),
    st.just(("none", {})),
    st.just((nn.Flatten, {})),
    st.builds(lambda n: (nn.Linear, {"out_features": n}), st.integers(1, 16)),
    st.builds(lambda s: (WeightScaling, {"scale": s}),
              st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)),
)


# Layer names: plain ones, plus names that clash with nn.Module / ModuleDict
# attributes, contain dots or spaces, are empty or start with a digit.
NAMES = st.one_of(
    st.sampled_from([f"n{i}" for i in range(MAX_NODES)]),
    st.sampled_from(["training", "_modules", "_parameters", "forward", "keys", "update",
                     "layer", "layer_2", "L0", "0", "a.b", "a_b", "", "x y", "héllo"]))


@st.composite
def descriptors(draw, valid_dag: bool = False) -> Tuple[NeuralDescriptor, Dict[str, bool]]:
    """A random descriptor and what was done to it (for the expected outcome).

    Three draws in four are DAGs (edges only point forward, mostly along a
    chain so a good share compile); the rest are arbitrary graphs, self-loops
    included. Any of them may get a dangling connection or moved input/output
    roles. ``valid_dag`` keeps only DAGs with an input-to-output chain.
    """
    n = draw(st.integers(1, MAX_NODES))
    d = NeuralDescriptor()
    names = [d.add_layer(*draw(LAYERS), name=name)
             for name in draw(st.lists(NAMES, min_size=n, max_size=n, unique=True))]
    acyclic = valid_dag or draw(st.integers(0, 3)) > 0
    for i, src in enumerate(names):
        if acyclic:
            if i + 1 < n and (valid_dag or draw(st.integers(0, 5)) > 0):
                d.connect_layers(src, names[i + 1])
            targets = names[i + 2:]
        else:
            targets = names
        for dst in draw(st.lists(st.sampled_from(targets), max_size=3)) if targets else ():
            d.connect_layers(src, dst)
    ghost = not valid_dag and draw(st.integers(0, 9)) == 4  # (0 and 9 come often)
    if ghost:
        d.connections[draw(st.sampled_from(names))].append("ghost")
    if not valid_dag and draw(st.integers(0, 7)) == 3:
        d.last_layer = draw(st.sampled_from(names))
    if not valid_dag and draw(st.integers(0, 9)) == 6:
        d.first_layer = draw(st.sampled_from(names))
    return d, {"ghost": ghost}


# ---------------------------------------------------------------------- checking
def _run(net: NeuralNet, x: torch.Tensor, num_classes: int) -> None:
    """Forward + backward; outputs, gradients and every planned shape are checked."""
    seen: Dict[str, Tuple[int, ...]] = {}
    seen_in: Dict[str, Tuple[int, ...]] = {}
    hooks = []
    for node, module in zip(net.plan.nodes, net.layers.values()):
        hooks.append(module.register_forward_pre_hook(
            lambda m, a, name=node.name: seen_in.__setitem__(name, tuple(a[0].shape))))
        hooks.append(module.register_forward_hook(
            lambda m, a, out, name=node.name: seen.__setitem__(name, tuple(out.shape))))
    try:
        net.train()
        out = net(x)
    finally:
        for hook in hooks:
            hook.remove()
    assert out.shape == (x.shape[0], num_classes)
    assert torch.isfinite(out).all(), "non-finite output"
    for node in net.plan.nodes:
        planned_in = (x.shape[0], node.in_shape.channels, *node.in_shape.spatial)
        assert seen_in[node.name] == planned_in, (
            f"layer {node.name} ({node.layer}): planned input {planned_in}, "
            f"real {seen_in[node.name]}")
        planned = (x.shape[0], node.out_shape.channels, *node.out_shape.spatial)
        assert seen[node.name] == planned, (
            f"layer {node.name} ({node.layer}): planned {planned}, real {seen[node.name]}")
    out.square().mean().backward()
    for pname, param in net.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f"{pname} got no gradient"
            assert torch.isfinite(param.grad).all(), f"{pname} has a non-finite gradient"


_SETTINGS = dict(deadline=2000, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_COMPILE_ARGS = dict(size=st.tuples(st.integers(1, 32), st.integers(1, 32)),
                     channels=st.integers(1, 4),
                     num_classes=st.integers(1, 5),
                     policy=st.sampled_from(POLICIES),
                     fixed=st.integers(1, 8),
                     interpolation=st.sampled_from(["linear", "nearest"]))


def _compile_or_raise(case, size, channels, num_classes, policy, fixed, interpolation):
    d, made = case
    before = d.copy()
    problems = d.problems()
    try:
        net = NeuralNet(d, num_classes, size, channels, policy=policy,
                        channels=fixed if policy == "fixed_channels" else None,
                        interpolation=interpolation)
    except NordError as error:
        event(f"raised {type(error).__name__}")
        # Graph problems are InvalidDescriptorErrors, and only graph problems are.
        if problems:
            assert isinstance(error, InvalidDescriptorError)
            assert [type(p) for p in error.problems] == [type(p) for p in problems]
        else:
            # Every parameter the pool draws is legal for its layer, so the only
            # acceptable failure of a valid graph is a shape that cannot work
            # (e.g. Linear fed an image); anything else is a planner/builder bug.
            assert isinstance(error, ShapeError), repr(error)
        if made["ghost"]:
            assert any(isinstance(p, DanglingConnectionError) for p in error.problems)
        if find_cycles(d):
            assert any(isinstance(p, CycleError) for p in error.problems)
        assert d == before, "a failed compilation changed the descriptor"
        return
    assert not problems, f"compiled despite {problems}"
    event(f"compiled {policy}")
    assert d == before, "compilation changed the descriptor"
    active = active_nodes(d)
    assert set(n.name for n in net.plan.nodes) == set(active)
    assert set(net.plan.pruned) == set(d.layers) - set(active)
    assert len(net.layers) == len(active)
    torch.manual_seed(0)
    _run(net, torch.randn(BATCH, channels, *size), num_classes)


@settings(max_examples=200, **_SETTINGS)
@given(case=descriptors(), **_COMPILE_ARGS)
def test_random_graph_compiles_and_trains_or_raises_a_nord_error(**kwargs):
    """DAGs and arbitrary graphs, dangling connections and moved roles included."""
    _compile_or_raise(**kwargs)


@settings(max_examples=150, **_SETTINGS)
@given(case=descriptors(valid_dag=True), **_COMPILE_ARGS)
def test_random_valid_dag_compiles_and_trains_or_raises_a_shape_error(**kwargs):
    """Valid DAGs only, so most examples get as far as training."""
    assert kwargs["case"][0].is_valid()
    _compile_or_raise(**kwargs)


# ---------------------------------------------------------------------- typed errors
def _chain(*names_and_layers) -> NeuralDescriptor:
    d = NeuralDescriptor()
    for name, layer in names_and_layers:
        d.add_layer_sequential(layer, {}, name)
    return d


def test_cycle_raises_cycle_error_naming_the_cycle_in_order():
    d = _chain(("stem", "input"), ("alpha", nn.ReLU), ("beta", nn.Identity),
               ("gamma", nn.ReLU), ("head", "output"))
    d.connect_layers("gamma", "alpha")
    with pytest.raises(CycleError) as info:
        d.validate()
    assert info.value.layers == ("alpha", "beta", "gamma")
    assert "alpha -> beta -> gamma -> alpha" in str(info.value)
    assert "stem" not in str(info.value) and "head" not in info.value.layers
    with pytest.raises(CycleError, match="alpha -> beta -> gamma -> alpha"):
        NeuralNet(d, 2, (4, 4), 1)


def test_self_loop_is_a_cycle_of_one_layer():
    d = _chain(("stem", "input"), ("loop", nn.ReLU), ("head", "output"))
    d.connect_layers("loop", "loop")
    with pytest.raises(CycleError) as info:
        NeuralNet(d, 2, (4, 4), 1)
    assert info.value.layers == ("loop",)
    assert "'loop'" in str(info.value) or "loop -> loop" in str(info.value)


def test_dense_cyclic_graph_validates_promptly():
    d = NeuralDescriptor()
    names = [d.add_layer(nn.ReLU, {}, f"n{i}") for i in range(30)]
    for src in names:
        for dst in names:
            d.connect_layers(src, dst)  # every pair both ways, self-loops included
    start = time.perf_counter()
    with pytest.raises(CycleError) as info:
        d.validate()
    problems = d.problems()
    active = d.active_layers()
    with pytest.raises(CycleError):
        NeuralNet(d, 2, (4, 4), 1)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"validating a dense 30-node cyclic graph took {elapsed:.2f}s"
    assert set(info.value.layers) <= set(names) and info.value.layers[0] == "n0"
    assert [type(p) for p in problems] == [CycleError]  # one cyclic component, one error
    assert active == names


def test_inactive_layers_are_pruned_and_get_no_modules():
    d = NeuralDescriptor()
    d.add_layer("input", {}, "inp")
    d.add_layer(nn.Conv2d, {"out_channels": 4, "kernel_size": 3, "padding": 1}, "conv")
    d.add_layer(nn.Conv2d, {"out_channels": 9, "kernel_size": 1}, "dead_end")    # no path out
    d.add_layer(nn.Linear, {"out_features": 3}, "orphan")   # unreachable (and would not fit)
    d.add_layer(nn.ReLU, {}, "orphan_child")                # fed only by the orphan
    d.add_layer("output", {}, "out")
    for src, dst in [("inp", "conv"), ("conv", "out"), ("conv", "dead_end"),
                     ("orphan", "orphan_child"), ("orphan_child", "out")]:
        d.connect_layers(src, dst)
    net = NeuralNet(d, 3, (6, 6), 2)
    pruned = ("dead_end", "orphan", "orphan_child")
    assert net.plan.pruned == pruned
    assert [n.name for n in net.plan.nodes] == ["inp", "conv", "out"]
    assert set(net.layers.keys()) == {"inp", "conv", "out"}
    assert not any(isinstance(m, nn.Linear) for m in net.layers.modules())
    assert all(m.out_channels == 4 for m in net.modules() if isinstance(m, nn.Conv2d))
    assert "pruned: dead_end, orphan, orphan_child" in net.summary()
    out = net(torch.randn(2, 2, 6, 6))
    assert out.shape == (2, 3)


def test_several_problems_raise_invalid_descriptor_error_with_each_problem():
    d = NeuralDescriptor()
    d.add_layer("input", {}, "inp")
    d.add_layer_sequential(nn.ReLU, {}, "relu")
    d.add_layer(nn.ReLU, {}, "loop_a")
    d.add_layer(nn.ReLU, {}, "loop_b")
    d.connect_layers("loop_a", "loop_b")
    d.connect_layers("loop_b", "loop_a")
    d.connections["relu"].append("ghost")
    d.add_layer("conv3x3-bn-rleu", {}, "typo")  # the output: unknown op, no path to it
    with pytest.raises(InvalidDescriptorError) as info:
        d.validate()
    error = info.value
    assert type(error) is InvalidDescriptorError
    kinds = [type(p) for p in error.problems]
    assert sorted(k.__name__ for k in kinds) == sorted(
        ["DanglingConnectionError", "CycleError", "NoPathError", "UnknownOpError"])
    assert all(isinstance(p, InvalidDescriptorError) for p in error.problems)
    for name in ("ghost", "loop_a", "loop_b", "typo", "inp"):
        assert name in str(error), name
    assert "4 problems" in str(error)
    with pytest.raises(InvalidDescriptorError) as again:
        NeuralNet(d, 2, (4, 4), 1)
    assert [type(p) for p in again.value.problems] == kinds


def test_dangling_connection_names_both_layers():
    d = _chain(("stem", "input"), ("body", nn.ReLU), ("head", "output"))
    d.connections["body"].append("ghost")
    with pytest.raises(DanglingConnectionError) as info:
        NeuralNet(d, 2, (4, 4), 1)
    message = str(info.value)
    assert "'body'" in message and "'ghost'" in message
    assert set(info.value.layers) == {"body", "ghost"}


def test_dangling_connection_suggests_a_close_layer_name():
    d = _chain(("stem", "input"), ("classifier", nn.ReLU))
    d.connections["stem"].append("clasifier")
    with pytest.raises(DanglingConnectionError, match="did you mean 'classifier'"):
        d.validate()


def test_no_path_names_input_and_output():
    d = NeuralDescriptor()
    d.add_layer("input", {}, "source")
    d.add_layer(nn.ReLU, {}, "island")
    d.add_layer("output", {}, "sink")
    d.connect_layers("source", "island")
    with pytest.raises(NoPathError) as info:
        NeuralNet(d, 2, (4, 4), 1)
    assert "'source'" in str(info.value) and "'sink'" in str(info.value)
    assert info.value.layers == ("source", "sink")


def test_no_path_on_an_empty_descriptor():
    with pytest.raises(NoPathError, match="no layers"):
        NeuralDescriptor().validate()


def test_unknown_op_names_the_layer_and_suggests_the_known_op():
    d = _chain(("stem", "input"), ("cell", "conv3x3-bn-rleu"), ("head", "output"))
    with pytest.raises(UnknownOpError) as info:
        NeuralNet(d, 2, (4, 4), 1)
    message = str(info.value)
    assert "'cell'" in message and "'conv3x3-bn-rleu'" in message
    assert "did you mean 'conv3x3-bn-relu'" in message
    assert info.value.layers == ("cell",)


def test_unknown_layer_type_that_is_not_a_module_is_an_unknown_op():
    d = _chain(("stem", "input"), ("weird", 42))
    with pytest.raises(UnknownOpError, match="'weird'"):
        d.validate()


def test_every_typed_error_is_a_nord_error_and_a_value_error():
    for cls in (CycleError, DanglingConnectionError, NoPathError, UnknownOpError,
                InvalidDescriptorError, CompilationError):
        assert issubclass(cls, NordError)
    for cls in (CycleError, DanglingConnectionError, NoPathError, UnknownOpError):
        assert issubclass(cls, InvalidDescriptorError) and issubclass(cls, ValueError)
