"""The collectives data-parallel evaluation uses, over one process group.

:class:`RankGroup` wraps ``torch.distributed`` for the evaluators: tensors of
mixed shapes are reduced as one flat buffer per dtype (one message instead of
one per parameter), and every communication failure becomes a
:class:`~nord.neural_nets.distributed.errors.DistributedError` that names the
operation and this rank. Without an initialised process group it is a group of
one rank and every collective returns its input unchanged, so single-process
code runs the same path with no communication at all.
"""

from __future__ import annotations

import gc
import os
from collections import defaultdict
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
import torch.distributed as dist

from nord.neural_nets.distributed.errors import DistributedError

__all__ = ["RankGroup", "destroy_process_group", "release_frames", "first_line"]


class RankGroup:
    """This process's rank and world size in ``group`` and the collectives over it.

    ``group=None`` is the default (world) group; when ``torch.distributed`` is not
    initialised, the group is this process alone (rank 0 of 1). ``device`` is
    where scalar messages are built (the training device: NCCL needs CUDA tensors).
    """

    def __init__(self, group: Optional[Any] = None, device: Union[str, torch.device] = "cpu"):
        self.group = group
        self.device = torch.device(device)
        if dist.is_available() and dist.is_initialized():
            self.rank = dist.get_rank(group)
            self.size = dist.get_world_size(group)
        else:
            self.rank, self.size = 0, 1

    @property
    def is_master(self) -> bool:
        return self.rank == 0

    # ---------------------------------------------------------------- tensors
    def all_reduce_sum(self, tensors: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """Element-wise sums over the ranks of ``tensors`` (new tensors; inputs untouched)."""
        if self.size == 1:
            return list(tensors)
        flats = _flatten_by_dtype(tensors)
        for flat in flats.values():
            self._call("all_reduce", dist.all_reduce, flat, group=self.group)
        return _unflatten(tensors, flats)

    def sum_values(self, values: Sequence[float]) -> List[float]:
        """Sums over the ranks of a few numbers (in float64)."""
        values = [float(v) for v in values]
        if self.size == 1:
            return values
        (summed,) = self.all_reduce_sum([torch.tensor(values, dtype=torch.float64,
                                                      device=self.device)])
        return summed.tolist()

    def broadcast_(self, tensors: Sequence[torch.Tensor], src: int = 0) -> None:
        """Overwrite ``tensors`` in place with rank ``src``'s values."""
        if self.size == 1:
            return
        flats = _flatten_by_dtype(tensors)
        for flat in flats.values():
            self._call("broadcast", dist.broadcast, flat, src=self._global(src), group=self.group)
        with torch.no_grad():
            for tensor, value in zip(tensors, _unflatten(tensors, flats)):
                tensor.copy_(value)

    # ---------------------------------------------------------------- objects
    def all_gather_objects(self, value: Any) -> List[Any]:
        """Every rank's ``value`` (picklable), in rank order."""
        if self.size == 1:
            return [value]
        gathered: List[Any] = [None] * self.size
        self._call("all_gather_object", dist.all_gather_object, gathered, value, group=self.group)
        return gathered

    def broadcast_object(self, value: Any, src: int = 0) -> Any:
        """Rank ``src``'s ``value`` on every rank."""
        if self.size == 1:
            return value
        box = [value if self.rank == src else None]
        self._call("broadcast_object_list", dist.broadcast_object_list, box,
                   src=self._global(src), group=self.group)
        return box[0]

    def barrier(self) -> None:
        if self.size > 1:
            self._call("barrier", dist.barrier, group=self.group)

    # ---------------------------------------------------------------- internals
    def _global(self, rank: int) -> int:
        """The global rank of this group's ``rank`` (collectives take global ranks)."""
        if self.group is None:
            return rank
        return dist.get_global_rank(self.group, rank)

    def _call(self, name: str, operation, *args, **kwargs) -> None:
        try:
            operation(*args, **kwargs)
        except RuntimeError as error:  # torch's DistError types derive from RuntimeError
            raise DistributedError(
                f"{name} failed on rank {self.rank} of {self.size}: {first_line(error)}. "
                f"Another rank died, raised an error or stopped responding; check every "
                f"rank's log. The ranks are out of step now: leave the Environment "
                f"(or destroy the process group) and start again") from error


def destroy_process_group() -> None:
    """Destroy every process group now, while the interpreter is fully alive.

    ``torch.distributed.destroy_process_group`` drops torch's references, but a
    gloo process group can survive in a reference cycle until the interpreter
    shuts down; its worker threads then still hold the last collective's
    tensors, need the GIL to free them, and the process aborts ("terminate
    called without an active exception", SIGABRT) in a few percent of exits.
    Collecting the cycle here joins those threads first. Drop your own
    references to groups before calling this (see also :func:`release_frames`).
    """
    dist.destroy_process_group()
    gc.collect()


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def release_frames(error: BaseException) -> None:
    """Drop the locals of this package's finished frames in ``error``'s traceback.

    They hold process groups, which would otherwise stay alive as long as the
    exception (to the end of the program if it is not caught) and could not be
    destroyed cleanly. The traceback itself is unchanged.
    """
    tb = error.__traceback__
    while tb is not None:
        if os.path.dirname(os.path.abspath(tb.tb_frame.f_code.co_filename)) == _PACKAGE:
            try:
                tb.tb_frame.clear()
            except RuntimeError:  # a frame still executing keeps its locals
                pass
        tb = tb.tb_next


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _flatten_by_dtype(tensors: Sequence[torch.Tensor]) -> Dict[tuple, torch.Tensor]:
    groups: Dict[tuple, List[torch.Tensor]] = defaultdict(list)
    for tensor in tensors:
        groups[(tensor.dtype, tensor.device)].append(tensor.detach().reshape(-1))
    return {key: torch.cat(parts) for key, parts in groups.items()}


def _unflatten(tensors: Sequence[torch.Tensor],
               flats: Dict[tuple, torch.Tensor]) -> List[torch.Tensor]:
    offsets = defaultdict(int)
    result = []
    for tensor in tensors:
        key = (tensor.dtype, tensor.device)
        start = offsets[key]
        offsets[key] = start + tensor.numel()
        result.append(flats[key][start:start + tensor.numel()].view_as(tensor))
    return result
