"""Exports (descriptor, weights, TorchScript, Python source) reproduce the compiled network."""

import pytest
import torch
import torch.nn as nn

from nord.neural_nets import NeuralDescriptor, NeuralNet
from nord.neural_nets.export import (ExportError, export_network, load_network,
                                     network_source)
from nord.neural_nets.layers import WeightScaling


def branching() -> NeuralDescriptor:
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 8, "kernel_size": 3}, "conv")
    d.add_layer_sequential(nn.ReLU6, {}, "act")
    d.add_layer_sequential(nn.BatchNorm2d, {}, "bn")
    d.add_layer(nn.MaxPool2d, {"kernel_size": 2}, "pool")
    d.connect_layers("bn", "pool")
    d.add_layer("conv3x3-bn-relu", {"out_channels": 4}, "cell")
    d.connect_layers("conv", "cell")
    d.add_layer(WeightScaling, {"scale": 0.5}, "scale")
    d.connect_layers("pool", "scale")
    d.connect_layers("cell", "scale")            # multi-input: interpolate + 1x1 projection
    d.add_layer_sequential(nn.Dropout, {"p": 0.1}, "drop")
    return d


def head(in_features: int, num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_features, in_features // 4), nn.ReLU(),
                         nn.Linear(in_features // 4, num_classes))


def trained_net(descriptor, **kwargs) -> NeuralNet:
    torch.manual_seed(0)
    net = NeuralNet(descriptor, 10, (28, 28), 1, **kwargs)
    net.train()
    with torch.no_grad():  # move the BatchNorm statistics off their defaults
        net(torch.randn(16, 1, 28, 28))
    return net.eval()


@pytest.mark.filterwarnings("ignore:.*torch.jit:DeprecationWarning")
def test_every_export_reproduces_the_network(tmp_path):
    d = branching()
    net = trained_net(d, head=head)
    files = export_network(net, d, tmp_path)
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        expected = net(x)
        assert torch.allclose(torch.jit.load(str(files.torchscript))(x), expected, atol=1e-5)
        loaded, descriptor = load_network(tmp_path, head=head)  # a head of our own
        assert descriptor == d
        assert torch.equal(loaded(x), expected)
    source = files.source.read_text()
    assert "class ExportedNet(nn.Module):" in source
    assert "F.interpolate(" in source and "nn.Conv2d(1, 8, kernel_size=(3, 3)" in source
    assert "from nord.neural_nets.layers import WeightScaling" in source
    namespace = {}
    exec(compile(source, str(files.source), "exec"), namespace)
    generated = namespace["ExportedNet"].load(str(files.plain_weights))
    with torch.no_grad():
        assert torch.allclose(generated(x), expected, atol=1e-5)
    # Both weight files open with torch.load's safe default (no pickled code).
    saved = torch.load(files.weights)
    assert saved["torch"] == str(torch.__version__) and type(saved["torch"]) is str
    assert torch.load(files.plain_weights).keys() == generated.state_dict().keys()


def test_source_without_head(tmp_path):
    d = branching()
    net = NeuralNet(d, None, (28, 28), 1).eval()
    source, renames = network_source(net)
    assert set(renames) == set(net.state_dict())
    assert "self.head" not in source


def test_a_local_head_cannot_be_named(tmp_path):
    def local_head(i, n):
        return nn.Linear(i, n)
    net = trained_net(branching(), head=local_head)
    with pytest.raises(ExportError, match="module-level"):
        export_network(net, branching(), tmp_path)


def test_missing_and_foreign_exports_are_clear_errors(tmp_path):
    with pytest.raises(ExportError, match="descriptor.json is missing"):
        load_network(tmp_path)
    d = branching()
    export_network(trained_net(d), d, tmp_path)
    saved = torch.load(tmp_path / "weights.pt", weights_only=False)
    saved["format"] = 99
    torch.save(saved, tmp_path / "weights.pt")
    (tmp_path / "SHA256SUMS").unlink()  # else the changed file is reported as tampered
    with pytest.raises(ExportError, match="format 99.*export the network again"):
        load_network(tmp_path)
    (tmp_path / "weights.pt").write_text("not a torch file")
    with pytest.raises(ExportError, match="could not be read"):
        load_network(tmp_path)


def _every_layer_case():
    from tests.neural_nets.test_every_layer import CASES, REGISTERED
    for name, key in REGISTERED:
        for case in CASES.get(name, []):
            yield pytest.param(key, case, id=f"{name}-{case.tag or 'plain'}")


@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
@pytest.mark.parametrize("layer, case", list(_every_layer_case()))
def test_every_registered_layer_has_source_rebuilt_without_eval(layer, case):
    """The source is rebuilt from parsed literals (no eval) and reproduces the layer:
    convolutions with padding='same' and average pools with ceil_mode or
    count_include_pad=False included."""
    from tests.neural_nets.test_every_layer import (IMAGE, INPUT_CHANNELS, SIGNAL,
                                                    single_layer_descriptor)
    d = single_layer_descriptor(layer, case)
    torch.manual_seed(0)
    net = NeuralNet(d, 3, SIGNAL if case.rank == 1 else IMAGE, INPUT_CHANNELS).eval()
    source, renames = network_source(net)
    namespace = {}
    exec(compile(source, "model.py", "exec"), namespace)
    generated = namespace["ExportedNet"]()
    generated.load_state_dict({renames[k]: v for k, v in net.state_dict().items()})
    x = torch.randn(2, INPUT_CHANNELS, *(SIGNAL if case.rank == 1 else IMAGE))
    with torch.no_grad():
        assert torch.allclose(generated.eval()(x), net(x), atol=1e-6)
