"""The Fashion-MNIST architectures study (§7.3.4): its cells, their networks, a tiny
run that loads as a graph dataset, and its resume."""

import json

import numpy as np
import pytest

from nord.cli import main
from nord.configurations.all import Configs
from nord.design.predictors.datasets import NASBENCH101_VOCABULARY, ArchitectureDataset
from nord.errors import SettingsError
from nord.execution.store import RunStore
from nord.neural_nets import NeuralNet
from nord.studies import STUDIES
from nord.studies.base import run_study
from nord.studies.fmnist_architectures import (THESIS_SETTINGS, CellTrainingObjective,
                                               FashionMNISTArchitecturesStudy,
                                               FashionMNISTCellSpace, cell_descriptor)

from tests.fashion_mnist_data import needs_fashion_mnist
from tests.studies.study_helpers import kill_after

OPS = {"conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"}


def chain(*ops):
    n = len(ops) + 2
    return [[int(j == i + 1) for j in range(n)] for i in range(n)], ["input", *ops, "output"]


def test_cells_are_seeded_distinct_nasbench101_cells_of_at_most_8_nodes():
    space = FashionMNISTCellSpace()
    cells = space.cells(60, seed=0)
    assert cells == FashionMNISTCellSpace().cells(60, seed=0)
    assert cells != space.cells(60, seed=1)
    assert cells[2] == {"matrix": chain("conv3x3-bn-relu")[0], "ops": chain("conv3x3-bn-relu")[1]}
    assert cells[0]["ops"] == ["input", "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3",
                               "conv1x1-bn-relu", "conv1x1-bn-relu", "conv1x1-bn-relu", "output"]
    keys = {space.graph_of(c["matrix"], c["ops"]).key() for c in cells}
    assert len(keys) == 60
    sizes = [len(c["ops"]) for c in cells]
    assert max(sizes) == 8 and min(sizes) >= 3
    assert all(set(c["ops"][1:-1]) <= OPS for c in cells)
    assert space.graph_vocabulary == NASBENCH101_VOCABULARY
    assert max(len(c["ops"]) for c in FashionMNISTCellSpace(max_nodes=5).cells(20, 0)) == 5
    with pytest.raises(SettingsError, match="at least 3"):
        FashionMNISTCellSpace(max_nodes=2)
    with pytest.raises(SettingsError, match="gave only 3 distinct architectures"):
        FashionMNISTCellSpace(max_nodes=3).cells(4, 0)


@pytest.mark.parametrize("ops, pool, parameters", [
    # conv 1*8*9 + BN 16; §6.3.3 head on 8*28*28 = 6272 features: 1568, 784, 10
    (("conv3x3-bn-relu",), "2x2", 88 + 6272 * 1568 + 1568 + 1568 * 784 + 784 + 7850),
    # 2x2 pooling: 196 features -> 49 -> 24 -> 10
    (("maxpool3x3",), "2x2", 196 * 49 + 49 + 49 * 24 + 24 + 24 * 10 + 10),
    # NAS-Bench-101's 3x3 stride-1 pooling keeps 28x28: 784 -> 196 -> 98 -> 10
    (("maxpool3x3",), "3x3", 784 * 196 + 196 + 196 * 98 + 98 + 98 * 10 + 10),
    # conv1x1 has half the channels: 1*4 + BN 8, 4*14*14 = 784 features after the pool
    (("conv1x1-bn-relu", "maxpool3x3"), "2x2", 12 + 784 * 196 + 196 + 196 * 98 + 98 + 990),
])
def test_cell_networks_have_the_thesis_s_filters_pooling_and_head(ops, pool, parameters):
    net = NeuralNet(cell_descriptor(*chain(*ops), channels=8, pool=pool), 10, (28, 28), 1)
    assert sum(p.numel() for p in net.parameters()) == parameters


def test_every_sampled_cell_compiles_even_when_pooled_down_to_one_pixel():
    for cell in FashionMNISTCellSpace().cells(80, seed=2):
        NeuralNet(cell_descriptor(cell["matrix"], cell["ops"], 2, "2x2"), 10, (28, 28), 1)
    with pytest.raises(SettingsError, match="pool is '2x2'"):
        cell_descriptor(*chain("maxpool3x3"), pool="4x4")


