"""The dataset registry (thesis table 3.1, listing 3.5)."""

import pytest
import torch.nn as nn

from nord.configurations.all import Configs, DatasetConfig
from nord.errors import UnknownDatasetError


def loader(percentage=1.0):
    raise AssertionError("not called by these tests")


def test_default_registry_is_shared_and_holds_table_3_1_datasets():
    assert Configs() is Configs()
    assert Configs(isolated=True) is not Configs()
    c = Configs(isolated=True)
    assert c.names() == ["fashion-mnist", "cifar10", "activity_recognition", "graph-nasbench3",
                         "graph-nasbench1", "graph-f-mnist3", "graph-f-mnist1"]
    fm, cifar, har = c["fashion-mnist"], c["cifar10"], c["activity_recognition"]
    assert (fm.num_outputs, fm.input_shape, fm.channels) == (10, (28, 28), 1)
    assert (cifar.num_outputs, cifar.input_shape, cifar.channels) == (10, (32, 32), 3)
    assert (har.num_outputs, har.input_shape, har.channels) == (7, (52,), 3)
    for config in (fm, cifar, har):
        assert isinstance(config.criterion(), nn.CrossEntropyLoss)
        assert config.metrics == ("accuracy",) and config.data_organization == "matrix"


def test_isolated_registries_do_not_leak():
    a, b = Configs(isolated=True), Configs(isolated=True)
    a.add_classification_dataset("mine", 3, (4, 4), 1, loader)
    assert "mine" in a and "mine" not in b


def test_add_classification_dataset_as_listing_3_5():
    c = Configs(isolated=True)
    config = c.add_classification_dataset(name="MNIST", num_classes=10, input_shape=(28, 28),
                                          channels=1, data_load=loader)
    assert c["MNIST"] is config and config.task == "classification"
    assert config.input_shape == (28, 28) and config.dense_head is None


def test_add_dataset_holds_every_field():
    head = lambda features, outputs: nn.Linear(features, outputs)  # noqa: E731
    c = Configs(isolated=True)
    config = c.add_dataset("graphs", 3, 5, 1, nn.KLDivLoss, ["accuracy"], loader,
                           dense_head=head, dimension_keeping=32, data_organization="graph")
    assert config == DatasetConfig("graphs", 3, (5,), 1, nn.KLDivLoss, ("accuracy",), loader,
                                   "classification", head, 32, "graph")


@pytest.mark.parametrize("kwargs, message", [
    ({"data_organization": "table"}, "data_organization must be 'matrix' or 'graph'"),
    ({"metrics": ["f1"]}, "unknown metrics"),
])
def test_bad_configurations_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Configs(isolated=True).add_classification_dataset("x", 2, (4, 4), 1, loader, **kwargs)


def test_unknown_name_lists_registered():
    with pytest.raises(UnknownDatasetError, match="registered datasets: fashion-mnist, cifar10"):
        Configs(isolated=True)["imagenet"]
