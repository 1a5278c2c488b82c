"""The run store: one SQLite file per run (``<out>/run.sqlite``).

Every candidate is written when it is asked (status ``pending``) and updated
when its result arrives, in a committed transaction, *before* the strategy is
told. Each ask and tell is logged in order (``strategy_events``) in the same
transaction, and every so many steps the strategy's whole state (random
generator included) is saved with it: a checkpoint, whose large arrays go into
content-addressed chunks so that only the changed ones are written. A run
killed at any point (``kill -9`` included) therefore resumes with nothing lost
and nothing repeated: the checkpoint is loaded, the steps logged since are
replayed, results committed but not yet told are told, and candidates still
pending are evaluated again.

The file uses SQLite's write-ahead log with ``synchronous=NORMAL``: a commit
survives the process being killed (not necessarily a power cut), without an
``fsync`` per evaluation.

The file's layout has a version (``PRAGMA user_version``, :data:`SCHEMA_VERSION`):
a store of an older version is migrated when it is opened, one of a newer or
unknown version is refused, and rows are read by column name, so a column
added (by a later version, or by hand) or columns in another order read alike.
"""

from __future__ import annotations

import errno
import json
import math
import os
import sqlite3
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import numpy as np

from nord import __version__, safe_pickle
from nord.errors import ReadOnlyStoreError, StoreError  # noqa: F401  (re-exported)

__all__ = ["RunStore", "EvaluationRecord", "StoreError", "ReadOnlyStoreError", "STATUSES",
           "MEMORY", "SCHEMA_VERSION"]

#: the path of a store kept in memory (studies of many short benchmark runs)
MEMORY = ":memory:"

#: about what one ask or tell adds to the step log (counted in ``state_bytes_written``)
STEP_BYTES = 16
_CHECKPOINT = "nord_checkpoint"

#: outcomes of an evaluation; every status but ``ok`` and ``cached`` scores fitness 0
STATUSES = ("pending", "ok", "cached", "invalid", "not_in_table", "failed")

# The layout of run.sqlite, by its version (``PRAGMA user_version``):
#
#   0  written before stores carried a version (NORD 0.1.0 before issue 13), in two
#      layouts: meta, evaluations and strategy_state; and, since the step log
#      (commit 9b4172a), those and strategy_events and strategy_chunks too.
#   1  the layout of _SCHEMA: version 0's later layout, the step log and chunk tables
#      always present, and the version recorded.
#
# Changing the layout adds a version: append to _MIGRATIONS a function that takes a
# store of the previous version to the new one (never edit an older step: stores of
# every version depend on it), change _SCHEMA to match, and raise SCHEMA_VERSION.

#: the version of the run store layout this NORD writes (older ones are migrated on open)
SCHEMA_VERSION = 1

