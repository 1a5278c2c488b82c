"""Every registered layer compiles, runs forward and backward, and plans true shapes.

The test is parametrized over the default layer registry itself, so a layer
registered in the library without a row in ``CASES`` fails loudly instead of
going untested. For each layer a tiny descriptor ``input -> layer -> output``
is compiled with :class:`NeuralNet`; the shapes the planner predicted for every
layer (``net.plan.nodes[i].in_shape``/``out_shape``) are compared with the real
tensors seen by forward hooks, which checks the static shape rules of
``layers.py`` against torch itself.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
from typing import Any, Dict, List, NamedTuple, Tuple

import pytest
import torch
import torch.nn as nn

from nord.errors import CompilationError, NordError
from nord.neural_nets import NeuralDescriptor, NeuralNet
from nord.neural_nets.graph_layers import GRAPH_OPS
from nord.neural_nets.layers import default_registry

importlib.import_module("nord.neural_nets.remnet_layers")  # registers the genome-space blocks

BATCH = 4
NUM_CLASSES = 3
INPUT_CHANNELS = 3
IMAGE = (9, 11)     # odd, unequal sizes exercise floor/ceil and per-dim rules
SIGNAL = (13,)


class Case(NamedTuple):
    """One way to exercise a layer: its params and the rank of its input.

    ``rank`` 2 feeds images, 1 feeds 1-D signals (channels x length), 0 feeds
    images through an ``nn.Flatten`` placed before the layer.
    """

    params: Dict[str, Any]
    rank: int
    tag: str = ""


def _same(rank: int = 2) -> List[Case]:
    return [Case({}, rank)]


# name -> the cases that exercise it; the first is the plain one. Extra cases
# cover the parts of each shape rule (stride, padding, dilation, ceil_mode...).
CASES: Dict[str, List[Case]] = {
    # --- convolutions
    "Conv1d": [Case({"out_channels": 5, "kernel_size": 3}, 1),
               Case({"out_channels": 4, "kernel_size": 4, "stride": 3, "padding": 2,
                     "dilation": 2}, 1, "strided"),
               Case({"out_channels": 2, "kernel_size": 4, "padding": "same"}, 1, "same")],
    "Conv2d": [Case({"out_channels": 5, "kernel_size": 3}, 2),
               Case({"out_channels": 4, "kernel_size": (3, 2), "stride": (2, 3),
                     "padding": (1, 2), "dilation": (2, 1)}, 2, "tuples"),
               Case({"out_channels": 2, "kernel_size": 4, "padding": "same",
                     "dilation": 2}, 2, "same"),
               Case({"out_channels": 2, "kernel_size": 3, "padding": "valid",
                     "bias": False}, 2, "valid")],
    # --- pooling
    "MaxPool1d": [Case({"kernel_size": 2}, 1),
                  Case({"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2,
                        "ceil_mode": True}, 1, "ceil")],
    "MaxPool2d": [Case({"kernel_size": 2}, 2),
                  Case({"kernel_size": 3, "padding": 1, "dilation": 3}, 2, "dilated-pad"),
                  Case({"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1),
                        "ceil_mode": True}, 2, "ceil"),
                  Case({"kernel_size": 2, "stride": 2, "dilation": 2}, 2, "dilated")],
    "AvgPool1d": [Case({"kernel_size": 2}, 1),
                  Case({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
                        "count_include_pad": False}, 1, "ceil")],
    "AvgPool2d": [Case({"kernel_size": 2}, 2),
                  Case({"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True},
                       2, "ceil"),
                  Case({"kernel_size": (2, 3), "stride": None}, 2, "stride-none")],
    "AdaptiveAvgPool1d": [Case({"output_size": 3}, 1)],
    "AdaptiveMaxPool1d": [Case({"output_size": 3}, 1)],
    "AdaptiveAvgPool2d": [Case({"output_size": 2}, 2),
                          Case({"output_size": (None, 3)}, 2, "none-dim")],
    "AdaptiveMaxPool2d": [Case({"output_size": (3, 1)}, 2),
                          Case({"output_size": (2, None)}, 2, "none-dim")],
    # --- normalisation and dropout
    "BatchNorm1d": [Case({}, 1), Case({}, 0, "flat")],
    "BatchNorm2d": _same(2),
    "Dropout1d": _same(1),
    "Dropout2d": _same(2),
    "Dropout": [Case({"p": 0.3}, 2)],
    "AlphaDropout": [Case({"p": 0.3}, 2)],
    # --- dense
    "Linear": [Case({"out_features": 7}, 0)],
    "Flatten": [Case({}, 2), Case({}, 1, "signal")],
    # --- element-wise
    "Identity": _same(2),
    "ReLU": [Case({}, 2), Case({"inplace": True}, 2, "inplace")],
    "ReLU6": _same(2),
    "LeakyReLU": [Case({"negative_slope": 0.2}, 2)],
    "ELU": _same(2),
    "SELU": _same(2),
    "GELU": _same(2),
    "SiLU": _same(2),
    "Mish": _same(2),
    "Sigmoid": _same(2),
    "Tanh": _same(2),
    "Hardswish": _same(2),
    "Hardtanh": _same(2),
    "Softplus": _same(2),
    "PReLU": [Case({}, 2), Case({"num_parameters": 1}, 1, "signal")],
    "WeightScaling": [Case({"scale": 0.5}, 2), Case({"scale": 2.0}, 0, "flat")],
    "RemNetConv": [Case({"out_channels": 4, "kernel_size": 2}, 2),
                   Case({"out_channels": 2, "kernel_size": 5, "dropout": 0.3}, 2, "k5")],
    "RemNetDenseHead": [Case({}, 0)],
    "DeepNEATBlock": [Case({"out_channels": 4, "kernel_size": 3, "dropout": 0.2, "scale": 0.5}, 2),
                      Case({"out_channels": 3, "kernel_size": 1, "max_pool": True}, 2, "pool")],
    # --- op strings
    "input": [Case({}, 2), Case({}, 0, "flat")],
    "output": _same(2),
    "IN": _same(2),
    "OUT": _same(1),
    "identity": [Case({}, 2), Case({"out_channels": 6}, 2, "project"),
                 Case({"out_channels": 6}, 1, "project-signal"),
                 Case({"out_channels": 6}, 0, "project-flat")],
    "skip_connect": [Case({}, 2), Case({"out_channels": 2}, 1, "project-signal"),
                     Case({"out_channels": 5}, 0, "project-flat"),
                     Case({"stride": 2, "out_channels": 4}, 2, "factorized-reduce")],
    "none": [Case({}, 2), Case({}, 0, "flat"), Case({"stride": 2}, 2, "strided")],
    "conv3x3-bn-relu": [Case({"out_channels": 6}, 2), Case({}, 1, "signal")],
    "conv1x1-bn-relu": [Case({"out_channels": 6}, 2), Case({"out_channels": 2}, 1, "signal")],
    "nor_conv_3x3": [Case({"out_channels": 6}, 2), Case({}, 1, "signal")],
    "nor_conv_1x1": [Case({"out_channels": 6}, 2), Case({}, 1, "signal")],
    "maxpool3x3": [Case({}, 2), Case({"out_channels": 5}, 2, "project"),
                   Case({}, 1, "signal")],
    "avg_pool_3x3": [Case({}, 2), Case({"out_channels": 5}, 1, "project-signal"),
                     Case({"stride": 2}, 2, "strided")],
    # --- DARTS (chapter 8)
    **{name: [Case({}, 2), Case({"stride": 2}, 2, "strided")]
       for name in ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
                    "max_pool_3x3")},
    "darts_preprocess": [Case({"out_channels": 4}, 2),
                         Case({"out_channels": 4, "reduce": True}, 2, "reduce")],
    "concat": _same(2),
}


def _library_entry(key: Any) -> bool:
    """True for layers the library registers (not ones a test registered).

    Other test modules may register their own layers into the default registry;
    those are theirs to test, so they are left out of the coverage check.
    """
    if isinstance(key, type):
        return key.__module__.split(".")[0] in ("torch", "nord")
    build = default_registry().lookup(key).build
    try:
        factory = inspect.getclosurevars(build).nonlocals.get("factory")
    except (TypeError, ValueError):
        return True
    module = getattr(factory, "__module__", None) or "nord"
    return module.split(".")[0] == "nord"


def _registered() -> List[Tuple[str, Any]]:
    """The library's layers, without the graph layers: they run on batches of graphs
    (tests/neural_nets/test_graph_network.py and tests/design/predictors/test_egraph.py
    run every one of them)."""
    registry = default_registry()
    entries = list(registry.classes()) + list(registry.ops())
    return [(k if isinstance(k, str) else k.__name__, k) for k in entries
            if _library_entry(k) and k not in GRAPH_OPS]


REGISTERED = _registered()


# torch notes that even kernels with padding='same' pad asymmetrically (Conv1d-same)
_SAME_PADDING_NOTE = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def _layer_params():
    for name, key in REGISTERED:
        cases = CASES.get(name) or [None]  # None: fails in the test, naming the layer
        for case in cases:
            suffix = f"-{case.tag}" if case is not None and case.tag else ""
            yield pytest.param(key, case, id=f"{name}{suffix}", marks=_SAME_PADDING_NOTE)


# ---------------------------------------------------------------------- helpers
def _shape_tuple(shape) -> Tuple[int, ...]:
    return (BATCH, shape.channels, *shape.spatial)


def _run_and_check(net: NeuralNet, x: torch.Tensor) -> torch.Tensor:
    """Forward + backward in train mode, checking shapes, values and gradients."""
    seen_in: Dict[str, Tuple[int, ...]] = {}
    seen_out: Dict[str, Tuple[int, ...]] = {}
    hooks = []
    assert len(net.layers) == len(net.plan.nodes)
    for node, module in zip(net.plan.nodes, net.layers.values()):
        hooks.append(module.register_forward_pre_hook(
            lambda m, args, name=node.name: seen_in.__setitem__(name, tuple(args[0].shape))))
        hooks.append(module.register_forward_hook(
            lambda m, args, out, name=node.name: seen_out.__setitem__(name, tuple(out.shape))))
    net.train()
    try:
        out = net(x)
    finally:
        for hook in hooks:
            hook.remove()

    assert out.shape == (x.shape[0], NUM_CLASSES)
    assert torch.isfinite(out).all(), "non-finite network output"
    for node in net.plan.nodes:
        assert seen_in[node.name] == _shape_tuple(node.in_shape), (
            f"{node.name}: planned input {node.in_shape}, real {seen_in[node.name]}")
        assert seen_out[node.name] == _shape_tuple(node.out_shape), (
            f"{node.name}: planned output {node.out_shape}, real {seen_out[node.name]}")
    assert _shape_tuple(net.output_shape) == seen_out[net.plan.output]

    net.zero_grad(set_to_none=True)
    out.square().mean().backward()
    for pname, param in net.named_parameters():
        if not param.requires_grad:
            continue
        assert param.grad is not None, f"parameter {pname} got no gradient"
        assert torch.isfinite(param.grad).all(), f"parameter {pname} has a non-finite gradient"
    return out


def _input(rank: int, channels: int = INPUT_CHANNELS):
    spatial = SIGNAL if rank == 1 else IMAGE
    return spatial, torch.randn(BATCH, channels, *spatial)


# ---------------------------------------------------------------------- tests
def single_layer_descriptor(layer, case: Case) -> NeuralDescriptor:
    """input -> (flatten, for rank-0 layers) -> ``layer`` with the case's params -> output."""
    d = NeuralDescriptor()
    d.add_layer("input", {}, "in")
    if case.rank == 0:
        d.add_layer_sequential(nn.Flatten, {}, "flatten")
    d.add_layer_sequential(layer, dict(case.params), "layer")
    d.add_layer_sequential("output", {}, "out")
    return d


