"""Executors evaluate tasks and hand back results as they finish.

All executors share one small interface so that the run loop does not care
where evaluations happen: ``submit`` a task, ``collect`` the results that are
ready (waiting for at least one), ``capacity`` tasks at a time.
"""

from __future__ import annotations

import abc
from collections import deque
from typing import Deque, List, Optional

from nord.errors import SettingsError
from nord.execution.tasks import Task, TaskResult, run_task
from nord.registry import Registry

__all__ = ["Executor", "SerialExecutor", "make_executor", "register_executor", "EXECUTORS"]


class Executor(abc.ABC):
    """Evaluates :class:`Task` objects for one objective."""

    #: how many tasks it can run at once
    capacity: int = 1

    def __init__(self, objective) -> None:
        self.objective = objective

    @abc.abstractmethod
    def submit(self, task: Task) -> None:
        """Queue a task."""

    @abc.abstractmethod
    def collect(self) -> List[TaskResult]:
        """Results ready now; waits until at least one is, if any task is queued."""

    @property
    @abc.abstractmethod
    def in_flight(self) -> int:
        """Tasks submitted and not yet collected."""

    def close(self) -> None:
        """Release workers."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SerialExecutor(Executor):
    """Evaluates in the calling process, one task per ``collect``."""

    capacity = 1

    def __init__(self, objective, threads: Optional[int] = None) -> None:
        super().__init__(objective)
        if threads is not None and int(threads) < 1:
            raise SettingsError(f"threads must be at least 1, got {threads}: pass --threads 1 "
                                f"or more, or leave it out")
        self.threads = None if threads is None else int(threads)
        self._queue: Deque[Task] = deque()

    def submit(self, task: Task) -> None:
        self._queue.append(task)

    def collect(self) -> List[TaskResult]:
        if not self._queue:
            return []
        task = self._queue.popleft()
        if self.threads is None:
            return [run_task(self.objective, task)]
        from nord.neural_nets.torch_threads import torch_threads
        with torch_threads(self.threads):  # only while evaluating
            return [run_task(self.objective, task)]

    @property
    def in_flight(self) -> int:
        return len(self._queue)


#: executor name -> factory ``(objective, workers, **options) -> Executor``
EXECUTORS = Registry("executor", how_to_add="register one with "
                     "nord.execution.executors.register_executor()")


def register_executor(name: str, factory=None, *, summary: str = "", replace: bool = False):
    """Register an executor factory (``factory(objective, workers, **options)``
    returning an :class:`Executor`, or a ``"module:function"`` string) as
    ``name``; without ``factory``, a decorator. ``make_executor`` checks
    ``workers`` and ``threads`` before calling it."""
    return EXECUTORS.register(name, factory, summary=summary, replace=replace)


def make_executor(kind: str, objective, workers: Optional[int] = 1, **options) -> Executor:
    """An executor by name: ``serial``, ``process`` (local pool), ``ray``, or any
    registered with :func:`register_executor`."""
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise SettingsError(f"--workers must be at least 1 (evaluations at once), got "
                            f"{workers}: pass --workers 1 or more")
    if options.get("threads") is not None and int(options["threads"]) < 1:
        raise SettingsError(f"--threads must be at least 1 (torch threads per evaluation), "
                            f"got {options['threads']}: pass --threads 1 or more, or leave it "
                            f"out to share the cores between the workers")
    return EXECUTORS[kind](objective, workers, **options)


def _refuse_ray_options(options: dict) -> None:
    for option, flag in (("gpus", "--gpus"), ("address", "--ray-address")):
        if options.pop(option, None):
            raise SettingsError(f"{flag} applies to the Ray executor only: add --executor "
                                f"ray, or leave {flag} out (a process pool uses every "
                                f"visible GPU, its workers taking them in turn)")


@register_executor("serial", summary="one evaluation at a time, in this process")
def _serial(objective, workers: Optional[int] = 1, **options) -> Executor:
    _refuse_ray_options(options)
    if workers is not None and workers != 1:
        raise SettingsError(f"the serial executor runs one evaluation at a time; for "
                            f"--workers {workers} choose --executor process or ray")
    return SerialExecutor(objective, **options)


@register_executor("process", summary="a pool of local worker processes")
def _process(objective, workers: Optional[int] = 1, **options) -> Executor:
    from nord.execution.process_pool import ProcessPoolExecutor
    _refuse_ray_options(options)
    return ProcessPoolExecutor(objective, workers=workers, **options)


@register_executor("ray", summary="Ray tasks on a local instance or a cluster "
                   "(pip install 'nord[ray]')")
def _ray(objective, workers: Optional[int] = 1, **options) -> Executor:
    from nord.execution.ray_executor import RayExecutor
    if options.get("threads") is not None:  # a Ray task's torch uses its CPUs
        options["cpus"] = float(options.pop("threads"))
    options.pop("threads", None)
    return RayExecutor(objective, workers=1 if workers is None else workers, **options)
