"""The run loop: the one place where strategy, objective, executor and store meet.

For each candidate: ask the strategy, commit the candidate (and the ask, in the
step log) to the store, evaluate it (or reuse a cached isomorphic result),
commit the result, then tell the strategy and log the tell. Every
``checkpoint_every`` steps the strategy's state is saved with the step; on
resume it is loaded and the steps logged since are replayed, so saving costs
the same at every step however large the state grows. See
:mod:`nord.execution.store` for why this order makes any crash resumable.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from nord.design.strategies.base import Strategy, StrategyError
from nord.errors import StrategySettingsError
from nord.execution.executors import Executor, SerialExecutor
from nord.execution.store import EvaluationRecord, RunStore, StoreError
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

    #: steps (asks and tells) between two saves of the strategy's whole state; a
    #: resumed run replays at most this many (each checked against the store)
    checkpoint_every = 100
    _since_checkpoint: Optional[int] = None  # steps since the last save (None: no save yet)

    def __init__(self, strategy: Strategy, objective, store: RunStore, budget: int,
                 executor: Optional[Executor] = None, cache: bool = True,
                 callbacks: Sequence[Callable[[ProgressEvent], None]] = ()) -> None:
        if int(budget) < 1:
            raise StrategySettingsError(f"budget must be at least 1 evaluation, got "
                                        f"{budget}")
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
        if self._since_checkpoint:  # a finished run's state, with nothing left to replay
            self.store.save_checkpoint(self.strategy.state_dict())
            self._since_checkpoint = 0
        wall = time.perf_counter() - start
        meta = self.store.meta()
        total_wall = float(meta.get("wall_seconds", 0.0)) + wall
        self.store.set_meta(wall_seconds=total_wall, finished=True)
        return self.summary(total_wall, resumed)

    def _restore(self) -> bool:
        self._since_checkpoint = None
        checkpoint = self.store.load_checkpoint()
        if checkpoint is None:
            return False
        state, step = checkpoint
        self.strategy.load_state_dict(state)
        steps = self.store.steps_since(step)
        self._replay(steps)
        self._check_accounts()
        self._since_checkpoint = len(steps)
        replayed = self.store.untold()
        for record in replayed:
            self._tell(record)
        pending = self.store.pending()
        for record in pending:
            self._resubmit(record)
        for record in self.store.finished():
            self._best = max(self._best, record.fitness)
        log.info("resumed %s: %d steps replayed, %d results told again, %d pending "
                 "evaluations resubmitted", self.store.path, len(steps), len(replayed),
                 len(pending))
        return True

    def _replay(self, steps) -> None:
        """Redo the asks and tells logged since the checkpoint, in their order; each
        replayed ask must propose the candidate the store recorded."""
        records = {r.id: r for r in self.store.records()} if steps else {}
        for number, (kind, candidate_id) in enumerate(steps, 1):
            record = records.get(candidate_id)
            if kind == "ask" and record is not None:
                candidate = self.strategy.ask()
                got = None if candidate is None else (
                    candidate.id, json.loads(json.dumps(self.space.encode(candidate.architecture))))
                if got == (record.id, record.architecture):
                    continue
                raise StoreError(
                    f"resuming {self.store.path}: replayed step {number} of {len(steps)} since "
                    f"the saved strategy state asks {_short(got)}, but the store recorded "
                    f"candidate {record.id} as {_short(record.architecture)}; the strategy "
                    f"was built with other settings or another NORD version: resume with "
                    f"the ones the run started with, or start a new run in another --out folder")
            if kind == "tell" and record is not None and record.status != "pending":
                self.strategy.tell(candidate_id, record.fitness)
                continue
            raise StoreError(f"the step log of {self.store.path} holds a {kind!r} of candidate "
                             f"{candidate_id}, which the store has no matching record of; the "
                             f"store is damaged: start a new run in another --out folder")

    def _check_accounts(self) -> None:
        """After the replay the strategy must have asked what the store holds, and be
        awaiting exactly the candidates not yet told."""
        asked, waiting = self.store.count(), [r.id for r in self.store.records("told = 0")]
        if self.strategy.next_id != asked or sorted(self.strategy.pending) != waiting:
            raise StoreError(
                f"the strategy state and step log in {self.store.path} do not account for the "
                f"store's candidates (the strategy asked {self.strategy.next_id} and awaits "
                f"{_short(sorted(self.strategy.pending), 40)}; the store holds {asked} and "
                f"{_short(waiting, 40)} untold); the store is damaged: start a new run in "
                f"another --out folder")

    def _resubmit(self, record: EvaluationRecord) -> None:
        """Evaluate again a candidate with no result, unless its ask would have ended it
        without an evaluation (invalid, or cached) had the run not been killed between
        committing the ask and that."""
        descriptor, key, problem = None, record.hash, None
        try:
            descriptor = self._descriptor_from_record(record)
            if key is None:  # the ask found no key: the architecture cannot be described
                key = self.objective.key(descriptor)
        except SETUP_ERRORS:
            raise
        except Exception as error:
            problem = f"{type(error).__name__}: {error}"
        if problem is not None:
            self._end_unevaluated(record.id, problem=problem)
            return
        hit = self.store.lookup(key) if self.cache else None
        if hit is not None and self.store.told_before_ask(hit.id, record.id):
            self._end_unevaluated(record.id, hit=hit)
            return
        self.store.record_start(record.id)  # the evaluation the stopped run had begun
        self.executor.submit(Task(record.id, descriptor))

    def _end_unevaluated(self, candidate_id: int, problem: Optional[str] = None,
                         hit: Optional[EvaluationRecord] = None) -> None:
        """Record a candidate that needs no evaluation: ``invalid`` with ``problem``,
        or ``cached`` from the isomorphic result ``hit``."""
        now = time.time()
        if problem is not None:
            self._finish(TaskResult(candidate_id, "invalid", FAILED_FITNESS, {}, problem, None,
                                    now, now, worker_name(), attempts=0))
        else:
            self._finish(TaskResult(candidate_id, "cached", hit.fitness, hit.metrics, hit.error,
                                    0.0, now, now, worker_name(), attempts=0),
                         cached_from=hit.id)

    def _checkpoint(self) -> Optional[dict]:
        """The strategy state to save with this step: at the first step and every
        ``checkpoint_every`` steps after, else ``None`` (a resume replays the steps)."""
        since = self._since_checkpoint
        if since is not None and since + 1 < self.checkpoint_every:
            self._since_checkpoint = since + 1
            return None
        self._since_checkpoint = 0
        return self.strategy.state_dict()

    def _descriptor_from_record(self, record: EvaluationRecord):
        if record.descriptor is not None:
            return self.space.descriptor_from_json(record.descriptor)
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
                              self._checkpoint(), ask_seconds)
        self._store_seconds += time.perf_counter() - t0
        if problem is not None:
            self._end_unevaluated(candidate.id, problem=problem)
            return
        hit = self.store.lookup(key) if self.cache and key is not None else None
        if hit is not None:
            self._end_unevaluated(candidate.id, hit=hit)
            return
        self.executor.submit(Task(candidate.id, descriptor))

    def _finish(self, result: TaskResult, cached_from: Optional[int] = None) -> None:
        t0 = time.perf_counter()
        self.store.record_result(result.id, result.status, result.fitness, result.metrics,
                                 result.error, result.started_at, result.finished_at,
                                 result.cost, result.worker, cached_from, result.attempts)
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
        self.store.record_tell(record.id, self._checkpoint(), tell_seconds)
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


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