def test_every_registered_layer_has_a_case():
    """A new layer registered in the library must get a row in CASES."""
    names = {name for name, _ in REGISTERED}
    missing = sorted(names - set(CASES))
    assert not missing, f"registered layers without a test case in CASES: {missing}"
    stale = sorted(set(CASES) - names)
    assert not stale, f"CASES rows for layers that are no longer registered: {stale}"
    assert all(CASES[name] for name in names)


@pytest.mark.parametrize("layer, case", list(_layer_params()))
def test_layer_compiles_runs_and_plans_true_shapes(layer, case):
    name = layer if isinstance(layer, str) else layer.__name__
    assert case is not None, f"layer {name!r} is registered but has no entry in CASES"
    torch.manual_seed(0)
    d = single_layer_descriptor(layer, case)

    spatial, x = _input(case.rank)
    net = NeuralNet(d, NUM_CLASSES, spatial, INPUT_CHANNELS)
    assert [n.name for n in net.plan.nodes] == [n for n in d.layers]
    assert net.plan.pruned == ()
    _run_and_check(net, x)

    # the descriptor is left untouched by compilation (params are copied)
    assert d.layers["layer"].params == case.params


@pytest.mark.parametrize("name, layer", [pytest.param(k, k, id=n) for n, k in REGISTERED
                                         if n in ("BatchNorm1d", "BatchNorm2d")])
