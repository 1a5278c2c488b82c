"""Running a block of torch code on a given number of intra-op threads."""

from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(threads: int = 1) -> Iterator[None]:
    """Run the block on ``threads`` torch threads, restoring the setting after.

    Tiny networks (the RL controller, the guided search's surrogate) run far
    slower on several threads than on one (16x with two threads on a busy
    2-core machine); an evaluation in the same process keeps its own setting.
    """
    import torch
    before = torch.get_num_threads()
    if before != threads:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        if before != threads:
            torch.set_num_threads(before)
