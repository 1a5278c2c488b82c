"""``model.pt2``: the torch.export program written beside the TorchScript export."""

import hashlib
import json
import warnings

import pytest
import torch
import torch.nn as nn

from nord.errors import ExportWarning, NordError
from nord.neural_nets import LocalEvaluator, NeuralDescriptor, NeuralNet
from nord.neural_nets.export import export_network, load_network
from nord.neural_nets.layers import default_registry, register_layer, same_shape

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit:DeprecationWarning")


CELL_MATRIX = [[0, 1, 1, 0, 1],
               [0, 0, 0, 0, 1],
               [0, 0, 0, 1, 0],
               [0, 0, 0, 0, 1],
               [0, 0, 0, 0, 0]]
CELL_OPS = ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "output"]


def nasbench101_cell(names=("x0", "c3", "c1", "pool", "out")) -> NeuralDescriptor:
    """A NAS-Bench-101 cell: two branches from the input, a pool and a join at the output."""
    d = NeuralDescriptor()
    for name, op in zip(names, CELL_OPS):
        d.add_layer(op, {"out_channels": 8} if "conv" in op else {}, name)
    for i, row in enumerate(CELL_MATRIX):
        for j, edge in enumerate(row):
            if edge:
                d.connect_layers(names[i], names[j])
    return d


def with_batch_statistics(net: nn.Module, example_shape) -> nn.Module:
    """``net`` in eval mode, its BatchNorm statistics moved off their defaults."""
    torch.manual_seed(0)
    net.train()
    with torch.no_grad():
        net(torch.randn(16, *example_shape[1:]))
    return net.eval()


def program_output(files, x: torch.Tensor) -> torch.Tensor:
    program = torch.export.load(str(files.program))
    with torch.no_grad():
        return program.module()(x)


def manifest(files) -> dict:
    return json.loads(files.manifest.read_text())


def test_a_nasbench101_cell_program_reproduces_the_network_at_any_batch_size(tmp_path):
    torch.manual_seed(0)
    net = with_batch_statistics(NeuralNet(nasbench101_cell(), 10, (12, 12), 3), (2, 3, 12, 12))
    files = export_network(net, nasbench101_cell(), tmp_path)
    assert files.program == tmp_path / "model.pt2" and files.program_note is None
    for batch in (2, 5):  # 2 is the example's batch size, the TorchScript trace's too
        x = torch.randn(batch, 3, 12, 12)
        with torch.no_grad():
            expected = net(x)
        got = program_output(files, x)
        assert got.shape == (batch, 10)
        assert torch.allclose(got, expected, atol=1e-5)
    record = manifest(files)
    assert record["example_input_shape"] == [2, 3, 12, 12]
    assert record["torch_export"] == {"written": True, "file": "model.pt2",
                                      "example_input_shape": [2, 3, 12, 12],
                                      "dynamic_batch": True}
    assert "torch.export.load('model.pt2').module()(x)" in record["files"]["model.pt2"]
    assert sorted(record["files"]) == sorted(p.name for p in tmp_path.iterdir())
    sums = dict(reversed(line.split("  ")) for line in files.checksums.read_text().splitlines())
    assert sums["model.pt2"] == hashlib.sha256(files.program.read_bytes()).hexdigest()
    assert sums["manifest.json"] == hashlib.sha256(files.manifest.read_bytes()).hexdigest()
    loaded, _ = load_network(tmp_path)  # the added files leave loading as it was
    x = torch.randn(3, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_a_cell_named_as_the_nasbench101_benchmark_names_it_exports(tmp_path):
    from nord.neural_nets.benchmarks.nasbench101_cells import matrix_to_descriptor

    d = matrix_to_descriptor(CELL_MATRIX, CELL_OPS)
    assert d.first_layer == "in"
    torch.manual_seed(0)
    net = NeuralNet(d, 10, (12, 12), 3).eval()
    files = export_network(net, d, tmp_path)
    x = torch.randn(2, 3, 12, 12)
    with torch.no_grad():
        assert torch.allclose(program_output(files, x), net(x), atol=1e-5)
        assert torch.allclose(torch.jit.load(str(files.torchscript))(x), net(x), atol=1e-5)
    assert "Lin" in [name.split(".")[-1] for name, _ in net.named_modules()]  # 'in' renamed


def test_a_chapter_6_remnet_program_reproduces_the_network(tmp_path):
    from nord.design.spaces.remnet import remnet_architecture

    descriptor = remnet_architecture(channels=8)
    torch.manual_seed(0)
    net = LocalEvaluator().build_network(descriptor, "fashion-mnist")  # as `nord export remnet`
    net = with_batch_statistics(net, (2, 1, 28, 28))
    files = export_network(net, descriptor, tmp_path)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        expected = net(x)
    assert torch.allclose(program_output(files, x), expected, atol=1e-5)
    assert manifest(files)["torch_export"]["dynamic_batch"] is True


# ---------------------------------------------------------------- what torch.export cannot do
class SignGate(nn.Module):
    """Its input if the batch sums to a positive number, else its negation
    (data-dependent control flow: TorchScript traces one branch, torch.export refuses)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x
        return -x


class PairsOnly(nn.Module):
    """Doubles its input when the batch holds exactly two samples (a batch-size branch)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if x.shape[0] == 2 else x


def one_layer_net(layer_class: type):
    registry = default_registry().copy()
    register_layer(layer_class, output_shape=same_shape, registry=registry)
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 4, "kernel_size": 3}, "conv")
    d.add_layer_sequential(layer_class, {}, "gate")
    torch.manual_seed(0)
    return NeuralNet(d, 3, (8, 8), 1, registry=registry).eval(), d


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_a_network_torch_export_refuses_still_gets_the_other_files_and_a_note(tmp_path):
    net, d = one_layer_net(SignGate)
    with pytest.warns(ExportWarning, match="torch.export could not export this network") as got:
        files = export_network(net, d, tmp_path)
    reason = manifest(files)["torch_export"]["reason"]
    [warning] = [w for w in got if w.category is ExportWarning]
    assert reason.startswith("GuardOnDataDependentSymNode") and reason in str(warning.message)
    assert issubclass(ExportWarning, NordError)
    assert files.program is None and files.program_note == reason
    assert not (tmp_path / "model.pt2").exists()
    assert manifest(files)["torch_export"]["written"] is False
    assert "model.pt2" not in manifest(files)["files"]
    assert "model.pt2" not in files.checksums.read_text()
    for path in (files.descriptor, files.weights, files.torchscript, files.source,
                 files.plain_weights):
        assert path.stat().st_size > 0
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(files.torchscript))(x), net(x), atol=1e-6)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_a_stale_program_of_an_earlier_export_is_removed(tmp_path):
    good, d_good = one_layer_net(PairsOnly)
    assert export_network(good, d_good, tmp_path).program is not None
    bad, d_bad = one_layer_net(SignGate)
    with pytest.warns(ExportWarning):
        export_network(bad, d_bad, tmp_path)
    assert not (tmp_path / "model.pt2").exists()


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_a_batch_size_torch_export_cannot_leave_dynamic_is_fixed_and_recorded(tmp_path):
    net, d = one_layer_net(PairsOnly)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExportWarning)
        files = export_network(net, d, tmp_path)
    record = manifest(files)["torch_export"]
    assert record["written"] is True and record["dynamic_batch"] is False
    assert record["batch_fixed_because"]
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(program_output(files, x), net(x), atol=1e-6)