def test_batchnorm_infers_num_features(name, layer):
    d = NeuralDescriptor()
    d.add_layer(nn.Conv1d if layer is nn.BatchNorm1d else nn.Conv2d,
                {"out_channels": 7, "kernel_size": 1}, "conv")
    d.add_layer_sequential(layer, {"num_features": 999}, "bn")  # wrong on purpose
    spatial, x = _input(1 if layer is nn.BatchNorm1d else 2)
    net = NeuralNet(d, NUM_CLASSES, spatial, INPUT_CHANNELS)
    assert net.plan.nodes[1].params["num_features"] == 7
    _run_and_check(net, x)


# ---------------------------------------------------------------------- policies
def _branching_descriptor() -> NeuralDescriptor:
    """stem -> {conv a (5x5 valid), pool b (stride 2), skip} -> merge -> head conv.

    The branches disagree in both channels and height/width, so every policy
    has to reconcile them.
    """
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 6, "kernel_size": 3, "padding": 1}, "stem")
    d.add_layer(nn.Conv2d, {"out_channels": 10, "kernel_size": 5}, "a")
    d.add_layer(nn.MaxPool2d, {"kernel_size": 2}, "b")
    d.add_layer("nor_conv_1x1", {"out_channels": 4}, "c")
    d.add_layer(nn.ReLU, {}, "merge")
    d.add_layer("conv3x3-bn-relu", {"out_channels": 5}, "tail")
    d.add_layer(nn.Conv2d, {"out_channels": 3, "kernel_size": 1}, "unused")  # pruned
    d.add_layer(nn.BatchNorm2d, {}, "out")
    for src, dst in [("stem", "a"), ("stem", "b"), ("stem", "c"), ("a", "merge"),
                     ("b", "merge"), ("c", "merge"), ("merge", "tail"), ("tail", "out"),
                     ("stem", "out"), ("unused", "out")]:
        d.connect_layers(src, dst)
    return d


