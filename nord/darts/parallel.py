"""Synchronous data-parallel DARTS (chapter 8, Algorithms 1 and 2).

Every rank holds the whole supernet and searches on its shard of the two
data halves (every ``world_size``-th sample from its rank). Both algorithms
start from rank 0's weights and architecture weights (broadcast) and run the
same number of steps per epoch on every rank:

* ``weights`` (Algorithm 1): each rank takes its own weight and architecture
  steps for a whole epoch; then the weights, the architecture weights and the
  BatchNorm statistics are averaged over the ranks (one all-reduce per epoch:
  ``N / B`` times fewer than Algorithm 2, 937.5 for Fashion-MNIST at batch 64);
* ``gradients`` (Algorithm 2): every step, the weight gradients and then the
  architecture gradients are averaged over the ranks before the update, so
  every rank takes the same step; BatchNorm statistics are averaged at the end
  of the epoch.

Either way every rank ends an epoch with identical weights and architecture
weights. With one rank both are exactly the serial :class:`DartsSearch`. The
collectives go through :class:`~nord.neural_nets.distributed.collectives.RankGroup`
(gloo on CPU, NCCL on CUDA: whatever process group torchrun or
:class:`~nord.neural_nets.distributed.environment.Environment` set up);
``communication`` counts the all-reduce calls and bytes of the last epoch.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from nord.darts.search import DartsSearch, DartsSettings, SearchData
from nord.errors import SettingsError
from nord.neural_nets.distributed.collectives import RankGroup
from nord.neural_nets.distributed.data_parallel import (average_buffers, average_model,
                                                        average_tensors_, shard_indices)

__all__ = ["ParallelDartsSearch", "ALGORITHMS"]

#: Algorithm 1 (average the weights once per epoch), Algorithm 2 (average the
#: gradients every step)
ALGORITHMS = ("weights", "gradients")


class ParallelDartsSearch(DartsSearch):
    """:class:`DartsSearch` on one rank of a data-parallel search."""

    def __init__(self, settings: DartsSettings, data: SearchData, algorithm: str = "weights",
                 ranks: Optional[RankGroup] = None, device: str = "cpu") -> None:
        if algorithm not in ALGORITHMS:
            raise SettingsError(f"unknown data-parallel DARTS algorithm {algorithm!r}; use "
                                f"'weights' (Algorithm 1) or 'gradients' (Algorithm 2)")
        super().__init__(settings, data, device)
        self.algorithm = algorithm
        self.ranks = ranks or RankGroup(device=device)
        n = min(len(data.train_y), len(data.valid_y))
        if n // self.ranks.size < settings.batch_size:
            raise SettingsError(f"{n} samples per half over {self.ranks.size} ranks leave "
                                f"{n // self.ranks.size} per rank, fewer than one batch of "
                                f"{settings.batch_size}; use fewer ranks, a smaller "
                                f"--batch-size or a larger --share")
        self.communication = {"all_reduce_calls": 0, "all_reduce_bytes": 0}
        self.ranks.broadcast_(list(self.model.parameters()) + list(self.model.buffers()))

    def shards(self) -> Tuple[torch.Tensor, torch.Tensor, int]:
        rank, size = self.ranks.rank, self.ranks.size
        n_train, n_valid = len(self.data.train_y), len(self.data.valid_y)
        count = min(n_train // size, n_valid // size) // self.settings.batch_size
        return shard_indices(n_train, rank, size), shard_indices(n_valid, rank, size), count

    def augmentation_salt(self) -> int:
        return 2 + 10 * self.ranks.rank

    def run_epoch(self, on_batch=None) -> Dict:
        self.communication = {"all_reduce_calls": 0, "all_reduce_bytes": 0}
        metrics = super().run_epoch(on_batch)
        metrics.update(self.communication, ranks=self.ranks.size, algorithm=self.algorithm)
        return metrics

    def _count(self, tensors) -> None:
        if self.ranks.size > 1:
            self.communication["all_reduce_calls"] += 1
            self.communication["all_reduce_bytes"] += sum(t.numel() * t.element_size()
                                                          for t in tensors)

    @torch.no_grad()
    def reduce_gradients(self, parameters) -> None:
        if self.algorithm != "gradients" or self.ranks.size == 1:
            return
        # the parameters without a gradient (an unused cell type's alphas) are the same
        # on every rank, and stay without one, as in the serial search
        grads = [p.grad for p in parameters if p.grad is not None]
        self._count(grads)
        average_tensors_(self.ranks, grads)

    def end_epoch(self) -> None:
        if self.ranks.size == 1:
            return
        if self.algorithm == "weights":
            tensors = list(self.model.parameters()) + [b for b in self.model.buffers()
                                                       if b.is_floating_point()]
            self._count(tensors)
            average_model(self.model, self.ranks)
        else:
            tensors = [b for b in self.model.buffers() if b.is_floating_point()]
            self._count(tensors)
            average_buffers(self.model, self.ranks)

    def sum_over_ranks(self, totals, seen):
        keys = sorted(totals)
        summed = self.ranks.sum_values([totals[k] for k in keys] + [seen])
        return {k: v for k, v in zip(keys, summed[:-1])}, int(summed[-1])
