"""Files NORD reads run no code they name, and damaged ones are one-line typed errors
(issue 12: items 1-3 and the file/shape/learning-rate cases of item 9)."""

import importlib.util
import json
import os
import sys

import pytest
import torch
import torch.nn as nn

from nord.errors import (IntegrityError, NetworkTooLargeError, NordError,
                         OutOfSearchSpaceError, SerializationError, SettingsError,
                         UntrustedCodeError, UntrustedLayerError)
from nord.neural_nets import NeuralDescriptor, NeuralNet
from nord.neural_nets import export
from nord.neural_nets.export import (ExportError, TamperedExportError, UntrustedHeadError,
                                     export_network, load_network, state_dict_sha256)
from nord.neural_nets.serialization import MAX_DEPTH, descriptor_from_file, descriptor_from_json

EXPLOIT = "c\n        import os; os.system('touch PWNED')\n        #"
HOSTILE_NAMES = [
    EXPLOIT,
    "q'uo\"te\"\"\"s'''",
    "back\\slash\\",
    "caf\u00e9 \u2615 \u540d\u524d",
    "cr\rlf\r\n# import os",
    "line\u2028separator\u2029",
    "tab\tnull\x00bell\x07",
    "#",
]


def _descriptor(first="conv", second="act") -> NeuralDescriptor:
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 3, "kernel_size": 3}, first)
    d.add_layer_sequential(nn.ReLU, {}, second)
    d.add_layer("conv3x3-bn-relu", {"out_channels": 2}, "cell")  # a second input: a merge
    d.connect_layers(first, "cell")
    d.connect_layers("cell", second)
    d.last_layer = second
    return d


def _net(d) -> NeuralNet:
    torch.manual_seed(0)
    return NeuralNet(d, 4, (8, 8), 1).eval()


def _import(path):
    spec = importlib.util.spec_from_file_location(f"untrusted_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _one_line(error) -> str:
    message = str(error)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- 1: generated source
@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_layer_names_stay_literals_in_the_generated_source(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)  # where the exploit's `touch PWNED` would land
    d = _descriptor(name, name + "2")
    path = tmp_path / "hostile.json"
    path.write_text(d.to_json())
    d = descriptor_from_file(path)  # as nord export reads it
    net = _net(d)
    files = export_network(net, d, tmp_path / "out")  # its self-check imports model.py
    source = files.source.read_text(encoding="utf-8")
    assert f"  # {name!r}: 3x6x6\n" in source and f"  # {name + '2'!r}: 2x6x6\n" in source
    x = torch.randn(3, 1, 8, 8)
    generated = _import(files.source).ExportedNet.load(str(files.plain_weights))
    loaded, descriptor = load_network(files.folder)
    with torch.no_grad():
        assert torch.allclose(generated(x), net(x), atol=1e-6)
        assert torch.equal(loaded(x), net(x))
    assert descriptor == d
    assert not (tmp_path / "PWNED").exists() and not os.path.exists("PWNED")


class Tagged(nn.Module):
    """A layer whose repr prints a string parameter without quotes."""

    def __init__(self, tag: str = "plain"):
        super().__init__()
        self.tag = tag

    def forward(self, x):
        return x

    def extra_repr(self) -> str:
        return f"tag={self.tag}"


def test_a_layer_repr_that_is_not_literals_is_refused_not_evaluated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    d = NeuralDescriptor()
    d.add_layer(Tagged, {"tag": "__import__('os').system('touch PWNED')"}, "t")
    with pytest.raises(ExportError, match=r"does not rebuild the layer \(_UnsafeExpression: "
                                          r"the called name is neither nn.X") as info:
        export_network(_net(d), d, tmp_path / "out")
    _one_line(info.value)
    assert not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "out" / "model.py").exists()


# ---------------------------------------------------------------- 2: what files name
def _export(tmp_path, name="model"):
    d = _descriptor()
    net = _net(d)
    files = export_network(net, d, tmp_path / name)
    return net, files


def _rewrite_weights(files, change):
    """Edit weights.pt as an attacker would: keep its record consistent, drop SHA256SUMS."""
    saved = torch.load(files.weights, weights_only=True)
    change(saved)
    saved["integrity"]["state_dict"] = state_dict_sha256(saved["state_dict"])
    torch.save(saved, files.weights)
    files.checksums.unlink(missing_ok=True)


@pytest.mark.parametrize("reference", ["os:kill", "os:system", "builtins:exec",
                                       "subprocess:Popen", "nord.neural_nets.export:_sha256"])
