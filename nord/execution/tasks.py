"""One evaluation as a unit of work, and how its outcome is classified.

:func:`run_task` is what every executor runs, in whichever process: it
evaluates, times, and sorts the outcome into a status. Errors that concern
one architecture (outside the search space, not in the table, a crash while
training it) become a recorded result with the thesis's fitness 0; errors
that concern the whole set-up (missing data, a missing dependency, a metric
the table lacks) are raised, since every other candidate would fail the same.
"""

from __future__ import annotations

import math
import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from nord.errors import (DataNotFoundError, DescriptorError, MissingDependencyError,
                         NotInTableError, OutOfSearchSpaceError, StudyError,
                         UnknownDatasetError)

__all__ = ["Task", "TaskResult", "run_task", "prepare_in_worker", "SETUP_ERRORS",
           "FAILED_FITNESS", "worker_name", "set_worker_device"]

#: fitness given to an evaluation that failed, as the thesis does
FAILED_FITNESS = 0.0

#: errors that stop the run instead of failing one candidate (a study's damaged trial
#: among them: it would be recorded as an invalid result otherwise)
SETUP_ERRORS = (DataNotFoundError, MissingDependencyError, UnknownDatasetError, StudyError)


@dataclass(frozen=True)
class Task:
    id: int
    descriptor: Any  # NeuralDescriptor


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one task; ``attempts``: evaluations begun (more than 1 where a
    worker died evaluating it and it was evaluated again; 0 where none was needed)."""

    id: int
    status: str
    fitness: float
    metrics: Dict[str, Any] = field(default_factory=dict)
    error: Optional[str] = None
    cost: Optional[float] = None
    started_at: float = 0.0
    finished_at: float = 0.0
    worker: str = ""
    attempts: int = 1


_worker_device = ""  # the accelerator this process was given, if any ("cuda:1")


def set_worker_device(device: str) -> None:
    """Name the accelerator this worker process evaluates on (shown in worker names)."""
    global _worker_device
    _worker_device = str(device)


def worker_name() -> str:
    """``host:pid``, and ``:device`` where the worker was given an accelerator."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    return f"{name}:{_worker_device}" if _worker_device else name


def prepare_in_worker(objective) -> None:
    """Load what ``objective`` evaluates with (its table, its data) once, when a worker
    process takes it up, rather than on its first task (objectives without
    ``prepare`` load lazily)."""
    prepare = getattr(objective, "prepare", None)
    if prepare is not None:
        prepare()


def run_task(objective, task: Task) -> TaskResult:
    """Evaluate one task and classify the outcome (see the module docstring)."""
    started = time.time()
    try:
        outcome = objective.evaluate(task.descriptor)
    except SETUP_ERRORS:
        raise
    except (OutOfSearchSpaceError, DescriptorError) as error:
        status, message = "invalid", f"{type(error).__name__}: {error}"
    except NotInTableError as error:
        status, message = "not_in_table", f"{type(error).__name__}: {error}"
    except Exception as error:  # recorded with its traceback, never swallowed
        status = "failed"
        message = f"{type(error).__name__}: {error}\n{traceback.format_exc()}"
    else:
        failed = getattr(outcome, "failed", False)
        error = getattr(outcome, "error", None)
        fitness = FAILED_FITNESS if failed else float(outcome.fitness)
        if not math.isfinite(fitness):  # a NaN would be stored as NULL and poison the store
            failed, fitness = True, FAILED_FITNESS
            error = (f"NonFiniteFitness: the objective scored this candidate "
                     f"{outcome.fitness} (a table cell without the metric, or a diverged "
                     f"score); recorded as failed with fitness {FAILED_FITNESS}")
        return TaskResult(task.id, "failed" if failed else "ok", fitness,
                          dict(outcome.metrics), error, outcome.cost,
                          started, time.time(), worker_name())
    return TaskResult(task.id, status, FAILED_FITNESS, {}, message, None, started, time.time(),
                      worker_name())
