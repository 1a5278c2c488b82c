"""Compiled descriptors against hand-written nn.Modules of the same structure."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nord.errors import CompilationError, ShapeError
from nord.neural_nets import NeuralDescriptor, NeuralNet


def copy_weights(compiled: nn.Module, reference: nn.Module, mapping: dict) -> None:
    """Load ``compiled``'s tensors into ``reference`` via {reference_key: compiled_key}."""
    source = compiled.state_dict()
    target = reference.state_dict()
    assert set(mapping) == set(target), "mapping must cover every reference tensor"
    reference.load_state_dict({k: source[v] for k, v in mapping.items()})
    assert len(source) == len(target), "compiled net has tensors the reference lacks"


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def assert_same_function(compiled, reference, shape, train=False):
    torch.manual_seed(0)
    x = torch.randn(*shape)
    compiled.train(train); reference.train(train)
    torch.testing.assert_close(compiled(x), reference(x), rtol=0, atol=1e-6)


# ------------------------------------------------------------------ sequential
def sequential_descriptor():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"in_channels": 99, "out_channels": 8, "kernel_size": 3, "padding": 1}, "c1")
    d.add_layer_sequential(nn.BatchNorm2d, {}, "bn1")
    d.add_layer_sequential(nn.ReLU, {}, "r1")
    d.add_layer_sequential(nn.MaxPool2d, {"kernel_size": 2}, "p1")
    d.add_layer_sequential(nn.Conv2d, {"out_channels": 16, "kernel_size": 3, "stride": 2}, "c2")
    d.add_layer_sequential(nn.ReLU, {}, "r2")
    return d


class HandSequential(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, stride=2), nn.ReLU())
        self.head = nn.Linear(16 * 6 * 6, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


SEQUENTIAL_MAP = {
    "features.0.weight": "layers.c1.weight", "features.0.bias": "layers.c1.bias",
    "features.1.weight": "layers.bn1.weight", "features.1.bias": "layers.bn1.bias",
    "features.1.running_mean": "layers.bn1.running_mean",
    "features.1.running_var": "layers.bn1.running_var",
    "features.1.num_batches_tracked": "layers.bn1.num_batches_tracked",
    "features.4.weight": "layers.c2.weight", "features.4.bias": "layers.c2.bias",
    "head.weight": "head.weight", "head.bias": "head.bias",
}


def test_sequential_cnn_matches_hand_written():
    net = NeuralNet(sequential_descriptor(), 10, (28, 28), 1)
    ref = HandSequential()
    assert n_params(net) == n_params(ref) == 80 + 16 + 1168 + 5770
    copy_weights(net, ref, SEQUENTIAL_MAP)
    assert_same_function(net, ref, (5, 1, 28, 28), train=False)
    assert_same_function(net, ref, (5, 1, 28, 28), train=True)


def test_sequential_cnn_gradients_match():
    net, ref = NeuralNet(sequential_descriptor(), 10, (28, 28), 1), HandSequential()
    copy_weights(net, ref, SEQUENTIAL_MAP)
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    F.cross_entropy(net(x), y).backward()
    F.cross_entropy(ref(x), y).backward()
    torch.testing.assert_close(net.layers["c1"].weight.grad, ref.features[0].weight.grad)


def test_inferred_input_sizes_override_the_given_ones():
    net = NeuralNet(sequential_descriptor(), 10, (28, 28), 3)
    assert net.layers["c1"].in_channels == 3  # the descriptor said 99
    assert net.layers["c2"].in_channels == 8
    assert net.plan.nodes[-1].out_shape.spatial == (6, 6)


# ------------------------------------------------------------------ branching
def branching_descriptor():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 8, "kernel_size": 3, "padding": 1}, "a")
    d.add_layer(nn.MaxPool2d, {"kernel_size": 2}, "b")
    d.add_layer(nn.Conv2d, {"out_channels": 4, "kernel_size": 3, "padding": 1}, "c")
    d.add_layer(nn.Conv2d, {"out_channels": 6, "kernel_size": 3}, "d")
    for src, dst in [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]:
        d.connect_layers(src, dst)
    return d