def test_a_head_builder_named_in_weights_pt_is_refused_and_never_called(tmp_path, monkeypatch,
                                                                        reference):
    calls = []
    monkeypatch.setattr(os, "kill", lambda *args: calls.append(args))
    monkeypatch.setattr(os, "system", lambda *args: calls.append(args))
    _, files = _export(tmp_path)

    # Before the fix this imported os and called os.kill(in_features, num_classes).
    _rewrite_weights(files, lambda saved: saved["build"].update(head=reference))
    with pytest.raises(UntrustedHeadError, match="was not imported or called") as info:
        load_network(files.folder)
    assert isinstance(info.value, UntrustedCodeError) and isinstance(info.value, ExportError)
    _one_line(info.value)
    assert calls == []


def test_a_known_or_passed_head_is_used(tmp_path):
    from nord.neural_nets.neural_builder import default_head
    _, files = _export(tmp_path)
    _rewrite_weights(files, lambda saved: saved["build"].update(
        head="nord.neural_nets.neural_builder:default_head"))
    net, _ = load_network(files.folder)
    assert isinstance(net.head, nn.Linear)
    _rewrite_weights(files, lambda saved: saved["build"].update(head="mine:head"))
    net, _ = load_network(files.folder, head=default_head)
    assert isinstance(net.head, nn.Linear)


@pytest.mark.parametrize("field, value, match", [
    ("extra", 1, "must hold exactly"),
    ("input_shape", [8, "8"], "'input_shape' must be a positive integer"),
    ("num_classes", True, "'num_classes' must be a positive integer or null"),
    ("policy", ["x"], "'policy' must be a string"),
    ("head", ["os", "kill"], "'head' must be 'module:name' or null"),
])
def test_a_build_record_of_other_than_plain_settings_is_refused(tmp_path, field, value, match):
    _, files = _export(tmp_path)
    _rewrite_weights(files, lambda saved: saved["build"].update({field: value}))
    with pytest.raises(ExportError, match=match) as info:
        load_network(files.folder)
    _one_line(info.value)


def _write_module(folder, name, marker):
    (folder / f"{name}.py").write_text(
        "import pathlib, torch.nn as nn\n"
        f"pathlib.Path({str(marker)!r}).write_text('imported')\n"
        "class Layer(nn.Identity):\n    pass\n")


@pytest.mark.parametrize("where", ["class", "param"])
def test_a_descriptor_naming_a_foreign_module_is_refused_without_importing_it(
        tmp_path, monkeypatch, where):
    name = f"nord_test_foreign_{where}"
    marker = tmp_path / "imported.txt"
    _write_module(tmp_path, name, marker)
    monkeypatch.syspath_prepend(str(tmp_path))
    payload = json.loads(_descriptor().to_json())
    if where == "class":
        payload["layers"][1]["class"] = f"{name}.Layer"
    else:
        payload["layers"][1]["params"] = {"act": {"__class__": f"{name}.Layer"}}
    with pytest.raises(UntrustedLayerError, match=f"layer 'act'.*register_layer\\(Layer\\)") \
            as info:
        descriptor_from_json(json.dumps(payload))
    _one_line(info.value)
    assert not marker.exists() and name not in sys.modules


def test_a_descriptor_naming_nord_main_does_not_run_the_command_line(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["nord", "--help"])
    payload = json.loads(_descriptor().to_json())
    payload["layers"][0]["class"] = "nord.__main__.Layer"
    with pytest.raises(UntrustedLayerError):
        descriptor_from_json(json.dumps(payload))
    assert "nord.__main__" not in sys.modules


class Widen(nn.Conv2d):
    """A layer class of the user's own."""


def test_a_registered_class_of_your_own_is_read_back_with_true_shapes():
    from nord.neural_nets.layers import default_registry, register_layer
    from nord.neural_nets.tensor_shape import Shape
    registry = default_registry().copy()
    register_layer(Widen, input_param="in_channels", registry=registry)  # no shape rule
    d = NeuralDescriptor()
    d.add_layer(Widen, {"out_channels": 5, "kernel_size": 3}, "w")
    with pytest.raises(UntrustedLayerError, match=r"register_layer\(Widen\)"):
        descriptor_from_json(d.to_json())
    back = descriptor_from_json(d.to_json(), registry)
    assert back == d and back.layers["w"].layer is Widen
    net = NeuralNet(back, 2, (8, 8), 1, registry=registry)
    assert net.output_shape == Shape(5, (6, 6))  # found with meta tensors