@pytest.mark.parametrize("policy, channels", [("minimum_viable_size", None),
                                              ("maximum_viable_size", None),
                                              ("fixed_channels", 8)])
def test_policies_on_a_branching_graph(policy, channels):
    torch.manual_seed(0)
    d = _branching_descriptor()
    net = NeuralNet(d, NUM_CLASSES, (12, 12), INPUT_CHANNELS, policy=policy,
                    channels=channels)
    plan = {n.name: n for n in net.plan.nodes}
    assert net.plan.policy == policy
    assert net.plan.pruned == ("unused",)
    assert "unused" not in plan
    _run_and_check(net, torch.randn(BATCH, INPUT_CHANNELS, 12, 12))

    merge = plan["merge"]
    assert len(merge.inputs) == 3
    branch_shapes = [i.shape for i in merge.inputs]
    if policy == "maximum_viable_size":
        assert merge.merge == "concat"
        assert merge.in_shape.channels == sum(s.channels for s in branch_shapes)
        assert merge.in_shape.spatial == tuple(max(s.spatial[k] for s in branch_shapes)
                                               for k in range(2))
    else:
        assert merge.merge == "sum"
        assert merge.in_shape.channels == min(s.channels for s in branch_shapes)
        assert merge.in_shape.spatial == tuple(min(s.spatial[k] for s in branch_shapes)
                                               for k in range(2))
    if policy == "fixed_channels":
        for name in ("stem", "a", "c", "tail"):
            assert plan[name].out_shape.channels == 8, name
        assert all(s.channels == 8 for s in branch_shapes)
    else:
        assert [s.channels for s in branch_shapes] == [10, 6, 4]
    # the 3x3 conv of 'tail' keeps the merged size; 'out' merges tail and stem
    assert plan["tail"].out_shape.spatial == merge.in_shape.spatial
    assert {i.source for i in plan["out"].inputs} == {"tail", "stem"}


# ---------------------------------------------------------------------- window rules
WINDOW_GRID = list(itertools.product(
    [1, 2, 3, 4],          # kernel_size
    [None, 1, 2, 3],       # stride (None: the pool default, the kernel)
    [0, 1, 2],             # padding
    [1, 2, 3],             # dilation
    [False, True],         # ceil_mode
))


