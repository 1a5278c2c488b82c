"""The descriptor API of thesis §3.2.1 (listings 3.1, 3.3, 3.6, 3.8)."""

import pickle

import pytest
import torch.nn as nn

from nord.errors import DescriptorError, DuplicateLayerError, UnknownLayerError
from nord.neural_nets import LayerSpec, NeuralDescriptor


def chain(*ops):
    d = NeuralDescriptor()
    for op in ops:
        d.add_layer_sequential(op, None)
    return d


def test_auto_names_carry_a_numeric_prefix_counting_added_layers():
    d = NeuralDescriptor()
    assert d.add_layer("input", {}) == "0_Layer"
    assert d.add_layer_sequential("conv3x3-bn-relu", {}) == "1_Layer"
    assert d.add_layer("maxpool3x3", {}, "named") == "named"
    assert d.add_layer("output", {}) == "3_Layer"
    # listing 3.6 parses the prefix
    assert [int(n.split("_")[0]) for n in d.layers if n != "named"] == [0, 1, 3]


def test_auto_name_skips_a_name_the_user_already_took():
    d = NeuralDescriptor()
    d.add_layer("input", {}, "1_Layer")
    assert d.add_layer("output", {}) == "2_Layer"


def test_first_and_last_layer_follow_insertion_and_can_be_reassigned():
    d = NeuralDescriptor()
    assert d.first_layer is None and d.last_layer is None
    d.add_layer("input", None, "in")
    d.add_layer_sequential("output", None, "9999")
    d.add_layer("conv3x3-bn-relu", None, "1.5_Layer")
    assert (d.first_layer, d.last_layer) == ("in", "1.5_Layer")
    d.last_layer = "9999"  # as listing 3.6 does after inserting a node
    assert d.active_layers() == ["in", "9999"]


def test_layers_and_connections_keep_thesis_shapes():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 4, "kernel_size": 3}, "conv")
    d.add_layer_sequential(nn.ReLU, None, "relu")
    layer, params = d.layers["conv"]
    assert layer is nn.Conv2d and params == {"out_channels": 4, "kernel_size": 3}
    assert d.layers["relu"] == LayerSpec(nn.ReLU, {})
    assert d.connections == {"conv": ["relu"], "relu": []}
    assert d.incoming_connections == {"conv": [], "relu": ["conv"]}
    assert list(d.connections.keys())[:-1] == ["conv"]  # listing 3.6 idiom


def test_params_are_copied_on_add():
    params = {"kernel_size": 3}
    d = NeuralDescriptor()
    d.add_layer(nn.MaxPool2d, params, "pool")
    params["kernel_size"] = 5
    assert d.layers["pool"].params == {"kernel_size": 3}


def test_connect_is_idempotent_and_disconnect_removes():
    d = chain("input", "output")
    d.connect_layers("0_Layer", "1_Layer")
    assert d.connections["0_Layer"] == ["1_Layer"]
    d.disconnect_layers("0_Layer", "1_Layer")
    assert d.connections["0_Layer"] == []
    with pytest.raises(DescriptorError, match="no connection '0_Layer' -> '1_Layer'"):
        d.disconnect_layers("0_Layer", "1_Layer")


def test_unknown_names_are_rejected_with_suggestions():
    d = chain("input", "output")
    with pytest.raises(UnknownLayerError, match=r"'0_Layr'.*did you mean '0_Layer'"):
        d.connect_layers("0_Layr", "1_Layer")
    with pytest.raises(DuplicateLayerError, match="'1_Layer' already exists"):
        d.add_layer("output", None, "1_Layer")
    with pytest.raises(TypeError, match="layer names are strings"):
        d.add_layer("output", None, 7)
    with pytest.raises(TypeError, match="must be a dict"):
        d.add_layer("output", [1], "x")


def test_remove_layer_drops_its_connections_and_moves_roles():
    d = chain("input", "conv3x3-bn-relu", "output")
    d.connect_layers("0_Layer", "2_Layer")
    d.remove_layer("2_Layer")
    assert d.connections == {"0_Layer": ["1_Layer"], "1_Layer": []}
    assert d.last_layer == "1_Layer"
    d.remove_layer("0_Layer")
    assert d.first_layer == "1_Layer"


def test_copy_is_deep_and_equal():
    d = chain("input", "conv3x3-bn-relu", "output")
    d.layers["1_Layer"].params["out_channels"] = 8
    c = d.copy()
    assert c == d and c is not d
    c.layers["1_Layer"].params["out_channels"] = 16
    c.connect_layers("0_Layer", "2_Layer")
    assert d.layers["1_Layer"].params["out_channels"] == 8
    assert d.connections["0_Layer"] == ["1_Layer"]
    assert c != d
    assert c.add_layer("maxpool3x3") == "3_Layer"  # counter is copied too


def test_equality_ignores_connection_order_but_not_roles():
    a = NeuralDescriptor()
    for name in "abc":
        a.add_layer("identity", None, name)
    b = a.copy()
    a.connect_layers("a", "b"); a.connect_layers("a", "c")
    b.connect_layers("a", "c"); b.connect_layers("a", "b")
    assert a == b
    b.last_layer = "b"
    assert a != b
    assert a != "not a descriptor"


def test_pickle_round_trip():
    d = chain("input", nn.ReLU, "output")
    assert pickle.loads(pickle.dumps(d)) == d


def test_active_layers_excludes_dead_ends_and_unreachable():
    d = chain("input", "conv3x3-bn-relu", "output")
    d.add_layer("maxpool3x3", None, "dead_end")
    d.add_layer("maxpool3x3", None, "orphan")
    d.connect_layers("1_Layer", "dead_end")
    d.connect_layers("orphan", "1_Layer")
    d.last_layer = "2_Layer"
    assert d.active_layers() == ["0_Layer", "1_Layer", "2_Layer"]
    assert d.is_valid()


def test_listing_3_3_descriptor_builds():
    descriptor = NeuralDescriptor()
    descriptor.add_layer("IN", None, "IN")
    descriptor.add_layer_sequential("nor_conv_3x3", None, "1")
    descriptor.add_layer_sequential("nor_conv_1x1", None, "2")
    descriptor.add_layer_sequential("avg_pool_3x3", None, "3")
    descriptor.add_layer_sequential("OUT", None, "OUT")
    descriptor.add_layer("skip_connect", None, "4")
    descriptor.connect_layers("1", "4")
    descriptor.connect_layers("4", "OUT")
    assert descriptor.last_layer == "4"  # add_layer moved it, as in the thesis
    descriptor.last_layer = "OUT"
    assert descriptor.validate() is descriptor
    assert descriptor.connections["1"] == ["2", "4"]
