"""Ray: evaluations spread over a cluster (``pip install nord[ray]``).

``RayExecutor(objective, workers=W)`` starts a local Ray instance (W CPUs)
unless ``address`` names an existing cluster (``ray start --head`` on one
machine, ``ray start --address <head>:6379`` on the others, then
``--ray-address auto`` or ``<head>:6379``). Each evaluation is a Ray task
asking for ``cpus`` CPUs (its torch threads) and ``gpus`` GPUs. A task whose
worker died is submitted again, up to ``max_retries`` times, each time counted
in its result's ``attempts``; after that it comes back ``failed``. The
objective is shipped once to the object store and each task loads its tables
lazily.
"""

from __future__ import annotations

import dataclasses
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
        if isinstance(workers, bool) or int(workers) < 1:
            from nord.errors import SettingsError
            raise SettingsError(f"workers must be at least 1, got {workers}: pass --workers 1 "
                                f"or more")
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
                from nord.errors import ExecutorError
                where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
                raise ExecutorError(f"could not start or reach {where}: {error}; start one "
                                    f"with `ray start --head`, or leave --ray-address out"
                                    ) from error
            self._started_ray = True
        else:
            self._started_ray = False
        # retried here rather than by Ray, so that each result can say how many it took
        self._remote = ray.remote(_evaluate).options(num_cpus=cpus, num_gpus=gpus,
                                                      max_retries=0)
        self.max_retries = int(max_retries)
        self._objective_ref = ray.put(objective)
        self.threads = max(1, int(cpus))
        self._refs: Dict[object, Task] = {}
        self._attempts: Dict[int, int] = {}
        self.resubmitted: List[int] = []  # ids evaluated again after their worker died

    @property
    def in_flight(self) -> int:
        return len(self._refs)

    def submit(self, task: Task) -> None:
        self._attempts[task.id] = self._attempts.get(task.id, 0) + 1
        self._refs[self._remote.remote(self._objective_ref, task, self.threads)] = task

    def _worker_deaths(self) -> tuple:
        exceptions = self.ray.exceptions
        return tuple(getattr(exceptions, name) for name in
                     ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError")
                     if hasattr(exceptions, name))

    def collect(self) -> List[TaskResult]:
        results: List[TaskResult] = []
        while self._refs and not results:  # a retried task alone is not a result yet
            ready, rest = self.ray.wait(list(self._refs), num_returns=1)
            if rest:  # whatever else finished meanwhile
                more, _ = self.ray.wait(rest, num_returns=len(rest), timeout=0)
                ready = list(ready) + list(more)
            for ref in ready:
                task = self._refs.pop(ref)
                try:
                    result = self.ray.get(ref)
                except self.ray.exceptions.RayTaskError as error:
                    cause = (error.as_instanceof_cause() if hasattr(error, "as_instanceof_cause")
                             else error)
                    raise cause from None  # a set-up error raised by run_task
                except self._worker_deaths() as error:
                    attempts = self._attempts[task.id]
                    if attempts <= self.max_retries:
                        log.warning("the Ray worker evaluating candidate %d died (attempt %d): "
                                    "%s; submitting it again", task.id, attempts, error)
                        self.resubmitted.append(task.id)
                        self.submit(task)
                        continue
                    now = time.time()
                    self._attempts.pop(task.id)
                    results.append(TaskResult(
                        task.id, "failed", FAILED_FITNESS, {},
                        f"WorkerDied: the worker evaluating this candidate died {attempts} "
                        f"times; the last time: {error}", None, now, now, worker_name(),
                        attempts))
                    continue
                results.append(dataclasses.replace(
                    result, attempts=self._attempts.pop(task.id, 1)))
        return results

    def close(self) -> None:
        for ref in list(self._refs):
            self.ray.cancel(ref, force=True)
        self._refs.clear()
        if self._started_ray:
            self.ray.shutdown()
