"""JSON round trips of NeuralDescriptor and their error paths."""

import builtins
import json
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from nord.errors import (DescriptorError, NordError, SerializationError, UntrustedCodeError,
                         UntrustedLayerError)
from nord.neural_nets import NeuralDescriptor
from nord.neural_nets.layers import default_registry, register_layer
from nord.neural_nets.serialization import (
    decode_param,
    descriptor_from_json,
    descriptor_to_json,
    encode_param,
    layer_reference,
    resolve_layer_reference,
)


class ScaledConv(nn.Conv2d):
    """A module class of our own, importable from this test module."""


class NotAModule:
    """A class that is not an nn.Module."""


#: files may name a class of our own only once it is registered (here privately)
REGISTRY = default_registry().copy()
register_layer(ScaledConv, registry=REGISTRY)


def _thesis_descriptor():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"in_channels": 3, "out_channels": 5, "kernel_size": 3}, "conv")
    d.add_layer_sequential(nn.MaxPool2d, {"kernel_size": 2}, "pool")
    return d


def _round_trip(d):
    return descriptor_from_json(descriptor_to_json(d), REGISTRY)


# ---------------------------------------------------------------- references
@pytest.mark.parametrize("cls, text", [
    (nn.Conv2d, "torch.nn.Conv2d"),
    (nn.MaxPool2d, "torch.nn.MaxPool2d"),
    (nn.ReLU, "torch.nn.ReLU"),
    (nn.Identity, "torch.nn.Identity"),
])
def test_layer_reference_prefers_public_torch_nn_path(cls, text):
    assert layer_reference(cls) == text
    assert resolve_layer_reference(text) is cls


def test_layer_reference_of_own_class_is_its_module_path():
    text = layer_reference(ScaledConv)
    assert text == f"{__name__}.ScaledConv"
    assert resolve_layer_reference(text, REGISTRY) is ScaledConv
    with pytest.raises(UntrustedLayerError, match="register_layer"):
        resolve_layer_reference(text)  # not in the default registry


def test_layer_reference_keeps_op_strings():
    assert layer_reference("conv3x3-bn-relu") == "conv3x3-bn-relu"


def test_long_torch_path_resolves_to_same_class():
    assert resolve_layer_reference("torch.nn.modules.conv.Conv2d") is nn.Conv2d


@pytest.mark.parametrize("bad", [nn.Conv2d(1, 1, 1), NotAModule, 3, torch.relu])
def test_layer_reference_rejects_non_module_types(bad):
    with pytest.raises(SerializationError, match="op string or a torch.nn.Module subclass"):
        layer_reference(bad)


def test_layer_reference_rejects_class_defined_in_function():
    class Local(nn.Module):
        pass

    with pytest.raises(SerializationError, match="define it at module level"):
        layer_reference(Local)


# ---------------------------------------------------------------- round trips
def test_torch_class_round_trip_and_exact_format():
    d = _thesis_descriptor()
    text = d.to_json()
    assert json.loads(text) == {
        "format": "nord.NeuralDescriptor",
        "version": 1,
        "first_layer": "conv",
        "last_layer": "pool",
        "next_auto_index": 2,
        "layers": [
            {"name": "conv", "class": "torch.nn.Conv2d",
             "params": {"in_channels": 3, "out_channels": 5, "kernel_size": 3}},
            {"name": "pool", "class": "torch.nn.MaxPool2d", "params": {"kernel_size": 2}},
        ],
        "connections": [["conv", "pool"]],
    }
    back = NeuralDescriptor.from_json(text)
    assert back == d
    assert back.layers["conv"].layer is nn.Conv2d
    assert list(back.layers) == ["conv", "pool"]
    assert (back.first_layer, back.last_layer, back._added) == ("conv", "pool", 2)


