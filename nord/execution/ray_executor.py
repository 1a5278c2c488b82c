"""Ray: evaluations spread over a cluster (``pip install nord[ray]``).

``RayExecutor(objective, workers=W)`` starts a local Ray instance (W CPUs)
unless ``address`` names an existing cluster (``ray start --head`` on one
machine, ``ray start --address <head>:6379`` on the others, then
``--ray-address auto`` or ``<head>:6379``). Each evaluation is a Ray task
asking for ``cpus`` CPUs (its torch threads) and ``gpus`` GPUs; Ray retries a task whose worker
died up to ``max_retries`` times. The objective is shipped once to the object
store and each task loads its tables lazily.
"""

from __future__ import annotations

import logging
import time
from typing import Dict, List, Optional

from nord.errors import MissingDependencyError
from nord.execution.executors import Executor
from nord.execution.tasks import FAILED_FITNESS, Task, TaskResult, run_task, worker_name

__all__ = ["RayExecutor", "import_ray"]

log = logging.getLogger(__name__)


def import_ray():
    """The ``ray`` module, or a :class:`MissingDependencyError` saying how to get it."""
    try:
        import ray
    except ImportError as error:
        raise MissingDependencyError(
            "the Ray executor needs Ray: pip install 'nord[ray]' (or pip install ray); "
            "or use --executor process on one machine") from error
    return ray


def _evaluate(objective, task: Task, threads: int) -> TaskResult:
    import torch
    torch.set_num_threads(threads)  # the task's CPUs, whatever the worker started with
    return run_task(objective, task)


class RayExecutor(Executor):
    """Evaluates up to ``workers`` tasks at once as Ray tasks."""

    def __init__(self, objective, workers: int = 1, address: Optional[str] = None,
                 cpus: float = 1.0, gpus: float = 0.0, max_retries: int = 3,
                 init_options: Optional[dict] = None) -> None:
        super().__init__(objective)
        ray = self.ray = import_ray()
        self.capacity = int(workers)
        if not ray.is_initialized():
            options = dict(init_options or {})
            if address:
                options["address"] = address
            else:
                options.setdefault("num_cpus", max(self.capacity, int(cpus * self.capacity)))
                options.setdefault("num_gpus", int(gpus * self.capacity) if gpus else 0)
            options.setdefault("log_to_driver", False)
            options.setdefault("include_dashboard", False)
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError) as error:
                from nord.errors import NordError
                where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
                raise NordError(f"could not start or reach {where}: {error}; start one with "
                                f"`ray start --head`, or leave --ray-address out") from error
            self._started_ray = True
        else:
            self._started_ray = False
        self._remote = ray.remote(_evaluate).options(num_cpus=cpus, num_gpus=gpus,
                                                      max_retries=max_retries)
        self._objective_ref = ray.put(objective)
        self.threads = max(1, int(cpus))
        self._refs: Dict[object, Task] = {}

    @property
    def in_flight(self) -> int:
        return len(self._refs)

    def submit(self, task: Task) -> None:
        self._refs[self._remote.remote(self._objective_ref, task, self.threads)] = task

    def collect(self) -> List[TaskResult]:
        if not self._refs:
            return []
        ready, rest = self.ray.wait(list(self._refs), num_returns=1)
        if rest:  # whatever else finished meanwhile
            more, _ = self.ray.wait(rest, num_returns=len(rest), timeout=0)
            ready = list(ready) + list(more)
        results = []
        for ref in ready:
            task = self._refs.pop(ref)
            try:
                results.append(self.ray.get(ref))
            except self.ray.exceptions.RayTaskError as error:
                cause = error.as_instanceof_cause() if hasattr(error, "as_instanceof_cause") else error
                raise cause from None  # a set-up error raised by run_task
            except (self.ray.exceptions.WorkerCrashedError,
                    self.ray.exceptions.NodeDiedError) as error:  # retries used up
                now = time.time()
                results.append(TaskResult(task.id, "failed", FAILED_FITNESS, {},
                                          f"WorkerDied: {error}", None, now, now, worker_name()))
        return results

    def close(self) -> None:
        for ref in list(self._refs):
            self.ray.cancel(ref, force=True)
        self._refs.clear()
        if self._started_ray:
            self.ray.shutdown()
