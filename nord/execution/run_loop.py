"""The run loop: the one place where strategy, objective, executor and store meet.

For each candidate: ask the strategy, commit the candidate (and the strategy
state) to the store, evaluate it (or reuse a cached isomorphic result), commit
the result, then tell the strategy and commit its new state. See
:mod:`nord.execution.store` for why this order makes any crash resumable.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from nord.design.strategies.base import Strategy, StrategyError
from nord.execution.executors import Executor, SerialExecutor
from nord.execution.store import EvaluationRecord, RunStore
from nord.execution.tasks import FAILED_FITNESS, SETUP_ERRORS, Task, TaskResult, worker_name

__all__ = ["SearchRun", "RunSummary", "ProgressEvent"]

log = logging.getLogger(__name__)


@dataclass
class ProgressEvent:
    """Passed to callbacks after each result is committed and told."""

    record: EvaluationRecord
    done: int
    budget: int
    best_fitness: float


@dataclass
class RunSummary:
    evaluations: int
    budget: int
    statuses: Dict[str, int]
    best: Optional[EvaluationRecord]
    wall_seconds: float
    strategy_seconds_per_step: float
    store_seconds_per_step: float
    simulated_cost: float
    resumed: bool = False
    notes: List[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the end of a command-line run."""
        best = "none" if self.best is None else f"{self.best.fitness:.4g} (#{self.best.id})"
        failures = sum(v for k, v in self.statuses.items() if k not in ("ok", "cached"))
        return (f"{self.evaluations}/{self.budget} evaluations, best fitness {best}, "
                f"{self.statuses.get('cached', 0)} cached, {failures} failed or invalid, "
                f"{self.wall_seconds:.1f} s, search logic "
                f"{1000 * self.strategy_seconds_per_step:.3f} ms/step")