def test_op_string_round_trip():
    d = NeuralDescriptor()
    d.add_layer("input", {}, "in")
    d.add_layer_sequential("conv3x3-bn-relu", {"channels": 16})
    d.add_layer_sequential("maxpool3x3")
    d.add_layer_sequential(ScaledConv, {"in_channels": 16, "out_channels": 16, "kernel_size": 1})
    entries = json.loads(d.to_json())["layers"]
    assert entries[1] == {"name": "1_Layer", "op": "conv3x3-bn-relu", "params": {"channels": 16}}
    assert entries[3]["class"] == f"{__name__}.ScaledConv"
    back = _round_trip(d)
    assert back == d
    assert back.layers["2_Layer"].layer == "maxpool3x3"
    assert back.layers["3_Layer"].layer is ScaledConv


def test_tuple_params_keep_their_types():
    params = {"kernel_size": (3, 3), "padding": [1, 1], "nested": [(1, (2, 3)), {"t": ()}],
              "none": None, "flag": True, "rate": 0.25, "text": "same"}
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, params, "conv")
    encoded = json.loads(d.to_json())["layers"][0]["params"]
    assert encoded["kernel_size"] == {"__tuple__": [3, 3]}
    assert encoded["padding"] == [1, 1]
    got = _round_trip(d).layers["conv"].params
    assert got == params
    assert type(got["kernel_size"]) is tuple and type(got["padding"]) is list
    assert type(got["nested"][0][1]) is tuple and got["nested"][1]["t"] == ()


def test_class_params_round_trip():
    d = NeuralDescriptor()
    d.add_layer("conv3x3", {"activation": nn.ReLU, "norms": (nn.BatchNorm2d, ScaledConv)}, "c")
    encoded = json.loads(d.to_json())["layers"][0]["params"]
    assert encoded["activation"] == {"__class__": "torch.nn.ReLU"}
    got = _round_trip(d).layers["c"].params
    assert got["activation"] is nn.ReLU
    assert got["norms"] == (nn.BatchNorm2d, ScaledConv)


def test_dicts_that_look_like_markers_are_escaped():
    params = {"a": {"__tuple__": [1, 2]}, "b": {"__class__": "torch.nn.ReLU"},
              "c": {"__dict__": {}}, "d": {"__tuple__": 1, "other": 2}}
    d = NeuralDescriptor()
    d.add_layer("op", params, "x")
    got = _round_trip(d).layers["x"].params
    assert got == params
    assert type(got["a"]) is dict and type(got["a"]["__tuple__"]) is list


def test_unknown_connections_survive_as_data():
    d = _thesis_descriptor()
    d.connections["pool"].append("ghost")
    d.connections["phantom"] = ["conv"]
    back = _round_trip(d)
    assert back == d
    assert set(back.edges()) == {("conv", "pool"), ("pool", "ghost"), ("phantom", "conv")}


def test_unknown_connections_are_reported_after_round_trip():
    pytest.importorskip("nord.neural_nets.layers")
    from nord.errors import DanglingConnectionError

    d = _thesis_descriptor()
    d.connections["pool"].append("ghost")
    problems = _round_trip(d).problems()
    assert any(isinstance(p, DanglingConnectionError) and "ghost" in str(p) for p in problems)


def test_roles_and_auto_counter_round_trip():
    d = NeuralDescriptor()
    for _ in range(4):
        d.add_layer_sequential("conv3x3-bn-relu")
    d.remove_layer("1_Layer")
    d.last_layer = "2_Layer"
    back = _round_trip(d)
    assert back == d
    assert (back.first_layer, back.last_layer, back._added) == ("0_Layer", "2_Layer", 4)
    assert back.add_layer("op") == d.add_layer("op") == "4_Layer"


def test_empty_descriptor_round_trip():
    back = _round_trip(NeuralDescriptor())
    assert back == NeuralDescriptor()
    assert back.first_layer is None and back._added == 0


