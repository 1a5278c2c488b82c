"""First-order DARTS search, one epoch at a time (thesis §2.2.3, table 8.1, Algorithm 1).

:class:`DartsSearch` owns a :class:`~nord.darts.supernet.SuperNet`, its two
optimizers and the data. The search data are a seeded share of a dataset's
training set, split in two halves (table 8.1: validation 50 %): the network
weights learn on the first (SGD, momentum 0.9, weight decay 3e-4, cosine
annealing from 0.025 to 0.001 over the epochs, gradients clipped at norm 5),
the architecture weights on the second (Adam, lr 3e-4, betas (0.5, 0.999),
weight decay 1e-3). Each step is Algorithm 1's: a weight step on a training
batch, then an architecture step on a validation batch (first order: the
architecture gradient at the current weights). Batches are flipped and
randomly erased (the NORD Fashion-MNIST augmentation) when ``augment``.

Every random choice of epoch ``e`` (batch order, augmentation) comes from a
generator seeded by ``(seed, e)``, so an epoch run from a checkpoint of
epoch ``e - 1`` is the epoch an uninterrupted search runs: :meth:`state_dict`
and :meth:`load_state_dict` (network, both optimizers, the schedule) are all
a resume needs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from nord.darts.settings import THESIS_SEARCH, DartsSettings
from nord.darts.supernet import SuperNet
from nord.errors import DartsError, SettingsError

__all__ = ["DartsSettings", "DartsSearch", "SearchData", "load_search_data",
           "THESIS_SEARCH"]


@dataclass(frozen=True)
class SearchData:
    """The two halves of the search share, and what the network needs to know."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    valid_x: torch.Tensor
    valid_y: torch.Tensor
    num_classes: int
    channels: int
    augmentation: Optional[Any] = None


def load_search_data(settings: DartsSettings, configs=None) -> SearchData:
    """The seeded share of ``settings.dataset``'s training set, halved."""
    from nord.configurations import Configs
    config = (configs or Configs())[settings.dataset]
    if config.task != "classification" or len(config.input_shape) != 2:
        raise SettingsError(f"DARTS searches image classification datasets; "
                            f"{settings.dataset!r} is {config.task} on shape "
                            f"{tuple(config.input_shape)}")
    splits = config.data_load(1.0, validation_fraction=0.0, split_seed=settings.seed)
    x, y = splits.train.x, splits.train.y
    n = max(2, int(len(y) * float(settings.share)))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(settings.seed))[:n]
    half = n // 2
    if half < settings.batch_size:
        raise SettingsError(f"a share of {settings.share} gives {half} images per half, fewer "
                            f"than one batch of {settings.batch_size}; raise --share or lower "
                            f"--batch-size")
    first, second = order[:half], order[half:2 * half]
    return SearchData(x[first], y[first], x[second], y[second], int(config.num_outputs),
                      int(config.channels),
                      splits.augmentation if settings.augment else None)


def _epoch_generator(seed: int, epoch: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch)) * 7 + salt)