class HandMinimumViableSize(nn.Module):
    """d's inputs: b 8x8x8 and c 4x16x16 -> 4x8x8 (project b, shrink c), summed."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.MaxPool2d(2)
        self.c = nn.Conv2d(8, 4, 3, padding=1)
        self.project_b = nn.Conv2d(8, 4, 1, bias=False)
        self.d = nn.Conv2d(4, 6, 3)
        self.head = nn.Linear(6 * 6 * 6, 10)

    def forward(self, x):
        a = self.a(x)
        b, c = self.b(a), self.c(a)
        merged = self.project_b(b) + F.interpolate(c, size=(8, 8), mode="bilinear")
        return self.head(torch.flatten(self.d(merged), 1))


class HandMaximumViableSize(nn.Module):
    """d's inputs: b 8x8x8 grown to 8x16x16, concatenated with c: 12x16x16."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.MaxPool2d(2)
        self.c = nn.Conv2d(8, 4, 3, padding=1)
        self.d = nn.Conv2d(12, 6, 3)
        self.head = nn.Linear(6 * 14 * 14, 10)

    def forward(self, x):
        a = self.a(x)
        b, c = self.b(a), self.c(a)
        merged = torch.cat([F.interpolate(b, size=(16, 16), mode="bilinear"), c], dim=1)
        return self.head(torch.flatten(self.d(merged), 1))


def conv_map(*names):
    return {f"{n}.{p}": f"layers.{n}.{p}" for n in names for p in ("weight", "bias")}


def test_branching_minimum_viable_size_matches_hand_written():
    net = NeuralNet(branching_descriptor(), 10, (16, 16), 3)
    ref = HandMinimumViableSize()
    mapping = {**conv_map("a", "c", "d"), "project_b.weight": "merges.d.projections.0.weight",
               "head.weight": "head.weight", "head.bias": "head.bias"}
    assert n_params(net) == n_params(ref)
    copy_weights(net, ref, mapping)
    assert_same_function(net, ref, (3, 3, 16, 16))
    inputs = net.plan.nodes[-1].inputs
    assert [(i.source, i.resize_to, i.project_to) for i in inputs] == [
        ("b", None, 4), ("c", (8, 8), None)]


def test_branching_maximum_viable_size_matches_hand_written():
    net = NeuralNet(branching_descriptor(), 10, (16, 16), 3, policy="maximum_viable_size")
    ref = HandMaximumViableSize()
    mapping = {**conv_map("a", "c", "d"), "head.weight": "head.weight", "head.bias": "head.bias"}
    assert n_params(net) == n_params(ref)
    copy_weights(net, ref, mapping)
    assert_same_function(net, ref, (3, 3, 16, 16))


def test_minimum_viable_size_never_goes_below_the_kernel():
    d = NeuralDescriptor()
    d.add_layer(nn.Identity, {}, "in")
    d.add_layer(nn.MaxPool2d, {"kernel_size": 4}, "small")       # 2x2
    d.add_layer(nn.Conv2d, {"out_channels": 2, "kernel_size": 5}, "big_kernel")
    d.connect_layers("in", "small")
    d.connect_layers("small", "big_kernel")
    d.connect_layers("in", "big_kernel")
    net = NeuralNet(d, 3, (8, 8), 1)
    node = net.plan.nodes[-1]
    assert node.in_shape.spatial == (5, 5)  # not the 2x2 of 'small'
    assert node.out_shape.spatial == (1, 1)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 3)


def test_single_input_too_small_for_kernel_is_interpolated_up():
    d = NeuralDescriptor()
    d.add_layer(nn.MaxPool2d, {"kernel_size": 4}, "shrink")           # 4x4 -> 1x1
    d.add_layer_sequential(nn.Conv2d, {"out_channels": 2, "kernel_size": 3}, "conv")
    net = NeuralNet(d, 2, (4, 4), 1)
    assert net.plan.nodes[1].inputs[0].resize_to == (3, 3)
    assert net(torch.randn(2, 1, 4, 4)).shape == (2, 2)


def test_fixed_channels_policy_keeps_every_conv_at_c():
    net = NeuralNet(branching_descriptor(), 10, (16, 16), 3, policy="fixed_channels", channels=12)
    assert [net.layers[n].out_channels for n in "acd"] == [12, 12, 12]
    assert net.layers["d"].in_channels == 12
    assert len(net.merges) == 1 and not any(
        isinstance(m, nn.Conv2d) for m in net.merges["d"].modules())  # nothing to project
    with pytest.raises(CompilationError, match="channels=C"):
        NeuralNet(branching_descriptor(), 10, (16, 16), 3, policy="fixed_channels")


