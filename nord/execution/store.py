"""The run store: one SQLite file per run (``<out>/run.sqlite``).

Every candidate is written when it is asked (status ``pending``) and updated
when its result arrives, in a committed transaction, *before* the strategy is
told. The strategy's state (random generator included) is saved after every
ask and every tell. A run killed at any point (``kill -9`` included) therefore
resumes with nothing lost and nothing repeated: the saved state is loaded,
results committed but not yet told are told, and candidates still pending are
evaluated again.

The file uses SQLite's write-ahead log with ``synchronous=NORMAL``: a commit
survives the process being killed (not necessarily a power cut), without an
``fsync`` per evaluation.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from nord import safe_pickle
from nord.errors import NordError

__all__ = ["RunStore", "EvaluationRecord", "StoreError", "STATUSES", "MEMORY"]

#: the path of a store kept in memory (studies of many short benchmark runs)
MEMORY = ":memory:"

#: outcomes of an evaluation; every status but ``ok`` and ``cached`` scores fitness 0
STATUSES = ("pending", "ok", "cached", "invalid", "not_in_table", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY,
    architecture TEXT NOT NULL,
    descriptor TEXT,
    hash TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    fitness REAL,
    metrics TEXT,
    error TEXT,
    cached_from INTEGER,
    asked_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    cost REAL,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    result_seq INTEGER,
    told INTEGER NOT NULL DEFAULT 0,
    ask_seconds REAL,
    tell_seconds REAL
);
CREATE INDEX IF NOT EXISTS evaluations_hash ON evaluations (hash);
CREATE TABLE IF NOT EXISTS strategy_state (id INTEGER PRIMARY KEY CHECK (id = 1),
                                           saved_at REAL NOT NULL, state BLOB NOT NULL);
"""


class StoreError(NordError):
    """The run store is missing, from another run, or inconsistent."""


@dataclass(frozen=True)
class EvaluationRecord:
    """One row of the ``evaluations`` table."""

    id: int
    architecture: Any
    descriptor: Optional[str]
    hash: Optional[str]
    status: str
    fitness: Optional[float]
    metrics: Dict[str, Any]
    error: Optional[str]
    cached_from: Optional[int]
    asked_at: float
    started_at: Optional[float]
    finished_at: Optional[float]
    cost: Optional[float]
    worker: Optional[str]
    attempts: int
    result_seq: Optional[int]
    told: bool
    ask_seconds: Optional[float]
    tell_seconds: Optional[float]

    @property
    def eval_seconds(self) -> Optional[float]:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


