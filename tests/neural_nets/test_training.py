"""The shared training loop's bookkeeping of batch losses."""

import math

import pytest
import torch

from nord.neural_nets.training import NonFiniteLossError, _EpochLosses


def test_losses_read_in_groups_sum_exactly_as_read_one_by_one():
    values = [0.1, 2.5, 1e-7, 3.25, 0.3333]
    one_by_one, grouped = _EpochLosses(0), _EpochLosses(0)
    for index, value in enumerate(values):
        one_by_one.add(torch.tensor(value), read=True)
        grouped.add(torch.tensor(value), read=index == 2)
    assert len(grouped.pending) == 2  # the last two wait until the epoch's mean
    expected = sum(float(torch.tensor(v)) for v in values) / len(values)
    assert one_by_one.mean() == grouped.mean() == pytest.approx(expected, rel=0, abs=0)
    assert grouped.batches == 5 and not grouped.pending


def test_a_non_finite_loss_in_a_group_names_its_batch_and_epoch():
    losses = _EpochLosses(epoch=2)
    for value in (0.5, 0.25, math.nan, 0.1):
        losses.add(torch.tensor(value), read=False)
    with pytest.raises(NonFiniteLossError, match=r"became nan at epoch 3, batch 3"):
        losses.mean()


def test_an_epoch_without_batches_has_mean_zero():
    assert _EpochLosses(0).mean() == 0.0
