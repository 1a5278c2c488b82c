"""A trained ranker saved and loaded back: same predictions; tampered files refused."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("torch_geometric")

from nord.design.predictors.datasets import ArchitectureDataset  # noqa: E402
from nord.design.predictors.egraph import GCNArchitecture, SiameseGCN  # noqa: E402
from nord.design.predictors.export import export_ranker, load_ranker  # noqa: E402
from nord.design.predictors.training import predict_scores, train_ranker  # noqa: E402
from nord.errors import TamperedExportError, UntrustedLayerError  # noqa: E402
from nord.neural_nets import NeuralDescriptor  # noqa: E402
from nord.neural_nets.export import ExportError  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def trained():
    train, test = ArchitectureDataset.from_nasbench101(40, seed=1).split(25, 15, seed=0)
    arch = GCNArchitecture.chain(["SAGE_POOL.N", "SAGE_LSTM.H"], pooling="sort2", filters=8)
    model = SiameseGCN(arch, len(train.vocabulary), seed=2)
    train_ranker(model, train, epochs=1, batch_size=32, seed=0)
    return model, train, test


def test_a_saved_ranker_predicts_what_it_did(trained, tmp_path):
    model, train, test = trained
    folder = export_ranker(model, train.vocabulary, tmp_path / "ranker")
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "descriptor.json",
                                                        "ranker.pt"]
    # the descriptor is an ordinary one: it validates and draws
    descriptor = NeuralDescriptor.from_file(str(folder / "descriptor.json"))
    assert descriptor.problems() == [] and "SAGE_POOL.N" in descriptor.to_dot()
    loaded, vocabulary = load_ranker(folder)
    assert vocabulary == tuple(train.vocabulary) and not loaded.training
    assert loaded.architecture == model.architecture
    assert np.array_equal(predict_scores(loaded, test), predict_scores(model, test))


def test_tampered_or_foreign_files_are_refused(trained, tmp_path):
    model, train, _ = trained
    folder = export_ranker(model, train.vocabulary, tmp_path / "r")
    text = (folder / "descriptor.json").read_text()
    (folder / "descriptor.json").write_text(text.replace("SAGE_LSTM.H", "SAGE_LSTM.D"))
    with pytest.raises(TamperedExportError, match="descriptor.json does not match"):
        load_ranker(folder)
    # rewritten with matching sums, a descriptor naming code is still refused
    folder = export_ranker(model, train.vocabulary, tmp_path / "s")
    payload = json.loads((folder / "descriptor.json").read_text())
    layer = payload["layers"][1]
    layer.pop("op")
    layer["class"] = "os.system"
    (folder / "descriptor.json").write_text(json.dumps(payload))
    (folder / "SHA256SUMS").unlink()
    saved = torch.load(folder / "ranker.pt", weights_only=True)
    import hashlib
    saved["integrity"]["descriptor"] = hashlib.sha256(
        (folder / "descriptor.json").read_bytes()).hexdigest()
    torch.save(saved, folder / "ranker.pt")
    with pytest.raises(UntrustedLayerError, match="os.system"):
        load_ranker(folder)


def test_bad_exports_and_bad_weights(trained, tmp_path):
    model, train, _ = trained
    with pytest.raises(ExportError, match="vocabulary has 3 labels"):
        export_ranker(model, train.vocabulary[:3], tmp_path / "x")
    with pytest.raises(ExportError, match="SiameseGCN"):
        export_ranker(torch.nn.Linear(2, 2), train.vocabulary, tmp_path / "x")
    with pytest.raises(ExportError, match="is missing"):
        load_ranker(tmp_path / "nothing")
    folder = export_ranker(model, train.vocabulary, tmp_path / "w")
    saved = torch.load(folder / "ranker.pt", weights_only=True)
    key = next(iter(saved["state_dict"]))
    saved["state_dict"][key] = saved["state_dict"][key] + 1
    torch.save(saved, folder / "ranker.pt")
    (folder / "SHA256SUMS").unlink()
    with pytest.raises(TamperedExportError, match="do not match their recorded sha256"):
        load_ranker(folder)
    folder = export_ranker(model, train.vocabulary, tmp_path / "v")
    saved = torch.load(folder / "ranker.pt", weights_only=True)
    saved["vocabulary"] = ["input", "input"]  # the weights' sha256 still holds
    torch.save(saved, folder / "ranker.pt")
    (folder / "SHA256SUMS").unlink()
    with pytest.raises(ExportError, match="distinct labels"):
        load_ranker(folder)
