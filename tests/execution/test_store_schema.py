"""The run store's layout has a version: older stores are migrated (and resume),
newer or unknown ones are refused, and rows are read by column name."""

import sqlite3

import pytest

from nord import safe_pickle
from nord.design.strategies.evolution import RegularizedEvolution
from nord.execution import store as store_module
from nord.execution.run_loop import SearchRun
from nord.execution.store import SCHEMA_VERSION, ReadOnlyStoreError, RunStore, StoreError
from tests.toy_search import ToyObjective, ToySpace, make_sqlite_read_only

#: ``_SCHEMA`` as NORD wrote it before stores carried a version (git HEAD before issue 13)
HEAD_SCHEMA = """
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
#: the first layout (before the step log): no strategy_events, no strategy_chunks, and
#: the whole strategy state saved at every step
FIRST_SCHEMA = HEAD_SCHEMA[:HEAD_SCHEMA.index("CREATE TABLE IF NOT EXISTS strategy_events")]
EVALUATION_COLUMNS = [line.strip().rstrip(",") for line in HEAD_SCHEMA.split(
    "CREATE TABLE IF NOT EXISTS evaluations (")[1].split(");")[0].strip().splitlines()]


class Killed(BaseException):
    """Stops a run inside an evaluation, as ``kill -9`` would: its candidate stays pending."""


class DiesAt(ToyObjective):
    """A ToyObjective whose evaluation number ``call`` (from 1) kills the run."""

    def __init__(self, call):
        super().__init__()
        self.die_at = call

    def evaluate(self, descriptor):
        if self.calls + 1 == self.die_at:
            self.calls += 1
            raise Killed
        return super().evaluate(descriptor)


def run(path, budget=30, objective=None, seed=4, checkpoint_every=None):
    """A toy search stored at ``path`` (resumed if a store is there)."""
    store = RunStore(path)
    search = SearchRun(RegularizedEvolution(ToySpace(), 8, 3, rng=seed),
                       objective or ToyObjective(), store, budget)
    if checkpoint_every is not None:
        search.checkpoint_every = checkpoint_every
    try:
        search.run()
    except Killed:
        pass
    return store


def history(store):
    return [(r.id, r.architecture, r.status, r.fitness, r.metrics) for r in store.finished()]


def version(path):
    db = sqlite3.connect(str(path))
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def killed_run(tmp_path, die_at=9, **options):
    """A run killed inside its ``die_at``-th evaluation, closed; its store's path."""
    path = tmp_path / "killed" / "run.sqlite"
    run(path, objective=DiesAt(die_at), **options).close()
    return path


def rewrite_as_version_0(source, target, schema, tables):
    """A store at ``target`` laid out by ``schema`` (an unversioned NORD's), holding the
    rows of ``tables`` of the store at ``source``."""
    db = sqlite3.connect(str(target), isolation_level=None)
    db.executescript(schema)
    db.execute("ATTACH DATABASE ? AS old", (str(source),))
    for table in tables:
        columns = ", ".join(row[1] for row in db.execute(f"PRAGMA old.table_info({table})"))
        db.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM old.{table}")
    db.execute("DETACH DATABASE old")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    db.close()


