"""A damaged or read-only run store is a one-line typed error, not a traceback or a wrong result."""

import errno
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from nord.cli import EXIT_FAILURE, main
from nord.execution.runs import SearchSettings, run_search
from nord.execution.store import ReadOnlyStoreError, RunStore, StoreError
from tests.toy_search import make_sqlite_read_only

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("NORD_DATA") or ROOT.parent / "shared" / "data")
NB201 = DATA / "nasbench201" / "nb201_tables.csv"

needs_table = pytest.mark.skipif(not NB201.exists(), reason="NAS-Bench-201 table not present")


@pytest.fixture(scope="module")
def table():
    from nord.neural_nets.benchmarks.nasbench201 import NATSBench_Evaluator
    return NATSBench_Evaluator(str(NB201)) if NB201.exists() else None


@pytest.fixture
def run(tmp_path_factory, monkeypatch, table):
    """A copy of a finished 8-evaluation NAS-Bench-201 run."""
    from nord.execution.objectives import NASBench201Objective
    monkeypatch.setenv("NORD_DATA", str(DATA))
    monkeypatch.setattr(NASBench201Objective, "_make_evaluator", lambda self: table)
    base = tmp_path_factory.getbasetemp() / "store_errors_base"
    if not base.exists():
        run_search(SearchSettings(budget=8, seed=1), base)
    out = tmp_path_factory.mktemp("run") / "run"
    shutil.copytree(base, out)
    return out


def damage(out, *statements):
    db = sqlite3.connect(str(out / "run.sqlite"), isolation_level=None)
    for statement in statements:
        db.execute(statement)
    db.close()


def resume(out, budget=12):
    return run_search(None, out, resume=True, explicit={"budget": budget})


def cli_resume(out):
    """``nord search --resume``'s exit status (a damaged or read-only store: EXIT_FAILURE)."""
    return main(["search", "--out", str(out), "--resume", "--budget", "12", "--quiet"])


@needs_table
@pytest.mark.parametrize("statement, message", [
    ("UPDATE evaluations SET architecture = '{not json' WHERE id = 3",
     "evaluation #3 in .* holds an architecture that is not JSON"),
    ("UPDATE evaluations SET metrics = '[1' WHERE id = 2",
     "evaluation #2 in .* holds metrics that are not JSON"),
    ("UPDATE evaluations SET fitness = NULL WHERE id = 3",
     r"evaluation #3 in .* \(ok\) has no fitness \(NULL"),
    ("UPDATE evaluations SET fitness = 'abc' WHERE id = 3",
     r"evaluation #3 in .* \(ok\) has the fitness 'abc', not a number"),
    ("UPDATE evaluations SET status = 'great' WHERE id = 1",
     "evaluation #1 in .* has the unknown status 'great'"),
])
def test_a_damaged_row_is_a_store_error_when_read(run, capsys, statement, message):
    damage(run, statement)
    with RunStore(run / "run.sqlite", create=False) as store:
        with pytest.raises(StoreError, match=message + ".*the store is damaged: restore"):
            store.records()
    with pytest.raises(StoreError, match=message):
        resume(run)
    assert main(["report", str(run)]) == EXIT_FAILURE
    assert "the store is damaged" in capsys.readouterr().err


@needs_table
@pytest.mark.parametrize("table_name", ["evaluations", "meta", "strategy_state"])
def test_a_dropped_table_is_a_store_error_not_a_fresh_start(run, capsys, table_name):
    damage(run, f"DROP TABLE {table_name}")
    with pytest.raises(StoreError, match=f"has no {table_name} table; the store is damaged"):
        RunStore(run / "run.sqlite", create=False)
    assert cli_resume(run) == EXIT_FAILURE
    assert f"has no {table_name} table" in capsys.readouterr().err
    assert main(["report", str(run)]) == EXIT_FAILURE


@needs_table
def test_a_missing_column_is_a_store_error(run):
    damage(run, "ALTER TABLE evaluations DROP COLUMN told")
    with pytest.raises(StoreError, match="evaluations table in .* lacks the column.* told"):
        RunStore(run / "run.sqlite")