class SearchRun:
    """Run ``strategy`` against ``objective`` for ``budget`` evaluations.

    ``cache=True`` reuses the result of an architecture whose canonical key
    (``objective.key``) was already evaluated in this run. A run whose store
    already holds a strategy state resumes from it.
    """

    def __init__(self, strategy: Strategy, objective, store: RunStore, budget: int,
                 executor: Optional[Executor] = None, cache: bool = True,
                 callbacks: Sequence[Callable[[ProgressEvent], None]] = ()) -> None:
        if int(budget) < 1:
            raise StrategyError(f"budget must be at least 1 evaluation, got {budget}")
        self.strategy = strategy
        self.space = strategy.space
        self.objective = objective
        self.store = store
        self.budget = int(budget)
        self.executor = executor or SerialExecutor(objective)
        self.cache = bool(cache)
        self.callbacks = list(callbacks)
        self._store_seconds = 0.0
        self._steps = 0
        self._best = float("-inf")

    # -------------------------------------------------------------- running
    def run(self) -> RunSummary:
        start = time.perf_counter()
        resumed = self._restore()
        while True:
            self._fill()
            if self.executor.in_flight == 0:
                if self.strategy.next_id >= self.budget and not self.strategy.pending:
                    break
                if self.strategy.next_id >= self.budget:
                    raise StrategyError(
                        f"candidates {sorted(self.strategy.pending)} are awaiting results that "
                        f"no executor holds; the store at {self.store.path} may be inconsistent")
                raise StrategyError("the strategy proposes nothing while no evaluation is in "
                                    "flight; it would wait forever")
            for result in self.executor.collect():
                self._finish(result)
        wall = time.perf_counter() - start
        meta = self.store.meta()
        total_wall = float(meta.get("wall_seconds", 0.0)) + wall
        self.store.set_meta(wall_seconds=total_wall, finished=True)
        return self.summary(total_wall, resumed)

    def _restore(self) -> bool:
        state = self.store.load_state()
        if state is None:
            return False
        self.strategy.load_state_dict(state)
        replayed = self.store.untold()
        for record in replayed:
            self._tell(record)
        pending = self.store.pending()
        for record in pending:
            self.executor.submit(Task(record.id, self._descriptor_from_record(record)))
        for record in self.store.finished():
            self._best = max(self._best, record.fitness)
        log.info("resumed %s: %d results told again, %d pending evaluations resubmitted",
                 self.store.path, len(replayed), len(pending))
        return True

    def _descriptor_from_record(self, record: EvaluationRecord):
        if record.descriptor is not None:
            from nord.neural_nets import NeuralDescriptor
            return NeuralDescriptor.from_json(record.descriptor)
        return self.space.to_descriptor(self.space.decode(record.architecture))

    def _fill(self) -> None:
        while (self.executor.in_flight < self.executor.capacity
               and self.strategy.next_id < self.budget):
            t0 = time.perf_counter()
            candidate = self.strategy.ask()
            ask_seconds = time.perf_counter() - t0
            if candidate is None:
                return
            self._submit(candidate, ask_seconds)

    def _submit(self, candidate, ask_seconds: float) -> None:
        encoded = self.space.encode(candidate.architecture)
        descriptor, key, problem = None, None, None
        try:
            descriptor = self.space.to_descriptor(candidate.architecture)
            key = self.objective.key(descriptor)
        except SETUP_ERRORS:
            raise
        except Exception as error:  # an architecture that cannot even be described
            problem = f"{type(error).__name__}: {error}"
        t0 = time.perf_counter()
        self.store.record_ask(candidate.id, encoded,
                              None if descriptor is None else descriptor.to_json(), key,
                              self.strategy.state_dict(), ask_seconds)
        self._store_seconds += time.perf_counter() - t0
        now = time.time()
        if problem is not None:
            self._finish(TaskResult(candidate.id, "invalid", FAILED_FITNESS, {}, problem, None,
                                    now, now, worker_name()))
            return
        hit = self.store.lookup(key) if self.cache and key is not None else None
        if hit is not None:
            self._finish(TaskResult(candidate.id, "cached", hit.fitness, hit.metrics, hit.error,
                                    0.0, now, now, worker_name()), cached_from=hit.id)
            return
        self.executor.submit(Task(candidate.id, descriptor))

    def _finish(self, result: TaskResult, cached_from: Optional[int] = None) -> None:
        t0 = time.perf_counter()
        self.store.record_result(result.id, result.status, result.fitness, result.metrics,
                                 result.error, result.started_at, result.finished_at,
                                 result.cost, result.worker, cached_from)
        self._store_seconds += time.perf_counter() - t0
        if result.status not in ("ok", "cached"):
            log.warning("candidate %d %s: %s", result.id, result.status,
                        (result.error or "").splitlines()[0] if result.error else "")
        record = self.store.records("id = ?", (result.id,))[0]
        self._tell(record)

    def _tell(self, record: EvaluationRecord) -> None:
        t0 = time.perf_counter()
        self.strategy.tell(record.id, record.fitness)
        tell_seconds = time.perf_counter() - t0
        t1 = time.perf_counter()
        self.store.record_tell(record.id, self.strategy.state_dict(), tell_seconds)
        self._store_seconds += time.perf_counter() - t1
        self._steps += 1
        self._best = max(self._best, record.fitness)
        event = ProgressEvent(record, self.strategy.told, self.budget, self._best)
        for callback in self.callbacks:
            callback(event)

    # -------------------------------------------------------------- summary
    def summary(self, wall_seconds: float, resumed: bool = False) -> RunSummary:
        records = self.store.finished()
        statuses = dict(Counter(r.status for r in records))
        logic = [(r.ask_seconds or 0.0) + (r.tell_seconds or 0.0) for r in records]
        return RunSummary(
            evaluations=len(records), budget=self.budget, statuses=statuses,
            best=self.store.best(), wall_seconds=wall_seconds,
            strategy_seconds_per_step=sum(logic) / max(1, len(logic)),
            store_seconds_per_step=self._store_seconds / max(1, self._steps),
            simulated_cost=sum(r.cost or 0.0 for r in records), resumed=resumed)
