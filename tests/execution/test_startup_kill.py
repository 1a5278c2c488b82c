"""A search killed (SIGKILL) while it starts leaves either nothing or a resumable run.

A forked child runs ``nord search`` and kills itself before its k-th SQL
statement, for every k up to the first candidate's commit (and right before the
store is renamed into place); whatever it leaves, a fresh start or ``--resume``
in the same folder must then finish with the uninterrupted run's result.
"""

import os
import signal
import subprocess
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from nord.cli import main
from nord.execution.store import RunStore

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("NORD_DATA") or ROOT.parent / "shared" / "data")
NB201 = DATA / "nasbench201" / "nb201_tables.csv"

pytestmark = [pytest.mark.skipif(not NB201.exists(), reason="NAS-Bench-201 table not present"),
              pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")]

ARGS = ["search", "--space", "nasbench201", "--budget", "6", "--seed", "4", "--quiet"]


@pytest.fixture(scope="module")
def table():
    from nord.neural_nets.benchmarks.nasbench201 import NATSBench_Evaluator
    return NATSBench_Evaluator(str(NB201))


@pytest.fixture(autouse=True)
def data_env(monkeypatch, table):
    """The table read once for all of this module's (forked) runs."""
    from nord.execution.objectives import NASBench201Objective
    monkeypatch.setenv("NORD_DATA", str(DATA))
    monkeypatch.setattr(NASBench201Objective, "_make_evaluator", lambda self: table)


def rows(out):
    with RunStore(Path(out) / "run.sqlite", create=False) as store:
        return sorted((r.id, r.architecture, r.status, r.fitness) for r in store.finished())


def killed_start(out, arm) -> bool:
    """Run ``nord search`` in a forked child after ``arm()`` set its kill; True if killed."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            arm()
            main(ARGS + ["--out", str(out)])
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def kill_before_statement(k):
    """Arm: SIGKILL before the k-th SQL statement this process runs."""
    def arm():
        counter = [0]

        class Killing(sqlite3.Connection):
            def _tick(self):
                counter[0] += 1
                if counter[0] >= k:
                    os.kill(os.getpid(), signal.SIGKILL)

            def execute(self, *args, **kwargs):
                self._tick()
                return super().execute(*args, **kwargs)

            def executemany(self, *args, **kwargs):
                self._tick()
                return super().executemany(*args, **kwargs)

            def executescript(self, *args, **kwargs):
                self._tick()
                return super().executescript(*args, **kwargs)

        connect = sqlite3.connect
        sqlite3.connect = lambda *args, **kwargs: connect(*args, factory=Killing, **kwargs)
        # the start-up is over once the first candidate is committed
        import nord.execution.store as store
        record_ask = store.RunStore.record_ask

        def ask_then_stop(self, *args, **kwargs):
            record_ask(self, *args, **kwargs)
            os._exit(3)
        store.RunStore.record_ask = ask_then_stop
    return arm


def kill_at_rename():
    """Arm: SIGKILL when the new store is about to be renamed into place."""
    replace = os.replace

    def killing(source, target, *args, **kwargs):
        if str(target).endswith("run.sqlite"):
            os.kill(os.getpid(), signal.SIGKILL)
        return replace(source, target, *args, **kwargs)
    os.replace = killing


def recover_and_check(out, reference):
    """Either nothing was left (a fresh start works) or the run resumes to the reference."""
    store = out / "run.sqlite"
    if store.exists():
        with RunStore(store, create=False) as left:
            assert "settings" in left.meta(), "a store without settings can't be resumed"
        assert main(ARGS + ["--out", str(out), "--resume"]) == 0
    else:
        assert main(ARGS + ["--out", str(out)]) == 0
    assert rows(out) == reference
    assert [name for name in os.listdir(out) if ".new" in name] == []


def test_a_start_killed_before_any_statement_leaves_nothing_or_a_resumable_run(tmp_path):
    assert main(ARGS + ["--out", str(tmp_path / "reference")]) == 0  # also warms the table
    reference = rows(tmp_path / "reference")
    outcomes = []
    for k in range(1, 40):
        out = tmp_path / f"k{k}"
        killed = killed_start(out, kill_before_statement(k))
        outcomes.append(killed)
        if not killed:  # k lies past the first commit: the start-up has been swept
            break
        recover_and_check(out, reference)
    assert outcomes[-1] is False and sum(outcomes) >= 4


def test_a_start_killed_at_the_rename_leaves_nothing(tmp_path):
    assert main(ARGS + ["--out", str(tmp_path / "reference")]) == 0
    out = tmp_path / "renaming"
    assert killed_start(out, kill_at_rename)
    assert not (out / "run.sqlite").exists()
    recover_and_check(out, rows(tmp_path / "reference"))


@pytest.mark.slow
def test_a_real_sigkill_at_many_moments_of_a_pool_start(tmp_path):
    """SIGKILL (the whole process group) 0-60 ms after the run folder appears."""
    sync = ["--synchronous", "--cycle-size", "2"]
    assert main(ARGS + sync + ["--out", str(tmp_path / "reference")]) == 0
    reference = rows(tmp_path / "reference")
    env = dict(os.environ, NORD_DATA=str(DATA), PYTHONPATH=str(ROOT))
    for delay in (0.0, 0.005, 0.01, 0.02, 0.03, 0.045, 0.06):
        out = tmp_path / f"d{int(delay * 1000)}"
        process = subprocess.Popen(
            [sys.executable, "-m", "nord", *ARGS, *sync, "--workers", "2", "--out", str(out)],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.time() + 60
        while not (out / "run.lock").exists() and process.poll() is None:
            assert time.time() < deadline
            time.sleep(0.0005)
        time.sleep(delay)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        store = out / "run.sqlite"
        if store.exists():
            with RunStore(store, create=False) as left:
                assert "settings" in left.meta(), f"killed {delay * 1000:.0f} ms in"
            assert main(ARGS + sync + ["--out", str(out), "--resume", "--executor", "serial",
                                       "--workers", "1"]) == 0
        else:
            assert main(ARGS + sync + ["--out", str(out)]) == 0
        assert rows(out) == reference


OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE evaluations (id INTEGER PRIMARY KEY, architecture TEXT NOT NULL,
    descriptor TEXT, hash TEXT, status TEXT NOT NULL DEFAULT 'pending', fitness REAL,
    metrics TEXT, error TEXT, cached_from INTEGER, asked_at REAL NOT NULL, started_at REAL,
    finished_at REAL, cost REAL, worker TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    result_seq INTEGER, told INTEGER NOT NULL DEFAULT 0, ask_seconds REAL, tell_seconds REAL);
CREATE TABLE strategy_state (id INTEGER PRIMARY KEY CHECK (id = 1), saved_at REAL NOT NULL,
    state BLOB NOT NULL);
"""


def exit_code(argv) -> int:
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("leftover", ["zero bytes", "schema only"])
def test_an_empty_store_left_by_an_older_killed_start_is_replaced(tmp_path, leftover):
    """Before stores were created whole, a killed start left an empty run.sqlite (no
    settings, no evaluations) that blocked both a new start and --resume."""
    out = tmp_path / "run"
    out.mkdir()
    store = out / "run.sqlite"
    if leftover == "zero bytes":
        store.touch()
    else:
        db = sqlite3.connect(store)
        db.executescript(OLD_SCHEMA)
        db.close()
    assert exit_code(ARGS + ["--out", str(out), "--resume"]) == 2
    assert main(ARGS + ["--out", str(out)]) == 0
    assert main(ARGS + ["--out", str(tmp_path / "reference")]) == 0
    assert rows(out) == rows(tmp_path / "reference") and len(rows(out)) == 6


def test_a_store_holding_evaluations_is_never_replaced(tmp_path):
    out = tmp_path / "run"
    assert main(ARGS + ["--out", str(out)]) == 0
    assert exit_code(ARGS + ["--out", str(out)]) == 2
    assert len(rows(out)) == 6