@needs_table
def test_a_meta_entry_that_is_not_json_names_the_entry(run):
    damage(run, "UPDATE meta SET value = '{oops' WHERE key = 'settings'")
    with pytest.raises(StoreError, match="the 'settings' entry of .* is not JSON"):
        resume(run)


@needs_table
def test_a_strategy_state_missing_a_key_names_the_key(run, capsys):
    with RunStore(run / "run.sqlite") as store:
        state = store.load_state()
        del state["population"]
        if hasattr(store, "save_checkpoint"):
            store.save_checkpoint(state)
        else:
            with store._transaction():
                store._save_state(state)
    with pytest.raises(StoreError, match="the evolution strategy state in .* lacks the key "
                                         "'population'; the store is damaged"):
        resume(run)
    assert cli_resume(run) == EXIT_FAILURE
    assert "lacks the key 'population'" in capsys.readouterr().err


@needs_table
def test_a_read_only_store_says_read_only_not_damaged(run, capsys, monkeypatch):
    connect = make_sqlite_read_only(monkeypatch)
    with pytest.raises(ReadOnlyStoreError, match=r"run.sqlite is read-only \(attempt to write "
                                                 r"a readonly database\); a run store and its "
                                                 r"folder must be writable, even to read it: "
                                                 r"make them"):
        resume(run)
    assert cli_resume(run) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "is read-only" in err and "damaged" not in err
    monkeypatch.setattr(sqlite3, "connect", connect)
    with RunStore(run / "run.sqlite", create=False) as store:
        assert store.count() == 8  # nothing was written


@needs_table
def test_a_read_only_folder_stops_the_lock_with_read_only(run, monkeypatch):
    os_open = os.open

    def refused(path, *args, **kwargs):  # what a read-only file system does (root included)
        if os.fspath(path).endswith("run.lock"):
            raise OSError(errno.EROFS, "Read-only file system", os.fspath(path))
        return os_open(path, *args, **kwargs)
    (run / "run.lock").unlink(missing_ok=True)
    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(ReadOnlyStoreError, match="is read-only .*; a search writes its run "
                                                 "there: make it writable"):
        resume(run)


@needs_table
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="permissions do not stop root")
def test_a_chmod_read_only_run_folder(run, capsys):
    (run / "run.lock").unlink(missing_ok=True)
    for path in [run, *run.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        assert cli_resume(run) == EXIT_FAILURE
        err = capsys.readouterr().err
        assert "is read-only" in err and "damaged" not in err
    finally:
        for path in [run, *run.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_a_new_store_is_created_with_its_meta_in_one_step(tmp_path):
    path = tmp_path / "run" / "run.sqlite"
    with RunStore(path, meta={"settings": {"budget": 3}}) as store:
        assert store.meta() == {"settings": {"budget": 3}}
    assert sorted(os.listdir(path.parent)) == ["run.sqlite"]  # no temporary file left
    with pytest.raises(StoreError, match="already exists; meta= only fills a new store"):
        RunStore(path, meta={"settings": {}})
    with RunStore(":memory:", meta={"a": 1}) as memory:
        assert memory.meta() == {"a": 1}


def test_leftovers_of_a_killed_creation_are_discarded(tmp_path):
    path = tmp_path / "run.sqlite"
    (tmp_path / ".run.sqlite.123.new").write_text("half")
    (tmp_path / ".run.sqlite.123.new-journal").write_text("half")
    (tmp_path / "keep.txt").write_text("mine")
    RunStore.discard_unfinished(path)
    assert sorted(os.listdir(tmp_path)) == ["keep.txt"]


@pytest.mark.parametrize("fitness, message", [
    (None, "fitness is None, not a number"), ("0.9", "fitness is '0.9', not a number"),
    (float("nan"), "fitness is nan; SQLite would store it as NULL")])
def test_a_fitness_that_is_no_finite_number_is_refused_and_nothing_is_written(fitness, message):
    with RunStore(":memory:", meta={}) as store:
        store.record_ask(0, [1], None, None, None, 0.0)
        with pytest.raises(StoreError, match=message):
            store.record_result(0, "ok", fitness)
        assert [r.status for r in store.records()] == ["pending"]