def tiny(**options):
    settings = dict(architectures=4, channels=2, percentage=0.003, validation_fraction=0.005,
                    batch_size=32)
    settings.update(options)
    return FashionMNISTArchitecturesStudy(**settings)


def test_settings_are_checked_and_the_thesis_preset_is_the_thesis_s():
    assert STUDIES["fmnist-architectures"] is FashionMNISTArchitecturesStudy
    assert THESIS_SETTINGS["architectures"] == 980 and THESIS_SETTINGS["epochs"] == 108
    assert FashionMNISTArchitecturesStudy(**THESIS_SETTINGS).settings()["channels"] == 32
    assert FashionMNISTArchitecturesStudy().settings() == {
        "architectures": 12, "epochs": 1, "percentage": 0.02, "channels": 8, "pool": "2x2",
        "max_nodes": 8, "optimizer": "adamw", "batch_size": 64, "split": "validation",
        "validation_fraction": 0.02, "seed": 0}
    assert [t["index"] for t in tiny().trials()] == [0, 1, 2, 3]
    for bad, message in [({"architectures": 1}, "at least 2 architectures"),
                         ({"pool": "max"}, "pool is"), ({"split": "train"}, "split is"),
                         ({"epochs": 0}, "epochs must be at least 1"),
                         ({"validation_fraction": 0}, "needs a validation_fraction above 0"),
                         ({"max_nodes": 2}, "at least 3")]:
        with pytest.raises(SettingsError, match=message):
            tiny(**bad)


@needs_fashion_mnist
@pytest.mark.slow
def test_a_tiny_study_makes_a_graph_dataset_and_resumes_without_retraining(
        tmp_path, monkeypatch, capsys):
    folder = tmp_path / "fm"
    trained = []
    evaluate = CellTrainingObjective.evaluate
    monkeypatch.setattr(CellTrainingObjective, "evaluate",
                        lambda self, trial: trained.append(trial.params["index"])
                        or evaluate(self, trial))
    kill_after(tiny(), folder, 2)
    assert trained == [0, 1]
    outcome = run_study(tiny(), folder, resume=True)
    assert trained == [0, 1, 2, 3]  # the killed run's two trials were not trained again
    rows = outcome.results["architectures"]
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert [r["nodes"] for r in rows] == [8, 8, 3, 7]
    assert all(0 <= r["accuracy"] <= 1 and r["parameters"] > 0 for r in rows)
    assert outcome.results["summary"]["max_nodes"] == 8
    table = (folder / "architectures.md").read_text()
    assert "| 2 | 3 | 2 | c3 |" in table and "graph-f-mnist3" in table
    assert json.loads((folder / "results.json").read_text())["settings"]["channels"] == 2

    dataset = ArchitectureDataset.from_run_store(folder)
    assert len(dataset) == 4 and dataset.max_nodes == 8
    assert dataset.vocabulary == NASBENCH101_VOCABULARY
    ok = [r for r in rows if not r["failed"]]
    assert dataset.targets.tolist() == [r["accuracy"] for r in ok]
    ternary = Configs(isolated=True)["graph-f-mnist3"].data_load(root=folder)
    assert ternary.keys == dataset.keys
    assert np.asarray(ternary.graphs[2].features(ternary.vocabulary)).tolist() == [
        [1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 1]]
    assert len(Configs(isolated=True)["graph-f-mnist1"].data_load(0.5, root=folder)) == 2

    del trained[:]
    again = run_study(tiny(), folder, resume=True)  # finished: analysed, nothing trained
    assert trained == [] and again.results["architectures"] == rows
    assert main(["study", "fmnist-architectures", "--resume", "--out", str(folder),
                 "--quiet"]) == 0
    assert trained == [] and "Load it: ArchitectureDataset.from_run_store" in \
        capsys.readouterr().out
    with RunStore(folder / "run.sqlite", create=False) as store:
        assert len(store.finished()) == 4
    with pytest.raises(SettingsError, match="other settings"):
        run_study(tiny(channels=4), folder, resume=True)
