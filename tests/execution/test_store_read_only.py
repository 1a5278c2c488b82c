"""RunStore(read_only=True): reads what is committed, writes nothing, creates nothing."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from nord.errors import ReadOnlyStoreError, StoreError
from nord.execution.store import SCHEMA_VERSION, RunStore


def written_store(path):
    store = RunStore(path, meta={"settings": {"space": "nasbench201"}})
    store.record_ask(0, "a", None, "a", {}, 0.0)
    store.record_result(0, "ok", 0.5)
    return store


def test_a_read_only_store_reads_and_refuses_every_write(tmp_path):
    path = tmp_path / "run.sqlite"
    written_store(path).close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with RunStore(path, create=False, read_only=True) as store:
        assert [r.fitness for r in store.finished()] == [0.5]
        assert store.meta() == {"settings": {"space": "nasbench201"}}
        with pytest.raises(ReadOnlyStoreError, match="read_only=True"):
            store.set_meta(note="x")
        with pytest.raises(ReadOnlyStoreError, match="read_only=True"):
            store.record_ask(1, "b", None, "b", {}, 0.0)
        with pytest.raises(ReadOnlyStoreError, match="read_only=True"):
            store.check_writable()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_it_sees_only_committed_results_of_a_writer(tmp_path):
    path = tmp_path / "run.sqlite"
    with written_store(path) as writer, RunStore(path, read_only=True) as reader:
        writer.db.execute("BEGIN IMMEDIATE")
        writer.db.execute("UPDATE evaluations SET fitness = 9 WHERE id = 0")
        assert reader.best().fitness == 0.5
        writer.db.execute("COMMIT")
        assert reader.best().fitness == 9


def test_nothing_is_created_for_a_missing_or_empty_store(tmp_path):
    with pytest.raises(StoreError, match="no run store"):
        RunStore(tmp_path / "run.sqlite", read_only=True)
    assert list(tmp_path.iterdir()) == []
    sqlite3.connect(tmp_path / "empty.sqlite").close()
    with pytest.raises(StoreError, match="holds no tables"):
        RunStore(tmp_path / "empty.sqlite", read_only=True)
    with pytest.raises(StoreError, match="existing store file"):
        RunStore(":memory:", read_only=True)


def test_a_newer_store_is_refused_and_left_as_it_is(tmp_path):
    path = tmp_path / "run.sqlite"
    written_store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match=f"version {SCHEMA_VERSION + 1}"):
        RunStore(path, read_only=True)