def test_dumps_kwargs_are_passed_through():
    text = descriptor_to_json(_thesis_descriptor(), indent=2, sort_keys=True)
    assert text.startswith('{\n  "connections"')


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                       st.floats(allow_nan=False), st.sampled_from([nn.ReLU, nn.Conv2d]))
_param = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(["a", "__tuple__", "__class__", "__dict__"]),
                        inner, max_size=2)),
    max_leaves=8)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=4), _param, max_size=4))
def test_any_supported_params_round_trip_exactly(params):
    d = NeuralDescriptor()
    d.add_layer("op", params, "x")
    got = _round_trip(d).layers["x"].params
    assert got == params
    assert repr(got) == repr(params)  # same container types all the way down


def test_encode_decode_param_are_inverse():
    value = [(1, 2), {"k": (nn.ReLU,)}]
    assert decode_param(json.loads(json.dumps(encode_param(value)))) == value


# ---------------------------------------------------------------- errors
def test_error_type_hierarchy():
    assert issubclass(SerializationError, DescriptorError)
    assert issubclass(SerializationError, NordError)
    assert issubclass(SerializationError, ValueError)


def test_unknown_torch_class_suggests_close_match():
    with pytest.raises(SerializationError) as info:
        resolve_layer_reference("torch.nn.Conv2dd")
    message = str(info.value)
    assert "'torch.nn' has no attribute 'Conv2dd'" in message
    assert "did you mean 'torch.nn.Conv2d'" in message
    assert "import the module that defines it" in message


def test_bare_class_name_suggests_torch_nn():
    with pytest.raises(UntrustedLayerError, match=r"neither a torch.nn class, a NORD layer nor "
                                                  r"a registered layer \(did you mean "
                                                  r"'torch.nn.Conv2d'"):
        resolve_layer_reference("Conv2d")


def test_an_unknown_package_is_refused_without_importing_it():
    with pytest.raises(UntrustedLayerError, match="register_layer\\(Block\\) before reading"):
        resolve_layer_reference("no_such_package_nord_test.Block")


@pytest.mark.parametrize("text, what", [
    ("torch.nn.functional.relu", "names function that is not a torch.nn.Module"),
    ("torch.nn", "names module that is not a torch.nn.Module"),
    ("torch.nn.init.kaiming_uniform_", "names function that is not a torch.nn.Module"),
    ("nord.neural_nets.layers.same_shape", "names function that is not a torch.nn.Module"),
    ("torch.nn.Module.__subclasses__", "has no attribute '__subclasses__'"),
])
def test_non_module_references_are_rejected(text, what):
    with pytest.raises(SerializationError, match=what):
        resolve_layer_reference(text)


@pytest.mark.parametrize("text", ["collections.OrderedDict", "os.system",
                                  "builtins.eval", "subprocess.Popen",
                                  f"{__name__}.NotAModule", "nord.__main__.X",
                                  "nord.cli.main", "torch.optim.SGD",
                                  "torch.nn.modules.module.torch.fx.GraphModule",
                                  "nord.neural_nets.layers.torch.jit.ScriptModule"])
def test_classes_outside_torch_nn_nord_and_the_registry_are_untrusted(text):
    with pytest.raises(UntrustedLayerError, match="files may not choose code to import") as info:
        resolve_layer_reference(text)
    assert isinstance(info.value, SerializationError) and isinstance(info.value,
                                                                     UntrustedCodeError)


@pytest.mark.parametrize("text", ["", "torch..nn", ".Conv2d", 42, None])
def test_malformed_references_are_rejected(text):
    with pytest.raises(SerializationError, match="dotted name"):
        resolve_layer_reference(text)