def layout(path):
    """Each table's and index's columns (name, type, not null, default, primary key)."""
    db = sqlite3.connect(str(path))
    try:
        names = [row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name")]
        return {name: db.execute(f"PRAGMA table_info({name})").fetchall()
                or db.execute(f"PRAGMA index_info({name})").fetchall() for name in names}
    finally:
        db.close()


# --- older stores are migrated ------------------------------------------------------

def test_a_new_store_has_the_current_version(tmp_path):
    RunStore(tmp_path / "run.sqlite").close()
    assert version(tmp_path / "run.sqlite") == SCHEMA_VERSION == 1
    assert len(store_module._MIGRATIONS) == SCHEMA_VERSION  # one step per version
    with RunStore(":memory:") as memory:
        assert memory.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


@pytest.mark.parametrize("schema, tables", [
    (HEAD_SCHEMA, ("meta", "evaluations", "strategy_state", "strategy_events",
                   "strategy_chunks")),
    (FIRST_SCHEMA, ("meta", "evaluations", "strategy_state")),
], ids=["with-step-log", "first-layout"])
def test_a_store_of_an_unversioned_nord_is_migrated_and_resumes(tmp_path, schema, tables):
    reference = run(tmp_path / "reference" / "run.sqlite")
    # the first layout saved the whole state at every step: so does this killed run
    killed = killed_run(tmp_path, checkpoint_every=1)
    old = tmp_path / "old" / "run.sqlite"
    old.parent.mkdir()
    rewrite_as_version_0(killed, old, schema, tables)
    if schema is FIRST_SCHEMA:  # and it saved the state itself, not a checkpoint of it
        with RunStore(killed, create=False) as store:
            state = store.load_state()
        db = sqlite3.connect(str(old))
        db.execute("UPDATE strategy_state SET state = ?", (safe_pickle.dumps(state),))
        db.commit()
        db.close()
    with RunStore(old, create=False) as store:  # opening migrates it
        (pending,) = store.pending()
    assert version(old) == SCHEMA_VERSION
    assert layout(old) == layout(reference.path)  # as if it had been made by this NORD
    resumed = run(old)
    assert history(resumed) == history(reference) and len(history(reference)) == 30
    assert resumed.records("id = ?", (pending.id,))[0].attempts == 2


def test_a_failed_migration_leaves_the_store_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "run.sqlite"
    db = sqlite3.connect(str(path))
    db.executescript(FIRST_SCHEMA)
    db.close()

    def half_done(db):
        db.execute("CREATE TABLE strategy_events (seq INTEGER PRIMARY KEY)")
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(store_module, "_MIGRATIONS", (half_done,))
    with pytest.raises(StoreError, match="database or disk is full"):
        RunStore(path, create=False)
    assert version(path) == 0 and "strategy_events" not in layout(path)
    monkeypatch.undo()
    RunStore(path, create=False).close()
    assert version(path) == SCHEMA_VERSION and "strategy_events" in layout(path)


def test_a_read_only_store_of_an_older_version_says_to_copy_it(tmp_path, monkeypatch):
    path = tmp_path / "run.sqlite"
    db = sqlite3.connect(str(path))
    db.executescript(HEAD_SCHEMA)
    db.close()
    make_sqlite_read_only(monkeypatch)
    with pytest.raises(ReadOnlyStoreError, match=r"run.sqlite is a run store of version 0, "
                                                 r"written by an older NORD; this NORD .* "
                                                 r"reads version 1 .* read-only .* copy its "
                                                 r"folder somewhere writable"):
        RunStore(path, create=False)
    monkeypatch.undo()
    assert version(path) == 0


def test_a_damaged_old_store_is_refused_not_migrated(tmp_path):
    path = tmp_path / "run.sqlite"
    db = sqlite3.connect(str(path))
    db.executescript(FIRST_SCHEMA + "DROP TABLE evaluations;")
    db.close()
    with pytest.raises(StoreError, match="has no evaluations table; the store is damaged"):
        RunStore(path, create=False)
    assert version(path) == 0 and "strategy_events" not in layout(path)


# --- newer or unknown versions are refused ------------------------------------------

@pytest.mark.parametrize("stored, origin", [(99, "a newer NORD"), (-1, "no NORD version")])
def test_a_store_of_a_newer_or_unknown_version_is_refused(tmp_path, stored, origin):
    path = tmp_path / "run.sqlite"
    run(path, budget=5).close()
    db = sqlite3.connect(str(path))
    db.execute(f"PRAGMA user_version = {stored}")
    db.close()
    with pytest.raises(StoreError) as refused:
        RunStore(path, create=False)
    message = str(refused.value)
    assert message.startswith(f"{path} is a run store of version {stored}, which this NORD")
    assert "reads store versions 0 to 1" in message and origin in message
    assert "upgrade NORD" in message and "the NORD version that wrote it" in message
    assert version(path) == stored  # untouched
    with pytest.raises(StoreError, match=f"version {stored}"):
        run(path, budget=8)  # nor resumed


# --- rows are read by column name -------------------------------------------------

def finished_run(tmp_path, budget=20):
    """A finished toy run with ok, cached, invalid and failed records."""
    path = tmp_path / "run" / "run.sqlite"
    store = run(path, budget=budget, seed=2, objective=ToyObjective(fail_on=range(50, 80)))
    assert {r.status for r in store.records()} == {"ok", "cached", "invalid", "failed"}
    return store


def reads(store):
    return (store.records(), store.best(), store.finished(), store.untold(),
            store.lookup(store.best().hash), store.count(), store.count("cached"), store.meta(),
            store.load_checkpoint())


def test_an_added_column_does_not_change_what_is_read(tmp_path):
    store = finished_run(tmp_path)
    before = reads(store)
    store.db.execute("ALTER TABLE evaluations ADD COLUMN note TEXT DEFAULT 'added by hand'")
    store.db.execute("ALTER TABLE meta ADD COLUMN comment TEXT")
    store.close()
    with RunStore(store.path, create=False) as reopened:
        assert reads(reopened) == before


def test_columns_in_another_order_read_and_write_alike(tmp_path):
    store = finished_run(tmp_path)
    before = reads(store)
    names = ", ".join(column.split()[0] for column in EVALUATION_COLUMNS)
    store.db.executescript(f"""
        BEGIN;
        ALTER TABLE evaluations RENAME TO evaluations_before;
        CREATE TABLE evaluations ({', '.join(reversed(EVALUATION_COLUMNS))});
        INSERT INTO evaluations ({names}) SELECT {names} FROM evaluations_before;
        DROP TABLE evaluations_before;
        CREATE INDEX evaluations_hash ON evaluations (hash);
        CREATE TABLE strategy_state_reordered (state BLOB NOT NULL, saved_at REAL NOT NULL,
                                               id INTEGER PRIMARY KEY CHECK (id = 1));
        INSERT INTO strategy_state_reordered (id, saved_at, state)
            SELECT id, saved_at, state FROM strategy_state;
        DROP TABLE strategy_state;
        ALTER TABLE strategy_state_reordered RENAME TO strategy_state;
        COMMIT;""")
    store.close()
    columns = [row[1] for row in sqlite3.connect(str(store.path)).execute(
        "PRAGMA table_info(evaluations)")]
    assert columns[0] == "tell_seconds" and columns[-1] == "id"
    with RunStore(store.path, create=False) as reopened:
        assert reads(reopened) == before
    extended = run(store.path, budget=30, seed=2, objective=ToyObjective(fail_on=range(50, 80)))
    reference = run(tmp_path / "reference" / "run.sqlite", budget=30, seed=2,
                    objective=ToyObjective(fail_on=range(50, 80)))
    assert history(extended) == history(reference)


# --- attempts -----------------------------------------------------------------------

def test_a_candidate_killed_while_evaluated_has_two_attempts_after_resume(tmp_path):
    path = killed_run(tmp_path, die_at=9)
    with RunStore(path, create=False) as store:
        (pending,) = store.pending()
        assert pending.attempts == 0
    resumed = run(path)
    record = resumed.records("id = ?", (pending.id,))[0]
    assert record.status == "ok" and record.attempts == 2
    others = {(r.status == "cached", r.attempts) for r in resumed.records() if r.id != pending.id}
    assert others == {(False, 1), (True, 0)}  # an evaluation each, none for a cached result


def test_killed_twice_while_evaluating_the_same_candidate_counts_three(tmp_path):
    path = killed_run(tmp_path, die_at=9)
    with RunStore(path, create=False) as store:
        (pending,) = store.pending()
    run(path, objective=DiesAt(1)).close()  # killed again, evaluating it again
    resumed = run(path)
    assert resumed.records("id = ?", (pending.id,))[0].attempts == 3
