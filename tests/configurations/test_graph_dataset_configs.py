"""The graph datasets of thesis table 3.1 in the registry, and the rank-correlation metrics.

(Named apart from tests/design/predictors/test_graph_datasets.py: pytest's default
import mode needs distinct test-file names.)
"""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from nord.configurations.all import Configs
from nord.configurations.builtin import kl_divergence_loss
from nord.configurations.metrics import make_metrics
from nord.design.predictors.datasets import NASBENCH101_VOCABULARY, ArchitectureDataset
from nord.errors import GraphDatasetError, InvalidArgumentError
from nord.studies.base import run_study
from nord.studies.montecarlo import MonteCarloStudy

DATA = Path(os.environ.get("NORD_DATA") or Path(__file__).resolve().parents[3] / "shared" / "data")
NB101 = DATA / "nasbench101" / "nb101_30k_subset.csv.gz"
needs_nb101 = pytest.mark.skipif(not NB101.exists(), reason=f"{NB101} not found")

GRAPHS = ["graph-nasbench3", "graph-nasbench1", "graph-f-mnist3", "graph-f-mnist1"]


def test_the_four_graph_datasets_have_table_3_1_s_facts():
    c = Configs(isolated=True)
    assert c.names()[3:] == GRAPHS
    for name in GRAPHS:
        config = c[name]
        assert (config.input_shape, config.channels, config.data_organization) == \
            ((5,), 1, "graph")
        ternary = name.endswith("3")
        assert config.num_outputs == (3 if ternary else 1)
        assert config.task == ("classification" if ternary else "regression")
        criterion = config.criterion()
        if ternary:
            assert isinstance(criterion, nn.KLDivLoss) and criterion.reduction == "batchmean"
        else:
            assert isinstance(criterion, nn.MarginRankingLoss)
        expected = ("kendall_tau", "spearman_rho") + (("accuracy",) if "f-mnist" in name else ())
        assert config.metrics == expected
    assert c["graph-nasbench3"].data_load is c["graph-nasbench1"].data_load
    assert c["graph-f-mnist3"].data_load is c["graph-f-mnist1"].data_load


def test_the_kl_criterion_is_the_batch_mean_kl_divergence():
    log_predicted = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25]]))
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    # sum of p*log(p/q) per row, averaged over the 2 rows: (log 2 + log 4) / 2
    assert float(kl_divergence_loss()(log_predicted, target)) == pytest.approx(
        (np.log(2) + np.log(4)) / 2)


@needs_nb101
def test_graph_nasbench3_loads_nasbench101_cells_as_one_hot_graphs():
    dataset = Configs(isolated=True)["graph-nasbench3"].data_load(table=NB101)
    assert isinstance(dataset, ArchitectureDataset)
    assert len(dataset) == 500 and dataset.max_nodes == 7
    assert dataset.vocabulary == NASBENCH101_VOCABULARY and len(dataset.vocabulary) == 5
    first = dataset.graphs[0]
    assert first.labels == ("input", "maxpool3x3", "conv1x1-bn-relu", "conv3x3-bn-relu",
                            "maxpool3x3", "conv3x3-bn-relu", "output")
    assert first.edges == ((0, 1), (0, 2), (0, 4), (1, 3), (2, 5), (3, 4), (4, 5), (5, 6))
    features = np.asarray(first.features(dataset.vocabulary))
    assert features.shape == (7, 5)
    assert features.tolist()[:2] == [[1, 0, 0, 0, 0], [0, 0, 0, 1, 0]]
    assert features.tolist()[-1] == [0, 0, 0, 0, 1]
    for graph in dataset.graphs[:50]:
        one_hot = np.asarray(graph.features(dataset.vocabulary))
        assert one_hot.shape[1] == 5 and np.all(one_hot.sum(axis=1) == 1)
    assert dataset.targets[0] == pytest.approx(0.9223758, abs=1e-6)
    assert np.all((dataset.targets > 0) & (dataset.targets < 1))


@needs_nb101
def test_a_percentage_keeps_the_first_share_and_a_tiny_one_is_refused():
    load = Configs(isolated=True)["graph-nasbench1"].data_load
    whole = load(table=NB101, size=40, seed=3)
    tenth = load(0.1, table=NB101, size=40, seed=3)
    assert len(tenth) == 4 and tenth.keys == whole.keys[:4]
    with pytest.raises(GraphDatasetError, match="leaves 1; a ranking needs at least 2"):
        load(0.03, table=NB101, size=40, seed=3)


def test_graph_f_mnist_without_the_study_run_says_how_to_make_it(tmp_path):
    missing = tmp_path / "nothing-here"
    for name in ("graph-f-mnist3", "graph-f-mnist1"):
        with pytest.raises(GraphDatasetError, match=r"no Fashion-MNIST architectures dataset "
                           r"found \(looked for run.sqlite in .*nothing-here\); make it first "
                           r"with `nord study fmnist-architectures --out .*nothing-here`"):
            Configs(isolated=True)[name].data_load(root=missing)


def test_a_study_whose_trials_are_not_architectures_is_no_graph_dataset(tmp_path):
    folder = tmp_path / "mc"
    run_study(MonteCarloStudy(dims=(2,), taus=(0.8,), generations=(2,), repeats=2,
                              points={2: 10}, engine="builtin"), folder)
    with pytest.raises(GraphDatasetError, match="holds a 'montecarlo' study, whose trials are "
                       "not architectures"):
        ArchitectureDataset.from_run_store(folder)
    with pytest.raises(GraphDatasetError, match="holds a 'montecarlo' study, not "
                       "'fmnist-architectures'"):
        Configs(isolated=True)["graph-f-mnist3"].data_load(root=folder)


def test_rank_correlation_metrics_accumulate_over_batches():
    metrics = make_metrics(["kendall_tau", "spearman_rho"])
    batches = [(torch.tensor([[0.1], [0.4]]), torch.tensor([1.0, 3.0])),
               (torch.tensor([[0.3], [0.2]]), torch.tensor([4.0, 2.0]))]
    for outputs, targets in batches:
        for metric in metrics.values():
            metric.update(outputs, targets)
    # predicted order 0.1 < 0.2 < 0.3 < 0.4 against 1 < 2 < 4 > 3: one discordant pair of 6
    assert metrics["kendall_tau"].result() == pytest.approx(4 / 6)
    assert metrics["spearman_rho"].result() == pytest.approx(0.8)
    assert np.isnan(make_metrics(["kendall_tau"])["kendall_tau"].result())


def test_a_rank_correlation_refuses_pair_class_outputs():
    metric = make_metrics(["spearman_rho"])["spearman_rho"]
    with pytest.raises(InvalidArgumentError, match=r"one predicted score per architecture "
                       r"with its true value; got outputs of shape \(2, 3\) for targets of "
                       r"shape \(2,\)"):
        metric.update(torch.zeros(2, 3), torch.zeros(2))
