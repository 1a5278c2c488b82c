"""A local process pool: every core of one machine evaluating at once.

Built on :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn``
start method (safe with torch's thread pools). Each worker loads the
objective once and limits torch to its share of the cores, so ``W`` workers
on ``C`` cores use ``C // W`` threads each instead of fighting over all of
them. On a machine with GPUs the workers take the visible GPUs in turn
(worker ``i`` uses GPU ``i mod G``; ``CUDA_VISIBLE_DEVICES`` chooses which
GPUs are visible), so ``W = G`` workers evaluate one candidate per GPU as the
thesis's chapter 6 did on four GPUs.

A worker that dies (killed, out of memory) breaks the pool; the executor
then starts a new pool and submits again every task whose result had not
arrived, up to ``max_retries`` times per task; after that the task comes back
as a ``failed`` result that says so. Results that arrived before are kept, so
the run store still records each evaluation exactly once.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import time
from concurrent.futures.process import BrokenProcessPool
from typing import Dict, List, Optional

from nord.execution.executors import Executor
from nord.execution.tasks import (FAILED_FITNESS, Task, TaskResult, run_task,
                                  set_worker_device, worker_name)

__all__ = ["ProcessPoolExecutor", "threads_per_worker", "worker_gpu"]

log = logging.getLogger(__name__)

_objective = None  # the objective, one copy per worker process
_worker_index: Optional[int] = None  # this worker's number in its pool, 0 .. W-1


def threads_per_worker(workers: int, cores: Optional[int] = None) -> int:
    """Each worker's share of the cores (at least one thread)."""
    if cores is None:
        cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else os.cpu_count()) or 1
    return max(1, int(cores) // max(1, int(workers)))


def worker_gpu(index: int, gpu_count: int) -> Optional[int]:
    """The GPU pool worker ``index`` uses when ``gpu_count`` are visible (``None``: none)."""
    return int(index) % int(gpu_count) if gpu_count > 0 else None


def _start_worker(objective, threads: int, counter) -> None:
    global _objective, _worker_index
    import torch
    torch.set_num_threads(threads)
    with counter.get_lock():
        _worker_index, counter.value = counter.value, counter.value + 1
    gpu = worker_gpu(_worker_index, torch.cuda.device_count())
    if gpu is not None:
        torch.cuda.set_device(gpu)  # 'cuda' now means this GPU in this worker
        set_worker_device(f"cuda:{gpu}")
    _objective = objective
    prepare = getattr(objective, "prepare", None)
    if prepare is not None:
        prepare()


def _work(task: Task) -> TaskResult:
    return run_task(_objective, task)


class ProcessPoolExecutor(Executor):
    """Evaluates up to ``workers`` tasks at once in worker processes."""

    def __init__(self, objective, workers: Optional[int] = None, threads: Optional[int] = None,
                 max_retries: int = 3) -> None:
        super().__init__(objective)
        self.capacity = int(workers or os.cpu_count() or 1)
        if self.capacity < 1:
            from nord.errors import NordError
            raise NordError(f"workers must be at least 1, got {workers}")
        self.threads = int(threads or threads_per_worker(self.capacity))
        self.max_retries = int(max_retries)
        self._futures: Dict[cf.Future, Task] = {}
        self._attempts: Dict[int, int] = {}
        self._ready: List[TaskResult] = []  # results to hand out before waiting again
        self._pool = self._new_pool()
        self.restarts = 0
        self.resubmitted: List[int] = []  # ids evaluated again after a worker died

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        counter = context.Value("i", 0)  # hands each new worker its number
        return cf.ProcessPoolExecutor(max_workers=self.capacity, mp_context=context,
                                      initializer=_start_worker,
                                      initargs=(self.objective, self.threads, counter))

    @property
    def in_flight(self) -> int:
        return len(self._futures) + len(self._ready)

    def submit(self, task: Task) -> None:
        self._attempts[task.id] = self._attempts.get(task.id, 0) + 1
        try:
            self._futures[self._pool.submit(_work, task)] = task
        except BrokenProcessPool:  # a worker died since the last collect
            self._restart([task])

    def collect(self) -> List[TaskResult]:
        if self._ready:
            ready, self._ready = self._ready, []
            return ready
        if not self._futures:
            return []
        done, _ = cf.wait(list(self._futures), return_when=cf.FIRST_COMPLETED)
        results, broken = [], []
        for future in done:
            task = self._futures.pop(future)
            try:
                results.append(future.result())
            except BrokenProcessPool:
                broken.append(task)
        if broken:
            self._restart(broken)
        return results

    def _restart(self, broken: List[Task]) -> None:
        """A worker died: new pool, and every unfinished task submitted again."""
        pending = list(broken)
        for future, task in self._futures.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                self._ready.append(future.result())  # finished before the break: keep it
            else:
                pending.append(task)
        self._futures.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()
        self.restarts += 1
        log.warning("a worker process died; restarted the pool and resubmitting %d "
                    "unfinished evaluations (%s)", len(pending),
                    ", ".join(str(t.id) for t in pending))
        for task in pending:
            if self._attempts.get(task.id, 0) > self.max_retries:
                now = time.time()
                self._ready.append(TaskResult(
                    task.id, "failed", FAILED_FITNESS, {},
                    f"WorkerDied: the worker evaluating this candidate died "
                    f"{self._attempts[task.id]} times (killed, or out of memory?)",
                    None, now, now, worker_name()))
            else:
                self.resubmitted.append(task.id)
                self.submit(task)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