def test_execution_follows_topology_not_names():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 4, "kernel_size": 3}, "z_first")
    d.add_layer_sequential(nn.Conv2d, {"out_channels": 5, "kernel_size": 3}, "a_second")
    d.add_layer_sequential(nn.Conv2d, {"out_channels": 6, "kernel_size": 1}, "m_third")
    net = NeuralNet(d, None, (9, 9), 1)
    assert [n.name for n in net.plan.nodes] == ["z_first", "a_second", "m_third"]
    assert net(torch.randn(1, 1, 9, 9)).shape == (1, 6, 5, 5)


def test_pruned_layers_get_no_modules():
    d = branching_descriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 3, "kernel_size": 1}, "dead")
    d.connect_layers("a", "dead")
    d.last_layer = "d"
    net = NeuralNet(d, 10, (16, 16), 3)
    assert net.plan.pruned == ("dead",)
    assert "dead" not in net.layers


def test_one_dimensional_time_series():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv1d, {"out_channels": 8, "kernel_size": 5}, "c1")
    d.add_layer_sequential("conv3x3-bn-relu", {}, "cell")
    d.add_layer_sequential(nn.MaxPool1d, {"kernel_size": 2}, "pool")
    d.connect_layers("c1", "pool")
    net = NeuralNet(d, 7, 52, 3)
    assert net.plan.output_shape.spatial == (24,)
    assert net(torch.randn(4, 3, 52)).shape == (4, 7)


def test_custom_head_receives_flat_features():
    seen = {}

    def head(in_features, num_classes):
        seen["args"] = (in_features, num_classes)
        return nn.Sequential(nn.Linear(in_features, 32), nn.ReLU(), nn.Linear(32, num_classes))

    net = NeuralNet(sequential_descriptor(), 10, (28, 28), 1, head=head)
    assert seen["args"] == (16 * 6 * 6, 10)
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_wrong_rank_is_a_shape_error_naming_the_layer():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 4, "kernel_size": 3}, "conv")
    with pytest.raises(ShapeError, match=r"'conv'.*Conv1d"):
        NeuralNet(d, 2, 52, 1)


def test_missing_required_param_names_the_layer():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"kernel_size": 3}, "conv")
    with pytest.raises(CompilationError, match=r"'conv'.*out_channels"):
        NeuralNet(d, 2, (8, 8), 1)


def test_unregistered_module_compiles_through_meta_shapes():
    class Halve(nn.Module):
        def forward(self, x):
            return x[:, : x.shape[1] // 2]

    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 8, "kernel_size": 1}, "conv")
    d.add_layer_sequential(Halve, {}, "halve")
    net = NeuralNet(d, None, (5, 5), 1)
    assert net.plan.output_shape.channels == 4
    assert net(torch.randn(2, 1, 5, 5)).shape == (2, 4, 5, 5)


def test_summary_lists_layers_and_total():
    lines = NeuralNet(branching_descriptor(), 10, (16, 16), 3).summary().splitlines()
    assert lines[0].split() == ["layer", "type", "input", "output", "params"]
    # d's 254 parameters: its 4->6 3x3 conv (222) plus b's 8->4 projection (32)
    assert lines[4].split() == ["d", "Conv2d", "8x8x8,", "4x16x16", "6x6x6", "254"]
    assert lines[-1] == "total parameters: 2,940"


def test_a_missing_or_misspelled_parameter_names_the_layer_and_suggests():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_chanels": 4, "kernel_size": 3}, "conv")
    with pytest.raises(CompilationError, match=r"layer 'conv' \(Conv2d\) needs the parameter "
                       r"'out_channels'.*is 'out_chanels' a misspelling"):
        NeuralNet(d, 10, (28, 28), 1)


def test_a_head_needs_at_least_one_class():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 4, "kernel_size": 3})
    with pytest.raises(CompilationError, match="num_classes must be at least 1"):
        NeuralNet(d, 0, (8, 8), 1)
    assert NeuralNet(d, None, (8, 8), 1)(torch.zeros(1, 1, 8, 8)).shape == (1, 4, 6, 6)