def test_classes_of_nords_layer_modules_resolve():
    from nord.neural_nets.serialization import resolve_layer_reference
    from nord.neural_nets.layers import ConvBnRelu
    assert resolve_layer_reference("nord.neural_nets.layers.ConvBnRelu") is ConvBnRelu
    from nord.neural_nets.remnet_layers import RemNetConv
    assert resolve_layer_reference("nord.neural_nets.remnet_layers.RemNetConv") is RemNetConv


# ---------------------------------------------------------------- 3: integrity
def test_an_export_records_the_hashes_of_its_weights_and_descriptor(tmp_path):
    import hashlib
    net, files = _export(tmp_path)
    saved = torch.load(files.weights, weights_only=True)
    assert saved["format"] == export.EXPORT_FORMAT == 2
    assert saved["integrity"] == {
        "algorithm": "sha256", "state_dict": state_dict_sha256(net.state_dict()),
        "descriptor": hashlib.sha256(files.descriptor.read_bytes()).hexdigest()}
    lines = files.checksums.read_text().splitlines()
    assert [line.split("  ")[1] for line in lines] == [
        "descriptor.json", "weights.pt", "model.torchscript.pt", "model.py", "weights_plain.pt",
        "model.pt2", "manifest.json"]
    for line in lines:
        digest, name = line.split("  ")
        assert digest == hashlib.sha256((files.folder / name).read_bytes()).hexdigest()


def test_a_changed_descriptor_is_refused(tmp_path):
    _, files = _export(tmp_path)
    text = files.descriptor.read_text().replace('"out_channels": 3', '"out_channels": 4')
    files.descriptor.write_text(text)
    with pytest.raises(TamperedExportError, match="descriptor.json does not match its sha256"):
        load_network(files.folder)
    files.checksums.unlink()  # without SHA256SUMS, the record in weights.pt still catches it
    with pytest.raises(TamperedExportError, match="does not match the sha256 recorded in "
                                                  "weights.pt") as info:
        load_network(files.folder)
    assert isinstance(info.value, IntegrityError)
    _one_line(info.value)


def test_changed_weights_are_refused(tmp_path):
    _, files = _export(tmp_path)
    saved = torch.load(files.weights, weights_only=True)
    saved["state_dict"]["head.bias"] += 1.0
    torch.save(saved, files.weights)
    with pytest.raises(TamperedExportError, match="weights.pt does not match its sha256"):
        load_network(files.folder)
    files.checksums.unlink()
    with pytest.raises(TamperedExportError, match="do not match their recorded sha256"):
        load_network(files.folder)


def test_nan_or_infinite_weights_are_refused_on_export_and_on_load(tmp_path):
    net, files = _export(tmp_path)
    with torch.no_grad():
        net.head.weight[0, 0] = float("nan")
        net.head.bias[1] = float("inf")
    with pytest.raises(TamperedExportError, match=r"cannot export: the weights 'head.weight' "
                                                  r"hold 1 NaN or infinite value"):
        export_network(net, _descriptor(), tmp_path / "nan")
    assert not (tmp_path / "nan").exists()

    def poison(saved):
        saved["state_dict"]["head.bias"][0] = float("-inf")
    _rewrite_weights(files, poison)
    with pytest.raises(TamperedExportError, match="'head.bias' hold 1 NaN or infinite") as info:
        load_network(files.folder)
    _one_line(info.value)


# ---------------------------------------------------------------- 9: damaged files
def test_an_export_with_a_missing_weight_names_it(tmp_path):
    _, files = _export(tmp_path)
    _rewrite_weights(files, lambda saved: saved["state_dict"].pop("layers.conv.bias"))
    with pytest.raises(ExportError, match=r"lacks the weights \['layers.conv.bias'\]") as info:
        load_network(files.folder)
    _one_line(info.value)


def test_an_export_with_a_wrongly_shaped_weight_names_it(tmp_path):
    _, files = _export(tmp_path)
    _rewrite_weights(files, lambda saved: saved["state_dict"].update(
        {"head.bias": torch.zeros(7)}))
    with pytest.raises(ExportError, match=r"the weights 'head.bias' have shape \(7,\), the "
                                          r"network needs \(4,\)") as info:
        load_network(files.folder)
    _one_line(info.value)


def test_an_export_with_foreign_weights_names_them(tmp_path):
    _, files = _export(tmp_path)
    _rewrite_weights(files, lambda saved: saved["state_dict"].update({"extra": torch.zeros(1)}))
    with pytest.raises(ExportError, match=r"holds weights the network does not have: "
                                          r"\['extra'\]"):
        load_network(files.folder)