#: the tables of a new store (``SCHEMA_VERSION``)
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
CREATE TABLE IF NOT EXISTS strategy_events (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL,
                                            candidate INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS strategy_chunks (hash TEXT PRIMARY KEY, data BLOB NOT NULL);
"""

#: tables every store has held since the first layout
_CORE_TABLES = ("meta", "evaluations", "strategy_state")
#: tables a store of SCHEMA_VERSION holds
_TABLES = _CORE_TABLES + ("strategy_events", "strategy_chunks")


def _add_step_log(db: sqlite3.Connection) -> None:
    """0 -> 1: the step log and the chunk table, which stores written before the step
    log lack (the later version-0 layout already has them: nothing changes)."""
    db.execute("CREATE TABLE IF NOT EXISTS strategy_events (seq INTEGER PRIMARY KEY, "
               "kind TEXT NOT NULL, candidate INTEGER NOT NULL)")
    db.execute("CREATE TABLE IF NOT EXISTS strategy_chunks (hash TEXT PRIMARY KEY, "
               "data BLOB NOT NULL)")
    db.execute("CREATE INDEX IF NOT EXISTS evaluations_hash ON evaluations (hash)")


#: ``_MIGRATIONS[n]`` takes a store of version ``n`` to version ``n + 1`` (in a transaction)
_MIGRATIONS = (_add_step_log,)


def _read_only_errno(error: BaseException) -> bool:
    return getattr(error, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS)


def _create_tables(db: sqlite3.Connection) -> None:
    """The tables of a new store, and its version (inside the caller's transaction)."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _user_version(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()["user_version"]


def _damaged(path) -> str:
    return (f"the store is damaged: restore {Path(path).name} from a copy, or start a new "
            f"run in another --out folder")


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


#: the ``evaluations`` columns a record is read from (by name: their order in the table,
#: and columns besides them, do not matter)
_COLUMNS = tuple(f.name for f in fields(EvaluationRecord))
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM evaluations "


class RunStore:
    """Open (creating if needed) the run store at ``path``.

    ``RunStore(":memory:")`` keeps the store in memory (nothing survives the
    process; for many short benchmark runs).

    >>> store = RunStore('runs/x/run.sqlite')      # doctest: +SKIP
    >>> best = store.best()                         # doctest: +SKIP
    """

    #: bytes of strategy state written through this object: checkpoints, new chunks, steps
    state_bytes_written = 0
    #: opened with ``read_only=True``: every write raises ReadOnlyStoreError
    read_only = False

    def __init__(self, path, create: bool = True,
                 meta: Optional[Dict[str, Any]] = None, read_only: bool = False) -> None:
        """``meta``: values a new store is created with, in the same step as its
        tables (a process killed while creating it leaves no store at all).

        ``read_only=True`` opens an existing store through SQLite's read-only mode
        (reports and dashboards beside a running search): nothing is created,
        migrated or written (every write raises :class:`ReadOnlyStoreError`), and
        reads see what the writer has committed.
        """
        self.path = Path(path)
        self.read_only = bool(read_only)
        memory = str(path) == MEMORY
        if read_only:
            if memory or meta is not None:
                raise StoreError("read_only=True opens an existing store file; it takes no "
                                 "meta= and no in-memory path")
            self._open_read_only()
            return
        if memory:
            self.db = sqlite3.connect(MEMORY, isolation_level=None)
            self.db.row_factory = sqlite3.Row
        else:
            if not self.path.exists() and not create:
                raise StoreError(f"no run store at {self.path}; is this the --out folder of "
                                 f"a `nord search` run?")
            if self.path.is_dir():
                raise StoreError(f"{self.path} is a folder, not a run store")
            if not self.path.exists():
                self._create(meta)
            elif meta is not None:
                raise StoreError(f"{self.path} already exists; meta= only fills a new store: "
                                 f"use set_meta() on an existing one")
            try:
                self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
                self.db.row_factory = sqlite3.Row  # rows read by column name
            except sqlite3.DatabaseError as error:
                raise self._open_error(error) from error

        def prepare() -> None:
            self._open_schema()  # first: a store this NORD cannot read is not written to
            if not memory:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")

        self._prepare_or_close(prepare)
        if memory and meta:
            self.set_meta(**meta)

    def _open_read_only(self) -> None:
        """Connect with ``mode=ro`` and check the layout without changing anything."""
        if not self.path.exists():
            raise StoreError(f"no run store at {self.path}; is this the --out folder of "
                             f"a `nord search` run?")
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a folder, not a run store")
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        try:
            self.db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
            self.db.row_factory = sqlite3.Row
        except sqlite3.DatabaseError as error:
            raise self._open_error(error) from error

        def check() -> None:
            version = _user_version(self.db)
            if not 0 <= version <= SCHEMA_VERSION:
                raise StoreError(self._version_refusal(version))
            if version == 0 and not self._tables():
                raise StoreError(f"{self.path} holds no tables: it is not a run store (or "
                                 f"one still being created)")
            self._check_tables(_CORE_TABLES if version < SCHEMA_VERSION else _TABLES)

        self._prepare_or_close(check)

    def _prepare_or_close(self, prepare: Callable[[], None]) -> None:
        """Run ``prepare`` on the new connection, then read the last result number;
        on any failure close the connection and raise a :class:`StoreError`."""
        try:
            prepare()
            self._result_seq = self._value(
                "SELECT COALESCE(MAX(result_seq), 0) AS value FROM evaluations")
        except StoreError:
            self.db.close()
            raise
        except sqlite3.DatabaseError as error:
            self.db.close()
            raise self._open_error(error) from error

    def _create(self, meta: Optional[Dict[str, Any]]) -> None:
        """Write the new store's tables and ``meta`` to a file beside ``path``, then
        rename it into place, so the store appears complete or not at all."""
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.new")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp.unlink(missing_ok=True)
            db = sqlite3.connect(str(temp), isolation_level=None)
            try:
                with _Transaction(db):
                    _create_tables(db)
                    db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                                   [(key, json.dumps(value)) for key, value in
                                    (meta or {}).items()])
            finally:
                db.close()
            os.replace(temp, self.path)
        except BaseException as error:
            self.discard_unfinished(self.path, pid=os.getpid())
            if isinstance(error, sqlite3.DatabaseError) or _read_only_errno(error):
                raise self._open_error(error, creating=True) from error
            raise

    @staticmethod
    def discard_unfinished(path, pid: Optional[int] = None) -> None:
        """Remove what creating the store at ``path`` left when it was killed (of
        process ``pid``, or of any: only while no process is creating it)."""
        path = Path(path)
        for leftover in path.parent.glob(f".{path.name}.{pid or '*'}.new*"):
            leftover.unlink(missing_ok=True)

    def _open_schema(self) -> None:
        """Give an empty store (no tables, version 0) its tables, migrate a store of an
        older version, refuse one of a newer or unknown version; then check that the
        tables and the columns records are read from are all there."""
        version = _user_version(self.db)
        if version == 0 and not self._tables():
            self._write_schema()
            return
        if not 0 <= version <= SCHEMA_VERSION:
            raise StoreError(self._version_refusal(version))
        if version < SCHEMA_VERSION:
            self._check_tables(_CORE_TABLES)  # a damaged store is not migrated
            self._migrate(version)
        self._check_tables(_TABLES)

    def _tables(self) -> set:
        return {row["name"] for row in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _write_schema(self) -> None:
        """The tables of a new store, in an existing file with none (or in memory)."""
        with self._transaction():
            _create_tables(self.db)

    def _migrate(self, version: int) -> None:
        """Bring a store of the older ``version`` to SCHEMA_VERSION, in one transaction
        (a process killed while migrating leaves the store as it was)."""
        try:
            with self._transaction():
                current = _user_version(self.db)  # another process may have migrated it
                if current > SCHEMA_VERSION:
                    raise StoreError(self._version_refusal(current))
                for migrate in _MIGRATIONS[current:]:
                    migrate(self.db)
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as error:
            if not self._read_only(error):
                raise
            raise ReadOnlyStoreError(
                f"{self.path} is a run store of version {version}, written by an older "
                f"NORD; this NORD ({__version__}) reads version {SCHEMA_VERSION} and updates "
                f"an older store when it opens it, but this one is read-only ({error}), so "
                f"it cannot be updated in place: copy its folder somewhere writable and use "
                f"the copy (or make it writable: chmod -R u+w {self.path.parent})") from error

    def _version_refusal(self, version: int) -> str:
        """Why a store of ``version`` (newer than SCHEMA_VERSION, or negative) is refused."""
        origin = ("a newer NORD" if version > SCHEMA_VERSION
                  else "no NORD version (it is damaged, or not a NORD run)")
        return (f"{self.path} is a run store of version {version}, which this NORD "
                f"({__version__}) cannot read: it reads store versions 0 to {SCHEMA_VERSION}, "
                f"and version {version} was written by {origin}; upgrade NORD (pip install "
                f"--upgrade nord) or open the store with the NORD version that wrote it")

    def _check_tables(self, required: Tuple[str, ...]) -> None:
        """The store holds the ``required`` tables, and the columns records are read from."""
        tables = self._tables()
        missing = [name for name in required if name not in tables]
        if missing:
            raise StoreError(f"{self.path} has no {' or '.join(missing)} table; "
                             f"{_damaged(self.path)}")
        columns = {row["name"] for row in self.db.execute("PRAGMA table_info(evaluations)")}
        lacking = [name for name in _COLUMNS if name not in columns]
        if lacking:
            raise StoreError(f"the evaluations table in {self.path} lacks the column(s) "
                             f"{', '.join(lacking)}; {_damaged(self.path)}")

    def _read_only(self, error: Exception) -> bool:
        """Whether ``error`` (from SQLite or the file system) says the store is read-only."""
        name = getattr(error, "sqlite_errorname", "") or ""
        writable = os.access(self.path.parent, os.W_OK) and (
            not self.path.exists() or os.access(self.path, os.W_OK))
        return (name.startswith("SQLITE_READONLY") or "readonly" in str(error)
                or _read_only_errno(error)
                or (name not in ("SQLITE_NOTADB", "SQLITE_CORRUPT") and not writable))

    def _open_error(self, error: Exception, creating: bool = False) -> StoreError:
        """A store that could not be opened or created: read-only, or damaged."""
        folder = self.path.parent
        if self._read_only(error):
            return ReadOnlyStoreError(
                f"{self.path} is read-only ({error}); a run store and its folder must be "
                f"writable, even to read it: make them writable (chmod -R u+w {folder}) or "
                f"copy the folder somewhere writable and use the copy")
        if creating:
            return StoreError(f"could not create the run store {self.path} ({error}); free "
                              f"some disk space or choose another --out folder")
        return StoreError(f"{self.path} is not a readable run store ({error}); it is "
                          f"damaged or not a NORD run: start a new run in another "
                          f"--out folder")

    def check_writable(self) -> None:
        """Raise :class:`ReadOnlyStoreError` now if the store cannot be written."""
        if self.read_only:
            self._transaction()  # raises: opened read_only=True
        try:
            self.db.execute("DELETE FROM meta WHERE 0")  # a write that changes nothing
        except sqlite3.DatabaseError as error:
            raise self._open_error(error) from error

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
                self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                (key, json.dumps(value)))

    def meta(self) -> Dict[str, Any]:
        values = {}
        for row in self.db.execute("SELECT key, value FROM meta"):
            key = row["key"]
            try:
                values[key] = json.loads(row["value"])
            except (TypeError, ValueError) as error:
                raise StoreError(f"the {key!r} entry of {self.path} is not JSON ({error}); "
                                 f"{_damaged(self.path)}") from error
        return values

    # ------------------------------------------------------------- writing
    def record_ask(self, candidate_id: int, architecture: Any, descriptor: Optional[str],
                   key: Optional[str], state: Optional[dict], ask_seconds: float) -> None:
        """A new pending candidate and the ask in the step log, atomically, with the
        strategy state after asking when a checkpoint is due (``state`` not None)."""
        with self._transaction():
            self.db.execute(
                "INSERT INTO evaluations (id, architecture, descriptor, hash, asked_at, "
                "ask_seconds) VALUES (?, ?, ?, ?, ?, ?)",
                (candidate_id, json.dumps(architecture), descriptor, key, time.time(), ask_seconds))
            self._log_step("ask", candidate_id, state)

    def record_start(self, candidate_id: int, worker: Optional[str] = None) -> None:
        """Count one evaluation begun for a pending candidate that no result will report:
        the run loop calls it on resume for each candidate the stopped run was
        evaluating, before evaluating it again (so its ``attempts`` say 2)."""
        with self._transaction():
            self.db.execute("UPDATE evaluations SET attempts = attempts + 1, "
                            "worker = COALESCE(?, worker) WHERE id = ?", (worker, candidate_id))

    def record_result(self, candidate_id: int, status: str, fitness: float,
                      metrics: Optional[dict] = None, error: Optional[str] = None,
                      started_at: Optional[float] = None, finished_at: Optional[float] = None,
                      cost: Optional[float] = None, worker: Optional[str] = None,
                      cached_from: Optional[int] = None, attempts: Optional[int] = None) -> None:
        """Commit one result (before the strategy hears of it); ``attempts``: evaluations
        of it begun by the executor that reports it (more than 1 where a worker died),
        added to those :meth:`record_start` counted (``None``: none begun here)."""
        if status not in STATUSES[1:]:
            raise StoreError(f"unknown status {status!r}; one of {STATUSES[1:]}")
        if isinstance(fitness, bool) or not isinstance(fitness, (int, float, np.number)):
            raise StoreError(f"candidate {candidate_id}'s fitness is {fitness!r}, not a number: "
                             f"an objective returns a float fitness (0 for a failure)")
        if not math.isfinite(float(fitness)):
            raise StoreError(f"candidate {candidate_id}'s fitness is {fitness}; SQLite would "
                             f"store it as NULL: record a non-finite score as 'failed' with "
                             f"fitness 0 (run_task does)")
        with self._transaction():
            row = self.db.execute("SELECT status FROM evaluations WHERE id = ?",
                                  (candidate_id,)).fetchone()
            if row is None:
                raise StoreError(f"candidate {candidate_id} was never asked in this run")
            if row["status"] != "pending":
                raise StoreError(f"candidate {candidate_id} already has a result "
                                 f"({row['status']}); each evaluation is recorded once")
            self._result_seq += 1
            self.db.execute(
                "UPDATE evaluations SET status=?, fitness=?, metrics=?, error=?, started_at=?, "
                "finished_at=?, cost=?, worker=COALESCE(?, worker), cached_from=?, result_seq=?, "
                "attempts = attempts + ? WHERE id=?",
                (status, float(fitness), json.dumps(metrics or {}), error, started_at,
                 finished_at, cost, worker, cached_from, self._result_seq,
                 0 if attempts is None else int(attempts), candidate_id))

    def record_tell(self, candidate_id: int, state: Optional[dict], tell_seconds: float) -> None:
        """Mark a result as told and log the tell, atomically, with the strategy state
        when a checkpoint is due (``state`` not None)."""
        with self._transaction():
            self.db.execute("UPDATE evaluations SET told = 1, tell_seconds = ? WHERE id = ?",
                            (tell_seconds, candidate_id))
            self._log_step("tell", candidate_id, state)

    def save_checkpoint(self, state: dict) -> None:
        """Save the strategy state as of the last logged step (nothing to replay after it)."""
        with self._transaction():
            self._save_state(state, self._value(
                "SELECT COALESCE(MAX(seq), 0) AS value FROM strategy_events"))

    def _log_step(self, kind: str, candidate_id: int, state: Optional[dict]) -> None:
        seq = self.db.execute("INSERT INTO strategy_events (kind, candidate) VALUES (?, ?)",
                              (kind, candidate_id)).lastrowid
        self.state_bytes_written += STEP_BYTES
        if state is not None:
            self._save_state(state, seq)

    def _save_state(self, state: dict, step: int) -> None:
        """The checkpoint: the state's small part in one blob, its large arrays as
        content-addressed chunks, of which only the new ones are written."""
        skeleton, chunks = safe_pickle.split(state)
        stored = {row["hash"] for row in self.db.execute("SELECT hash FROM strategy_chunks")}
        new = [(key, data) for key, data in chunks.items() if key not in stored]
        self.db.executemany("INSERT INTO strategy_chunks (hash, data) VALUES (?, ?)", new)
        self.db.executemany("DELETE FROM strategy_chunks WHERE hash = ?",
                            [(key,) for key in stored - set(chunks)])
        blob = safe_pickle.dumps({_CHECKPOINT: 2, "step": step, "state": skeleton})
        self.db.execute("INSERT OR REPLACE INTO strategy_state (id, saved_at, state) "
                        "VALUES (1, ?, ?)", (time.time(), blob))
        self.state_bytes_written += len(blob) + sum(len(data) for _, data in new)

    # ------------------------------------------------------------- reading
    def load_state(self) -> Optional[dict]:
        """The strategy state of the last checkpoint (``None`` before the first ask)."""
        checkpoint = self.load_checkpoint()
        return None if checkpoint is None else checkpoint[0]

    def load_checkpoint(self) -> Optional[Tuple[dict, int]]:
        """``(state, step)``: the last saved strategy state and the step-log number it
        was saved at; the steps after it are :meth:`steps_since` that number."""
        row = self.db.execute("SELECT state FROM strategy_state WHERE id = 1").fetchone()
        if row is None:
            return None
        try:
            saved = safe_pickle.loads(row["state"])  # plain data only: loading runs no code
            if isinstance(saved, dict) and saved.get(_CHECKPOINT) == 2:
                chunks = {chunk["hash"]: chunk["data"] for chunk in self.db.execute(
                    "SELECT hash, data FROM strategy_chunks")}
                return safe_pickle.join(saved["state"], chunks), int(saved["step"])
        except Exception as error:
            raise StoreError(f"the strategy state in {self.path} does not load "
                             f"({type(error).__name__}: {error}); the store is damaged or "
                             f"from an incompatible version: start a new run") from error
        # written before the step log existed: saved after every step, so the state is
        # current and every logged step (written since, by this version) comes after it
        return saved, 0

    def steps_since(self, step: int) -> List[Tuple[str, int]]:
        """``(kind, candidate id)`` of each ask and tell logged after ``step``, in order."""
        return [(row["kind"], row["candidate"]) for row in self.db.execute(
            "SELECT kind, candidate FROM strategy_events WHERE seq > ? ORDER BY seq",
            (int(step),))]

    def told_before_ask(self, told_id: int, asked_id: int) -> bool:
        """Whether the result of ``told_id`` was told before ``asked_id`` was asked (so
        it was there to reuse when it was); False where the step log does not say."""
        return bool(self._value(
            "SELECT (SELECT seq FROM strategy_events WHERE kind = 'tell' AND candidate = ?) < "
            "(SELECT seq FROM strategy_events WHERE kind = 'ask' AND candidate = ?) AS value",
            (told_id, asked_id)))

    def records(self, where: str = "", params=()) -> List[EvaluationRecord]:
        query = _SELECT + (f"WHERE {where} " if where else "") + "ORDER BY id"
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
            return self._value("SELECT COUNT(*) AS value FROM evaluations")
        return self._value("SELECT COUNT(*) AS value FROM evaluations WHERE status = ?",
                           (status,))

    def best(self) -> Optional[EvaluationRecord]:
        """The finished evaluation with the highest fitness; on ties the one asked
        for first (the lowest id: the order results arrived in can vary between
        repeats of a run with several workers, the ask order does not)."""
        row = self.db.execute(
            _SELECT + "WHERE status != 'pending' ORDER BY fitness DESC, id ASC LIMIT 1").fetchone()
        return None if row is None else self._record(row)

    def __iter__(self) -> Iterator[EvaluationRecord]:
        return iter(self.records())

    # ------------------------------------------------------------ internals
    def _value(self, query: str, params=()) -> Any:
        """The column ``value`` of the first row ``query`` returns."""
        return self.db.execute(query, params).fetchone()["value"]

    def _record(self, row: sqlite3.Row) -> EvaluationRecord:
        """One row as a record, read by column name; a value no NORD version writes is
        a :class:`StoreError`."""
        values = {name: row[name] for name in _COLUMNS}
        where = f"evaluation #{values['id']} in {self.path}"
        status, fitness = values["status"], values["fitness"]
        if status not in STATUSES:
            raise StoreError(f"{where} has the unknown status {status!r}; {_damaged(self.path)}")
        if status != "pending" and not isinstance(fitness, (int, float)):
            what = ("no fitness (NULL, which is also how SQLite stores a NaN)"
                    if fitness is None else f"the fitness {fitness!r}, not a number")
            raise StoreError(f"{where} ({status}) has {what}; {_damaged(self.path)}")
        for name, what in (("architecture", "an architecture that is"),
                           ("metrics", "metrics that are")):
            if name == "metrics" and not values[name]:
                values[name] = {}
                continue
            try:
                values[name] = json.loads(values[name])
            except (TypeError, ValueError) as error:
                raise StoreError(f"{where} holds {what} not JSON ({error}); "
                                 f"{_damaged(self.path)}") from error
        if not isinstance(values["metrics"], dict):
            raise StoreError(f"{where} holds metrics that are not a JSON object; "
                             f"{_damaged(self.path)}")
        values["told"] = bool(values["told"])
        return EvaluationRecord(**values)

    def _transaction(self):
        if self.read_only:
            raise ReadOnlyStoreError(f"{self.path} was opened read_only=True; open it "
                                     f"without read_only to write to it")
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
