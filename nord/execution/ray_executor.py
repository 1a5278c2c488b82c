"""Ray: evaluations spread over a cluster (``pip install nord[ray]``).

``RayExecutor(objective, workers=W)`` starts a local Ray instance (W CPUs)
unless Ray is already initialised or ``address`` names an existing cluster
(``ray start --head`` on one machine, ``ray start --address <head>:6379`` on
the others, then ``--ray-address auto`` or ``<head>:6379``). Each evaluation
is a Ray task asking for ``cpus`` CPUs (its torch threads) and ``gpus`` GPUs;
a request that no node of the cluster can meet is refused at once rather
than left waiting forever. A task whose worker died is submitted again, up
to ``max_retries`` times, each time counted in its result's ``attempts``;
after that it comes back ``failed``. The objective is shipped once to the
object store; each Ray worker process loads and prepares it (its tables,
its data) on its first task and keeps it for the tasks that follow.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
import time
from typing import Dict, Iterable, List, Optional, Tuple

from nord.errors import ExecutorError, MissingDependencyError, NordError, SettingsError
from nord.execution.executors import Executor
from nord.execution.tasks import (FAILED_FITNESS, Task, TaskResult, prepare_in_worker,
                                  run_task, worker_name)

__all__ = ["RayExecutor", "import_ray", "resource_shortfall"]

log = logging.getLogger(__name__)

#: Ray's errors for a task whose worker process or node went away
WORKER_DEATHS = ("WorkerCrashedError", "NodeDiedError", "OutOfMemoryError",
                 "LocalRayletDiedError")


def import_ray():
    """The ``ray`` module, or a :class:`MissingDependencyError` saying how to get it."""
    try:
        import ray
    except ImportError as error:
        raise MissingDependencyError(
            "the Ray executor needs Ray: pip install 'nord[ray]' (or pip install ray); "
            "or use --executor process on one machine") from error
    return ray


def first_line(error: BaseException) -> str:
    """The first line of an error's message (Ray's errors carry whole tracebacks)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


# ----------------------------------------------------------------- the worker side
_loaded: Tuple[Optional[str], object] = (None, None)  # (object ref id, objective) per worker


def _objective_in_worker(boxed: list):
    """The objective whose object ref ``boxed`` holds, loaded and prepared once per Ray
    worker process: an objective's tables or data are loaded on its first task there
    and reused by the next ones (the ref is boxed so Ray does not fetch it per task)."""
    global _loaded
    ref = boxed[0]
    if _loaded[0] != ref.hex():
        try:
            objective = import_ray().get(ref)
        except Exception as error:
            raise ExecutorError(
                f"the objective could not be loaded on the Ray worker {worker_name()} "
                f"({type(error).__name__}: {first_line(error)}); its class must be "
                f"importable on every Ray node: define it in a module installed there "
                f"(not in a test file or a module only the driver can see)") from None
        prepare_in_worker(objective)
        _loaded = (ref.hex(), objective)
    return _loaded[1]


def _use_threads(threads: int) -> None:
    """Evaluate on ``threads`` torch threads, without importing torch for objectives
    that do not use it (a table lookup): torch reads the variable when imported."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)


def _evaluate(boxed: list, task: Task, threads: int) -> TaskResult:
    _use_threads(threads)  # the task's CPUs, whatever the worker started with
    return run_task(_objective_in_worker(boxed), task)


# ----------------------------------------------------------------- the driver side
def resource_shortfall(nodes: Iterable[dict], cpus: float, gpus: float) -> Optional[str]:
    """Why no alive node of ``nodes`` (as ``ray.nodes()`` lists them) can run a task
    asking for ``cpus`` CPUs and ``gpus`` GPUs, or None when one can."""
    alive = [node.get("Resources", {}) for node in nodes if node.get("Alive", True)]
    if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in alive):
        return None
    if not alive:
        return "the Ray cluster has no alive node"
    most = max(alive, key=lambda r: (r.get("GPU", 0), r.get("CPU", 0)))
    return (f"each evaluation asks for {cpus:g} CPU(s) and {gpus:g} GPU(s), but the "
            f"largest node of the Ray cluster has {most.get('CPU', 0):g} CPU(s) and "
            f"{most.get('GPU', 0):g} GPU(s)")


def _task_error(error: Exception, task: Task) -> Exception:
    """What a Ray task that raised means here: the library's own error (a set-up error
    from :func:`run_task`, or the objective not loading) as it was raised in the
    worker, anything else as an :class:`ExecutorError`."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, NordError):
        return cause
    if cause is None:
        what = first_line(error)
    else:
        what = f"{type(cause).__name__}: {first_line(cause)}"
    return ExecutorError(f"the Ray task evaluating candidate {task.id} failed outside the "
                         f"evaluation ({what}); see the Ray worker logs "
                         f"(/tmp/ray/session_latest/logs), or run with --executor serial "
                         f"to see it raised here")