@pytest.mark.parametrize("data, match", [
    ("{}".encode("utf-16"), r"not UTF-8 text \(byte 0xff at offset 0"),
    (b'{"format": "nord.NeuralDescriptor", "x": "caf\xe9"}', r"byte 0xe9 at offset 45"),
    (b"[" * 100_000 + b"]" * 100_000, f"deeper than {MAX_DEPTH} levels"),
    (("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).encode(), f"deeper than {MAX_DEPTH}"),
])
def test_a_descriptor_file_that_is_not_utf8_or_too_deep_is_a_one_line_error(tmp_path, data,
                                                                             match):
    path = tmp_path / "d.json"
    path.write_bytes(data)
    with pytest.raises(SerializationError, match=match) as info:
        descriptor_from_file(path)
    assert _one_line(info.value).startswith(f"{path}: ")
    with pytest.raises(SerializationError, match=match):
        NeuralDescriptor.from_json(data)


def test_deep_params_within_the_limit_still_read(tmp_path):
    d = NeuralDescriptor()
    value = 1
    for _ in range(MAX_DEPTH - 6):
        value = [value]
    d.add_layer("input", {"deep": value}, "in")
    assert descriptor_from_json(d.to_json()) == d


def test_deeply_nested_params_that_the_decoder_would_recurse_on_are_refused():
    text = _descriptor().to_json().replace('"params": {', '"params": {"x": '
                                           + '{"__tuple__": [' * 900 + "1" + "]}" * 900 + ", ", 1)
    with pytest.raises(SerializationError, match="deeper than"):
        descriptor_from_json(text)


def test_train_final_reads_a_non_utf8_file_as_a_clear_error(tmp_path):
    from nord.execution.final_training import architecture_of
    path = tmp_path / "genome.json"
    path.write_bytes(b"\xff\xfe\x00not json")
    with pytest.raises(NordError, match=r"does not parse as JSON \(its text is not UTF-8"):
        architecture_of(path)


def test_an_input_shape_too_large_to_allocate_is_refused_before_allocating():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 2, "kernel_size": 3}, "conv")
    with pytest.raises(NetworkTooLargeError) as info:
        NeuralNet(d, 10, (100_000, 100_000), 1)
    assert _one_line(info.value) == (
        "one input sample (1x100000x100000: input_shape (100000, 100000), 1 channel(s)) would "
        "hold 10,000,000,000 values (37 GiB as float32), more than the 2,147,483,648 NORD "
        "allocates; use a smaller input_shape (resize the data)")
    with pytest.raises(NetworkTooLargeError, match=r"the output of layer 'conv' \(2x40000x40000\)"):
        NeuralNet(d, 10, (40_002, 40_002), 1)
    with pytest.raises(NetworkTooLargeError, match=r"the weights of the head \(1,799,760,008 "
                                                   r"inputs, 10 outputs\) would hold "
                                                   r"17,997,600,090 values"):
        NeuralNet(d, 10, (30_000, 30_000), 1)


@pytest.mark.parametrize("params, match", [
    ({"lr": -0.1}, r"finite number >= 0, got lr=-0.1 for Adam"),
    ({"lr": float("nan")}, "got lr=nan"),
    ({"lr": float("inf")}, "got lr=inf"),
    ({"lr": "fast"}, "got lr='fast'"),
    ({"lr": 0.1, "betas": (1.5, 0.9)}, "Adam does not accept the parameters .*beta"),
])
def test_an_unusable_learning_rate_is_refused_when_the_evaluator_is_made(params, match):
    from nord.neural_nets import LocalEvaluator
    with pytest.raises(SettingsError, match=match) as info:
        LocalEvaluator("adam", params)
    _one_line(info.value)
    with pytest.raises(SettingsError, match=match):
        LocalEvaluator(torch.optim.Adam, params)


@pytest.mark.parametrize("change, match", [
    ({"input": float("inf")}, "OverflowError"),
    ({"input": "-2"}, "node ids are integers, got '-2'"),
    ({"connections": [[-2, 99, "false"]]}, "'enabled' flags are true or false, got 'false'"),
])
def test_a_genome_file_with_bad_values_is_a_typed_error(change, match):
    from nord.design.spaces.genome import Genome
    value = {**Genome.minimal().to_value(), **change}
    with pytest.raises(OutOfSearchSpaceError, match=match):
        Genome.from_value(value)