class DartsSearch:
    """A supernet, its optimizers and its data; :meth:`run_epoch` advances one epoch."""

    def __init__(self, settings: DartsSettings, data: SearchData, device: str = "cpu") -> None:
        self.settings, self.data, self.device = settings, data, torch.device(device)
        self.model = SuperNet(settings.channels, data.num_classes, settings.cells,
                              steps=settings.steps, multiplier=settings.multiplier,
                              in_channels=data.channels, seed=settings.seed)
        # channels-last: about 1.6x faster forward and backward passes of the
        # supernet's depthwise and 1x1 convolutions on the CPU (measured, 2 cores)
        self.model.to(self.device, memory_format=torch.channels_last)
        self.weights, self.arch_parameters = self.model.weights(), self.model.arch_parameters()
        self.w_optimizer = torch.optim.SGD(self.weights, lr=settings.lr,
                                           momentum=settings.momentum,
                                           weight_decay=settings.weight_decay)
        self.a_optimizer = torch.optim.Adam(self.arch_parameters, lr=settings.arch_lr,
                                            betas=(0.5, 0.999),
                                            weight_decay=settings.arch_weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.w_optimizer, T_max=settings.epochs, eta_min=settings.lr_min)
        self.epoch = 0  # epochs finished

    # ------------------------------------------------------------ one epoch
    def batches(self, epoch: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """The training and validation index order of ``epoch``, one row per batch."""
        g = _epoch_generator(self.settings.seed, epoch, 1)
        b = self.settings.batch_size
        train, valid, count = self.shards()
        train = train[torch.randperm(len(train), generator=g)][:count * b]
        valid = valid[torch.randperm(len(valid), generator=g)][:count * b]
        return train.view(count, b), valid.view(count, b)

    def shards(self) -> Tuple[torch.Tensor, torch.Tensor, int]:
        """This process's training and validation sample indices, and the batches of an
        epoch (every rank runs as many)."""
        n_train, n_valid = len(self.data.train_y), len(self.data.valid_y)
        count = min(n_train, n_valid) // self.settings.batch_size
        return torch.arange(n_train), torch.arange(n_valid), count

    def run_epoch(self, on_batch=None) -> Dict[str, Any]:
        """Train one epoch (Algorithm 1's inner loop); its metrics."""
        if self.epoch >= self.settings.epochs:
            raise DartsError(f"the search has run its {self.settings.epochs} epochs")
        start = time.perf_counter()
        epoch = self.epoch
        train_rows, valid_rows = self.batches(epoch)
        augment = _epoch_generator(self.settings.seed, epoch, self.augmentation_salt())
        model, data = self.model, self.data
        model.train()
        totals = {"train_loss": 0.0, "train_correct": 0, "valid_loss": 0.0, "valid_correct": 0}
        seen = 0
        lr = self.w_optimizer.param_groups[0]["lr"]
        for step, (ti, vi) in enumerate(zip(train_rows, valid_rows)):
            xt, yt = data.train_x[ti], data.train_y[ti]
            xv, yv = data.valid_x[vi], data.valid_y[vi]
            if data.augmentation is not None:
                xt, xv = data.augmentation(xt, augment), data.augmentation(xv, augment)
            xt, xv = (t.to(self.device, memory_format=torch.channels_last) for t in (xt, xv))
            yt, yv = yt.to(self.device), yv.to(self.device)
            train_loss, train_correct = self.weight_step(xt, yt)
            if epoch < self.settings.warmup_epochs:
                valid_loss, valid_correct = self.validation_loss(xv, yv)
            else:
                valid_loss, valid_correct = self.architecture_step(xv, yv)
            if not (math.isfinite(train_loss) and math.isfinite(valid_loss)):
                raise DartsError(f"epoch {epoch + 1}, batch {step + 1}: the loss is not finite "
                                 f"(train {train_loss}, validation {valid_loss}); lower --lr or "
                                 f"--arch-lr")
            n = len(yt)
            totals["train_loss"] += train_loss * n
            totals["valid_loss"] += valid_loss * n
            totals["train_correct"] += train_correct
            totals["valid_correct"] += valid_correct
            seen += n
            if on_batch is not None:
                on_batch(step + 1, len(train_rows))
        self.end_epoch()
        totals, seen = self.sum_over_ranks(totals, seen)
        self.scheduler.step()
        self.epoch += 1
        genotype = model.genotype()
        return {"epoch": epoch, "lr": lr, "batches": len(train_rows),
                "train_loss": totals["train_loss"] / seen,
                "train_accuracy": totals["train_correct"] / seen,
                "valid_loss": totals["valid_loss"] / seen,
                "valid_accuracy": totals["valid_correct"] / seen,
                "genotype": genotype.to_json(),
                "alpha_normal": _rounded(F.softmax(model.alpha_normal.detach(), -1)),
                "alpha_reduce": _rounded(F.softmax(model.alpha_reduce.detach(), -1)),
                "seconds": time.perf_counter() - start}

    def weight_step(self, x, y) -> Tuple[float, int]:
        """One SGD step of the network weights on a training batch."""
        loss, correct = self._gradients(x, y, self.weights)
        if self.settings.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.weights, self.settings.grad_clip)
        self.w_optimizer.step()
        return loss, correct

    def architecture_step(self, x, y) -> Tuple[float, int]:
        """One Adam step of the architecture weights on a validation batch (first order)."""
        loss, correct = self._gradients(x, y, self.arch_parameters)
        self.a_optimizer.step()
        return loss, correct

    @torch.no_grad()
    def validation_loss(self, x, y) -> Tuple[float, int]:
        """A warm-up epoch's architecture batch: its loss and correct predictions,
        no step (in training mode, as the architecture step would see it)."""
        logits = self.model(x)
        return float(F.cross_entropy(logits, y)), int((logits.argmax(1) == y).sum())

    def _gradients(self, x, y, parameters) -> Tuple[float, int]:
        """The batch's loss and correct predictions; ``parameters`` get the loss's
        gradient (``None`` where they do not take part), reduced over the ranks.
        The other level's gradients are not computed: each step needs only its own."""
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        grads = torch.autograd.grad(loss, parameters, allow_unused=True)
        for p, g in zip(parameters, grads):
            p.grad = g
        self.reduce_gradients(parameters)
        return float(loss.detach()), int((logits.argmax(1) == y).sum())

    # ------------------------------------------------------------ data-parallel hooks
    def augmentation_salt(self) -> int:
        """Salt of the epoch's augmentation generator (ranks draw their own)."""
        return 2

    def reduce_gradients(self, parameters) -> None:
        """Called after each backward pass (Algorithm 2 averages the gradients here)."""

    def end_epoch(self) -> None:
        """Called after an epoch's last step (Algorithm 1 averages the weights here)."""

    def sum_over_ranks(self, totals: Dict[str, float], seen: int):
        """The epoch's loss and accuracy sums over every rank (one rank: as they are)."""
        return totals, seen

    # ------------------------------------------------------------ resuming
    def state_dict(self) -> Dict[str, Any]:
        """Everything a resume needs (plain data and tensors: ``torch.load`` reads it
        with ``weights_only=True``)."""
        return {"format": 1, "settings": self.settings.to_dict(), "epoch": self.epoch,
                "model": self.model.state_dict(), "w_optimizer": self.w_optimizer.state_dict(),
                "a_optimizer": self.a_optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping) or state.get("format") != 1:
            raise DartsError("not a DARTS search checkpoint (format 1); start the search again")
        if state.get("settings") != self.settings.to_dict():
            raise SettingsError(f"the checkpoint was written by a search with other settings "
                                f"({_difference(state.get('settings'), self.settings)}); "
                                f"resume with the settings it was started with")
        try:
            self.model.load_state_dict(state["model"])
            self.w_optimizer.load_state_dict(state["w_optimizer"])
            self.a_optimizer.load_state_dict(state["a_optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (KeyError, RuntimeError, ValueError) as error:
            raise DartsError(f"the checkpoint does not fit this supernet ({error}); start the "
                             f"search again") from error
        self.epoch = int(state["epoch"])


def _rounded(matrix: torch.Tensor):
    return [[round(float(v), 6) for v in row] for row in matrix.cpu()]


def _difference(stored, settings: DartsSettings) -> str:
    if not isinstance(stored, dict):
        return "no settings recorded"
    now = settings.to_dict()
    changed = [f"{k}: {stored.get(k)!r} -> {now.get(k)!r}"
               for k in sorted(set(stored) | set(now)) if stored.get(k) != now.get(k)]
    return "; ".join(changed) or "none"