@pytest.mark.parametrize("layer", [nn.Conv1d, nn.Conv2d, nn.MaxPool1d, nn.MaxPool2d,
                                   nn.AvgPool1d, nn.AvgPool2d], ids=lambda c: c.__name__)
def test_window_shape_rules_match_torch_on_a_grid(layer):
    """Every kernel/stride/padding/dilation/ceil combination on tiny inputs either
    raises a NordError at compile time or runs with finite values and exactly
    the planned shape (tiny inputs are resized up to what the layer needs)."""
    rank = 1 if layer.__name__.endswith("1d") else 2
    is_conv = layer in (nn.Conv1d, nn.Conv2d)
    compiled = 0
    for kernel, stride, padding, dilation, ceil in WINDOW_GRID:
        params: Dict[str, Any] = {"kernel_size": kernel, "padding": padding}
        if stride is not None:
            params["stride"] = stride
        if is_conv:
            params.update(out_channels=2, dilation=dilation)
            if ceil:
                continue
        elif layer in (nn.AvgPool1d, nn.AvgPool2d):
            if dilation > 1:
                continue
            params.update(ceil_mode=ceil, count_include_pad=bool(dilation % 2))
        else:
            params.update(dilation=dilation, ceil_mode=ceil)
        for size in (1, 2, 5):
            spatial = (size,) if rank == 1 else (size, size + 1)
            d = NeuralDescriptor()
            d.add_layer(layer, dict(params), "w")
            try:
                net = NeuralNet(d, None, spatial, 2)
            except NordError:
                assert padding > kernel // 2 and not is_conv, (params, spatial)
                continue
            compiled += 1
            with torch.no_grad():
                out = net(torch.randn(2, 2, *spatial))
            plan = net.plan.nodes[0]
            assert tuple(out.shape) == (2, plan.out_shape.channels, *plan.out_shape.spatial), \
                (params, spatial)
            assert torch.isfinite(out).all(), (params, spatial)
    assert compiled > 100


@pytest.mark.parametrize("layer, params, match", [
    (nn.Conv2d, {"out_channels": 2, "kernel_size": 0}, "kernel_size"),
    (nn.Conv2d, {"out_channels": 2, "kernel_size": 3, "stride": 0}, "stride"),
    (nn.Conv2d, {"out_channels": 2, "kernel_size": 3, "dilation": 0}, "dilation"),
    (nn.Conv2d, {"out_channels": 2, "kernel_size": 3, "padding": -1}, "padding"),
    (nn.Conv2d, {"out_channels": 2, "kernel_size": (3, 3, 3)}, "kernel_size"),
    (nn.Conv2d, {"out_channels": 0, "kernel_size": 1}, "empty output"),
    (nn.Conv2d, {"kernel_size": 1}, "out_channels"),
    (nn.MaxPool2d, {"kernel_size": 2, "stride": 0}, "stride"),
    (nn.MaxPool2d, {"kernel_size": 2, "dilation": 3, "padding": 2}, "at most half"),
    (nn.AvgPool2d, {"kernel_size": 3, "padding": 2}, "at most half"),
    (nn.AdaptiveAvgPool2d, {"output_size": (1, 2, 3)}, "output_size"),
    (nn.AdaptiveMaxPool2d, {"output_size": 0}, "empty output"),
    (nn.Linear, {"out_features": 4}, "flat"),
    (nn.BatchNorm1d, {}, "1-D"),
    (nn.Flatten, {"start_dim": 0}, "batch dimension"),
    (nn.ReLU, {"bogus": 1}, "bogus"),
], ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_unusable_params_raise_a_compilation_error_naming_the_layer(layer, params, match):
    d = NeuralDescriptor()
    d.add_layer("input", {}, "in")
    d.add_layer_sequential(layer, params, "bad_layer")
    with pytest.raises(CompilationError, match=match) as info:
        NeuralNet(d, NUM_CLASSES, IMAGE, INPUT_CHANNELS)
    assert "'bad_layer'" in str(info.value)


def test_list_layers_matches_names_whatever_their_case():
    from nord.neural_nets import list_layers
    found = list_layers("*conv*")
    assert {"Conv1d", "Conv2d", "nor_conv_3x3", "conv3x3-bn-relu"} <= set(found)
    assert found == sorted(found) and list_layers("*CONV2D") == ["Conv2d"]
    assert list_layers("no-such-layer*") == []