class RunStore:
    """Open (creating if needed) the run store at ``path``.

    ``RunStore(":memory:")`` keeps the store in memory (nothing survives the
    process; for many short benchmark runs).

    >>> store = RunStore('runs/x/run.sqlite')      # doctest: +SKIP
    >>> best = store.best()                         # doctest: +SKIP
    """

    def __init__(self, path, create: bool = True) -> None:
        self.path = Path(path)
        if str(path) == MEMORY:
            self.db = sqlite3.connect(MEMORY, isolation_level=None)
        else:
            if not self.path.exists() and not create:
                raise StoreError(f"no run store at {self.path}; is this the --out folder of "
                                 f"a `nord search` run?")
            if self.path.is_dir():
                raise StoreError(f"{self.path} is a folder, not a run store")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
        try:
            if str(path) != MEMORY:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            self._result_seq = self.db.execute(
                "SELECT COALESCE(MAX(result_seq), 0) FROM evaluations").fetchone()[0]
        except sqlite3.DatabaseError as error:
            self.db.close()
            raise StoreError(f"{self.path} is not a readable run store ({error}); it is "
                             f"damaged or not a NORD run: start a new run in another "
                             f"--out folder") from error

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ meta
    def set_meta(self, **values: Any) -> None:
        with self._transaction():
            for key, value in values.items():
                self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                (key, json.dumps(value)))

    def meta(self) -> Dict[str, Any]:
        try:
            return {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}
        except ValueError as error:
            raise StoreError(f"the settings in {self.path} do not parse ({error}); the "
                             f"store is damaged: start a new run in another --out folder"
                             ) from error

    # ------------------------------------------------------------- writing
    def record_ask(self, candidate_id: int, architecture: Any, descriptor: Optional[str],
                   key: Optional[str], state: dict, ask_seconds: float) -> None:
        """A new pending candidate and the strategy state after asking, atomically."""
        with self._transaction():
            self.db.execute(
                "INSERT INTO evaluations (id, architecture, descriptor, hash, asked_at, ask_seconds)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (candidate_id, json.dumps(architecture), descriptor, key, time.time(), ask_seconds))
            self._save_state(state)

    def record_start(self, candidate_id: int, worker: Optional[str] = None) -> None:
        with self._transaction():
            self.db.execute("UPDATE evaluations SET attempts = attempts + 1, worker = ? "
                            "WHERE id = ?", (worker, candidate_id))

    def record_result(self, candidate_id: int, status: str, fitness: float,
                      metrics: Optional[dict] = None, error: Optional[str] = None,
                      started_at: Optional[float] = None, finished_at: Optional[float] = None,
                      cost: Optional[float] = None, worker: Optional[str] = None,
                      cached_from: Optional[int] = None) -> None:
        """Commit one result (before the strategy hears of it)."""
        if status not in STATUSES[1:]:
            raise StoreError(f"unknown status {status!r}; one of {STATUSES[1:]}")
        with self._transaction():
            row = self.db.execute("SELECT status FROM evaluations WHERE id = ?",
                                  (candidate_id,)).fetchone()
            if row is None:
                raise StoreError(f"candidate {candidate_id} was never asked in this run")
            if row[0] != "pending":
                raise StoreError(f"candidate {candidate_id} already has a result ({row[0]}); "
                                 f"each evaluation is recorded once")
            self._result_seq += 1
            self.db.execute(
                "UPDATE evaluations SET status=?, fitness=?, metrics=?, error=?, started_at=?, "
                "finished_at=?, cost=?, worker=COALESCE(?, worker), cached_from=?, result_seq=? "
                "WHERE id=?",
                (status, float(fitness), json.dumps(metrics or {}), error, started_at,
                 finished_at, cost, worker, cached_from, self._result_seq, candidate_id))

    def record_tell(self, candidate_id: int, state: dict, tell_seconds: float) -> None:
        """Mark a result as told and save the strategy state, atomically."""
        with self._transaction():
            self.db.execute("UPDATE evaluations SET told = 1, tell_seconds = ? WHERE id = ?",
                            (tell_seconds, candidate_id))
            self._save_state(state)

    def _save_state(self, state: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO strategy_state VALUES (1, ?, ?)",
                        (time.time(), safe_pickle.dumps(state)))

    # ------------------------------------------------------------- reading
    def load_state(self) -> Optional[dict]:
        row = self.db.execute("SELECT state FROM strategy_state WHERE id = 1").fetchone()
        if row is None:
            return None
        try:
            return safe_pickle.loads(row[0])  # plain data only: loading runs no code
        except Exception as error:
            raise StoreError(f"the strategy state in {self.path} does not load "
                             f"({type(error).__name__}: {error}); the store is damaged or "
                             f"from an incompatible version: start a new run") from error

    def records(self, where: str = "", params=()) -> List[EvaluationRecord]:
        query = "SELECT * FROM evaluations " + (f"WHERE {where} " if where else "") + "ORDER BY id"
        return [self._record(row) for row in self.db.execute(query, params)]

    def pending(self) -> List[EvaluationRecord]:
        """Asked candidates with no result yet (to evaluate on resume)."""
        return self.records("status = 'pending'")

    def untold(self) -> List[EvaluationRecord]:
        """Results committed but not yet told to the strategy, in arrival order."""
        rows = self.records("status != 'pending' AND told = 0")
        return sorted(rows, key=lambda r: r.result_seq)

    def finished(self) -> List[EvaluationRecord]:
        """Every evaluation with a result, in the order results arrived."""
        return sorted(self.records("status != 'pending'"), key=lambda r: r.result_seq)

    def lookup(self, key: str) -> Optional[EvaluationRecord]:
        """The first reusable result with canonical hash ``key``: evaluated here (not
        itself cached) and not ``failed`` (a crash may not happen twice)."""
        rows = self.records("hash = ? AND status NOT IN ('pending', 'cached', 'failed')", (key,))
        return rows[0] if rows else None

    def count(self, status: Optional[str] = None) -> int:
        if status is None:
            return self.db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM evaluations WHERE status = ?",
                               (status,)).fetchone()[0]

    def best(self) -> Optional[EvaluationRecord]:
        """The finished evaluation with the highest fitness; on ties the one asked
        for first (the lowest id: the order results arrived in can vary between
        repeats of a run with several workers, the ask order does not)."""
        row = self.db.execute(
            "SELECT * FROM evaluations WHERE status != 'pending' "
            "ORDER BY fitness DESC, id ASC LIMIT 1").fetchone()
        return None if row is None else self._record(row)

    def __iter__(self) -> Iterator[EvaluationRecord]:
        return iter(self.records())

    # ------------------------------------------------------------ internals
    def _record(self, row) -> EvaluationRecord:
        (id_, architecture, descriptor, key, status, fitness, metrics, error, cached_from,
         asked_at, started_at, finished_at, cost, worker, attempts, result_seq, told,
         ask_seconds, tell_seconds) = row
        return EvaluationRecord(id_, json.loads(architecture), descriptor, key, status, fitness,
                                json.loads(metrics) if metrics else {}, error, cached_from,
                                asked_at, started_at, finished_at, cost, worker, attempts,
                                result_seq, bool(told), ask_seconds, tell_seconds)

    def _transaction(self):
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