class RayExecutor(Executor):
    """Evaluates up to ``workers`` tasks at once as Ray tasks."""

    def __init__(self, objective, workers: int = 1, address: Optional[str] = None,
                 cpus: float = 1.0, gpus: float = 0.0, max_retries: int = 3,
                 init_options: Optional[dict] = None) -> None:
        super().__init__(objective)
        if isinstance(workers, bool) or int(workers) < 1:
            raise SettingsError(f"workers must be at least 1, got {workers}: pass --workers 1 "
                                f"or more")
        if cpus <= 0 or gpus < 0:
            raise SettingsError(f"each Ray evaluation needs cpus > 0 and gpus >= 0, got "
                                f"cpus={cpus:g}, gpus={gpus:g}: pass --threads 1 or more and "
                                f"--gpus 0 or more")
        self.ray = import_ray()
        self.capacity = int(workers)
        self._started_ray = self._connect(address, cpus, gpus, init_options)
        self._check_resources(cpus, gpus, cluster=bool(address))
        # retried here rather than by Ray, so that each result can say how many it took
        self._remote = self.ray.remote(_evaluate).options(num_cpus=cpus, num_gpus=gpus,
                                                          max_retries=0)
        self.max_retries = int(max_retries)
        self._objective_ref = self.ray.put(objective)
        self.threads = max(1, int(cpus))
        self._refs: Dict[object, Task] = {}
        self._attempts: Dict[int, int] = {}
        self.resubmitted: List[int] = []  # ids evaluated again after their worker died

    def _connect(self, address: Optional[str], cpus: float, gpus: float,
                 init_options: Optional[dict]) -> bool:
        """Join the Ray instance already initialised, or start or reach one; whether
        this executor started it (and so shuts it down on close)."""
        ray = self.ray
        if ray.is_initialized():
            return False
        options = dict(init_options or {})
        if address:
            options["address"] = address
        else:
            options.setdefault("num_cpus", max(self.capacity, math.ceil(cpus * self.capacity)))
            if not gpus:
                options.setdefault("num_gpus", 0)  # else Ray counts the GPUs there are
        options.setdefault("log_to_driver", False)
        options.setdefault("include_dashboard", False)
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError) as error:
            where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
            raise ExecutorError(f"could not start or reach {where}: {error}; start one "
                                f"with `ray start --head`, or leave --ray-address out"
                                ) from error
        return True

    def _check_resources(self, cpus: float, gpus: float, cluster: bool) -> None:
        """Refuse a task no node of this machine's instance can run (Ray would keep
        it waiting forever); on a cluster (``address`` given), which an autoscaler
        may grow, warn instead."""
        shortfall = resource_shortfall(self.ray.nodes(), cpus, gpus)
        if shortfall is None:
            return
        if cluster:
            log.warning("%s: evaluations wait until a node that has them joins the cluster",
                        shortfall)
            return
        if self._started_ray:
            self.ray.shutdown()
        raise ExecutorError(f"{shortfall}, so no evaluation could ever start: lower --gpus "
                            f"or --threads, or add a node that has them "
                            f"(ray start --address <head>:6379)")

    @property
    def in_flight(self) -> int:
        return len(self._refs)

    def submit(self, task: Task) -> None:
        self._attempts[task.id] = self._attempts.get(task.id, 0) + 1
        ref = self._remote.remote([self._objective_ref], task, self.threads)
        self._refs[ref] = task

    def _worker_deaths(self) -> tuple:
        exceptions = self.ray.exceptions
        return tuple(getattr(exceptions, name) for name in WORKER_DEATHS
                     if hasattr(exceptions, name))

    def _ready(self) -> list:
        """The refs of finished tasks: waits for one, then takes any others done too."""
        ready, rest = self.ray.wait(list(self._refs), num_returns=1)
        if rest:
            more, _ = self.ray.wait(rest, num_returns=len(rest), timeout=0)
            ready = list(ready) + list(more)
        return ready

    def collect(self) -> List[TaskResult]:
        results: List[TaskResult] = []
        while self._refs and not results:  # a retried task alone is not a result yet
            for ref in self._ready():
                result = self._result(self._refs.pop(ref), ref)
                if result is not None:
                    results.append(result)
        return results

    def _result(self, task: Task, ref) -> Optional[TaskResult]:
        """The result of ``task``, or None where it was submitted again."""
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as error:
            raise _task_error(error, task) from None
        except self._worker_deaths() as error:
            return self._worker_died(task, error)
        return dataclasses.replace(result, attempts=self._attempts.pop(task.id, 1))

    def _worker_died(self, task: Task, error: Exception) -> Optional[TaskResult]:
        attempts = self._attempts[task.id]
        if attempts <= self.max_retries:
            log.warning("the Ray worker evaluating candidate %d died (attempt %d): %s; "
                        "submitting it again", task.id, attempts, error)
            self.resubmitted.append(task.id)
            self.submit(task)
            return None
        now = time.time()
        self._attempts.pop(task.id)
        return TaskResult(task.id, "failed", FAILED_FITNESS, {},
                          f"WorkerDied: the worker evaluating this candidate died {attempts} "
                          f"times; the last time: {error}", None, now, now, worker_name(),
                          attempts)

    def close(self) -> None:
        for ref in list(self._refs):
            self.ray.cancel(ref, force=True)
        self._refs.clear()
        if self._started_ray:
            self.ray.shutdown()
            self._started_ray = False
