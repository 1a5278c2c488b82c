"""The training and scoring loops shared by evaluators.

Pure PyTorch over in-memory tensors (or any iterable of ``(x, y)`` batches,
such as a ``DataLoader``): no data loading, no printing, no global state.
Every random choice comes from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from nord.configurations.metrics import make_metrics
from nord.data_curators.splits import TensorData
from nord.errors import NonFiniteLossError, SettingsError

__all__ = ["NonFiniteLossError", "TrainingSettings", "train", "score", "make_scheduler",
           "prepare_targets"]

Batches = Union[TensorData, Iterable[Tuple[torch.Tensor, torch.Tensor]]]


@dataclass(frozen=True)
class TrainingSettings:
    """How one network is trained."""

    epochs: int
    batch_size: int = 64
    lr_schedule: Optional[str] = None      # None, 'cosine' or 'one_cycle'
    augment: bool = False


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: Optional[str], total_steps: int):
    """A per-batch learning-rate scheduler (or ``None``)."""
    if schedule is None:
        return None
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    if schedule == "one_cycle":
        max_lr = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr,
                                                   total_steps=max(2, total_steps))
    raise SettingsError(f"lr_schedule must be None, 'cosine' or 'one_cycle', got {schedule!r}")


def prepare_targets(outputs: torch.Tensor, targets: torch.Tensor, regression: bool) -> torch.Tensor:
    return targets.reshape(outputs.shape).to(outputs.dtype) if regression else targets


def _tensor_batches(data: TensorData, batch_size: int, generator: torch.Generator):
    order = torch.randperm(len(data), generator=generator)
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        yield data.x[index], data.y[index]


def steps_per_epoch(data: Batches, batch_size: int) -> int:
    if isinstance(data, TensorData):
        return math.ceil(len(data) / batch_size)
    return len(data)  # a DataLoader knows its length


_LOSS_READ_GROUP = 50


class _EpochLosses:
    """The batch losses of one epoch, summed in order as Python floats.

    Losses wait on their device until :meth:`add` is told to read them; reading
    raises :class:`NonFiniteLossError` naming the first bad batch.
    """

    def __init__(self, epoch: int):
        self.epoch, self.total, self.batches = epoch, 0.0, 0
        self.pending: List[torch.Tensor] = []

    def add(self, loss: torch.Tensor, read: bool) -> None:
        self.pending.append(loss)
        if read:
            self._read()

    def _read(self) -> None:
        if not self.pending:
            return
        if len(self.pending) == 1:
            values = [self.pending[0].item()]
        else:
            values = torch.stack(self.pending).double().cpu().tolist()
        self.pending.clear()
        for value in values:
            self.batches += 1
            if not math.isfinite(value):
                raise NonFiniteLossError(f"training loss became {value} at epoch "
                                         f"{self.epoch + 1}, batch {self.batches}")
            self.total += value

    def mean(self) -> float:
        self._read()
        return self.total / max(1, self.batches)


def train(net: nn.Module, data: Batches, criterion: nn.Module,
          optimizer: torch.optim.Optimizer, settings: TrainingSettings,
          generator: torch.Generator, device: torch.device, *,
          regression: bool = False, augmentation: Optional[Callable] = None,
          on_epoch: Optional[Callable[[int, float], None]] = None,
          accuracies: Optional[List[float]] = None,
          channels_last: bool = False) -> List[float]:
    """Train ``net`` in place; return the mean training loss of each epoch.

    ``accuracies``: when given (classification), each epoch's running training
    accuracy (over its augmented batches, in training mode) is appended to it
    before ``on_epoch`` is called. ``channels_last``: image batches go in the
    channels-last memory format (for a network converted to it). Raises
    :class:`NonFiniteLossError` as soon as a batch's loss is NaN/inf.
    """
    if accuracies is not None and regression:
        raise SettingsError("training accuracy is defined for classification, not regression")
    scheduler = make_scheduler(optimizer, settings.lr_schedule,
                               settings.epochs * steps_per_epoch(data, settings.batch_size))
    # Reading a loss back stalls an accelerator until its queue drains, so off
    # the CPU the losses are read in groups (the check for NaN lags by at most
    # a group); on the CPU each is read at once, before its backward pass.
    group = 1 if torch.device(device).type == "cpu" else _LOSS_READ_GROUP
    history = []
    for epoch in range(settings.epochs):
        net.train()
        losses = _EpochLosses(epoch)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        source = (_tensor_batches(data, settings.batch_size, generator)
                  if isinstance(data, TensorData) else data)
        for x, y in source:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if augmentation is not None and settings.augment:
                x = augmentation(x, generator)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            outputs = net(x)
            loss = criterion(outputs, prepare_targets(outputs, y, regression))
            losses.add(loss.detach(), read=len(losses.pending) + 1 >= group)
            if accuracies is not None:  # summed on the device: no stall per batch
                correct += (outputs.detach().argmax(1) == y).sum()
                seen += len(y)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        history.append(losses.mean())
        if accuracies is not None:
            accuracies.append(int(correct) / max(1, seen))
        if on_epoch is not None:
            on_epoch(epoch, history[-1])
    return history


@torch.no_grad()
def score(net: nn.Module, data: Batches, criterion: nn.Module, metric_names,
          device: torch.device, *, batch_size: int = 1024,
          regression: bool = False, channels_last: bool = False
          ) -> Tuple[float, Dict[str, float]]:
    """Mean loss and metrics of ``net`` over a whole split (eval mode)."""
    net.eval()
    metrics = make_metrics(metric_names)
    total, count = 0.0, 0
    if isinstance(data, TensorData):
        source = ((data.x[i:i + batch_size], data.y[i:i + batch_size])
                  for i in range(0, len(data), batch_size))
    else:
        source = data
    for x, y in source:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        outputs = net(x)
        targets = prepare_targets(outputs, y, regression)
        total += float(criterion(outputs, targets)) * len(y)
        count += len(y)
        for metric in metrics.values():
            metric.update(outputs, targets)
    return total / max(1, count), {name: m.result() for name, m in metrics.items()}