def test_no_eval_is_used(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec must not be used")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    d = _thesis_descriptor()
    d.add_layer("op", {"act": nn.ReLU, "k": (1, 2)}, "extra")
    assert _round_trip(d) == d
    for text in ["os.system", "__import__('os').system('echo pwned')", "builtins.eval"]:
        with pytest.raises(SerializationError):
            resolve_layer_reference(text)


def test_os_system_in_a_file_is_rejected_with_layer_name():
    payload = json.loads(_thesis_descriptor().to_json())
    payload["layers"][1]["class"] = "os.system"
    with pytest.raises(SerializationError, match="layer 'pool': class path 'os.system'"):
        descriptor_from_json(json.dumps(payload))
    payload["layers"][1] = {"name": "pool", "op": "x", "params": {"act": {"__class__": "os.system"}}}
    with pytest.raises(SerializationError, match="layer 'pool' param 'act'"):
        descriptor_from_json(json.dumps(payload))


@pytest.mark.parametrize("value, kind", [
    (torch.zeros(2), "Tensor"),
    (torch.relu, "builtin_function_or_method"),
    (lambda x: x, "function"),
    ({1, 2}, "set"),
])
def test_unserialisable_param_names_layer_and_key(value, kind):
    d = _thesis_descriptor()
    d.layers["pool"].params["weird"] = value
    with pytest.raises(SerializationError) as info:
        d.to_json()
    message = str(info.value)
    assert "layer 'pool' param 'weird'" in message
    assert f"({kind})" in message
    assert "cannot be written to JSON" in message


def test_unserialisable_nested_param_names_its_position():
    d = _thesis_descriptor()
    d.layers["conv"].params["nested"] = [1, {"deep": (2, torch.zeros(1))}]
    with pytest.raises(SerializationError, match=r"layer 'conv' param 'nested'\[1\]\['deep'\]\[1\]"):
        d.to_json()


def test_non_module_class_param_is_rejected():
    d = _thesis_descriptor()
    d.layers["conv"].params["dtype"] = int
    with pytest.raises(SerializationError, match="layer 'conv' param 'dtype' is the class"):
        d.to_json()


def test_non_string_param_key_is_rejected():
    d = _thesis_descriptor()
    d.layers["conv"].params["sub"] = {1: "a"}
    with pytest.raises(SerializationError, match="non-string key 1"):
        d.to_json()


def test_instance_layer_type_names_layer():
    d = NeuralDescriptor()
    d.add_layer(nn.ReLU(), {}, "act")
    with pytest.raises(SerializationError, match="layer 'act': a layer type must be"):
        d.to_json()


def _payload(**changes):
    payload = json.loads(_thesis_descriptor().to_json())
    payload.update(changes)
    return json.dumps(payload)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be an object, got list"),
    (json.dumps({"format": "other"}), "'format' is 'other'"),
    (_payload(version=2), "has version 2"),
    (_payload(version=True), "has version True"),
    (json.dumps({"format": "nord.NeuralDescriptor", "version": 1}),
     "lacks the key(s) ['first_layer', 'last_layer', 'layers', 'connections']"),
    (_payload(layers={"conv": {}}), "'layers' must be a list"),
    (_payload(layers=[{"name": "a", "params": {}}]), "exactly one of 'op'"),
    (_payload(layers=[{"name": "a", "op": "x", "class": "torch.nn.ReLU"}]), "exactly one of 'op'"),
    (_payload(layers=[{"op": "x"}]), "layers[0] must be an object with a string 'name'"),
    (_payload(layers=[{"name": "a", "op": "x"}, {"name": "a", "op": "y"}]), "appears twice"),
    (_payload(layers=[{"name": "a", "op": "x", "params": [1]}]), "'params' must be an object"),
    (_payload(connections=[["conv"]]), "connections[0] must be a [source, destination]"),
    (_payload(connections={"conv": "pool"}), "'connections' must be a list"),
    (_payload(first_layer=3), "'first_layer' must be a layer name or null"),
    (_payload(next_auto_index=-1), "'next_auto_index' must be a non-negative integer"),
])
def test_malformed_json_raises_clear_error(text, message):
    with pytest.raises(SerializationError, match=re.escape(message)):
        descriptor_from_json(text)


def test_from_json_needs_text():
    with pytest.raises(SerializationError, match="must be JSON text, got dict"):
        descriptor_from_json({"format": "nord.NeuralDescriptor"})
