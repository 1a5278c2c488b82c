"""Deterministic validation carve and nested training shares."""

import pytest
import torch

from nord.data_curators.splits import TensorData, make_splits


def data(n=100):
    x = torch.arange(n, dtype=torch.float32).reshape(n, 1)
    return x, torch.arange(n)


def test_validation_is_carved_from_training_and_disjoint():
    x, y = data()
    splits = make_splits(x, y, x[:10], y[:10], validation_fraction=0.2)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (80, 20, 10)
    assert not set(splits.train.y.tolist()) & set(splits.validation.y.tolist())


def test_same_split_seed_same_split_whatever_the_share():
    x, y = data()
    full = make_splits(x, y, x, y, split_seed=3)
    tenth = make_splits(x, y, x, y, percentage=0.1, split_seed=3)
    half = make_splits(x, y, x, y, percentage=0.5, split_seed=3)
    assert torch.equal(full.validation.y, tenth.validation.y)
    assert len(tenth.train) == 9 and len(half.train) == 45
    assert set(tenth.train.y.tolist()) <= set(half.train.y.tolist()) <= set(full.train.y.tolist())
    other = make_splits(x, y, x, y, split_seed=4)
    assert not torch.equal(full.validation.y, other.validation.y)


def test_no_validation_split():
    x, y = data()
    splits = make_splits(x, y, x, y, validation_fraction=0.0)
    assert splits.validation is None and len(splits.train) == 100
    with pytest.raises(ValueError, match="no validation split"):
        splits.split("validation")


@pytest.mark.parametrize("percentage", [0, -0.1, 1.5, 50])
def test_percentage_must_be_a_share(percentage):
    x, y = data()
    with pytest.raises(ValueError, match="share of the training set"):
        make_splits(x, y, x, y, percentage=percentage)


def test_tensor_data_checks_lengths():
    with pytest.raises(ValueError, match="3 inputs but 2 targets"):
        TensorData(torch.zeros(3, 1), torch.zeros(2))
