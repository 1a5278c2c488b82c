"""Pool workers that die: only their own candidate is charged, and none outlives its parent."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nord.design.strategies.evolution import RegularizedEvolution
from nord.errors import WorkerStartError
from nord.execution.executors import SerialExecutor
from nord.execution.process_pool import ProcessPoolExecutor
from nord.execution.run_loop import SearchRun
from nord.execution.store import RunStore
from nord.execution.tasks import Task
from tests.toy_search import ToyObjective, ToySpace, collect_all, value_of

ROOT = Path(__file__).resolve().parents[2]


def _claim(folder: str, name: str) -> bool:
    """True for the first process (of any worker) to claim ``name`` in ``folder``."""
    try:
        os.close(os.open(os.path.join(folder, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


class DyingObjective(ToyObjective):
    """ToyObjective whose worker kills itself (SIGKILL) mid-evaluation: at the evaluation
    starts numbered ``die_at`` (counted over every worker), and the first time it meets
    each value in ``die_on``. ``slow`` maps values to extra seconds of evaluation."""

    def __init__(self, folder, die_at=(), die_on=(), slow=None, delay=0.02):
        super().__init__(delay=delay)
        self.folder, self.die_at, self.die_on = str(folder), set(die_at), set(die_on)
        self.slow = dict(slow or {})

    def evaluate(self, descriptor):
        value = value_of(descriptor)
        number = 0
        while not _claim(self.folder, f"start-{number}"):
            number += 1
        if number in self.die_at or (value in self.die_on and _claim(self.folder, f"v{value}")):
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(self.slow.get(value, 0.0))
        return super().evaluate(descriptor)


class FailingStart(ToyObjective):
    def prepare(self):
        raise RuntimeError("no data on this worker")


def _unpickle_fails():
    raise RuntimeError("cannot be loaded here")


class UnloadableObjective(ToyObjective):
    def __reduce__(self):  # pickles in the parent, fails in the worker before it starts
        return _unpickle_fails, ()


@pytest.mark.slow
def test_a_healthy_candidate_is_not_charged_for_other_workers_deaths(tmp_path):
    objective = DyingObjective(tmp_path, die_on={11, 12}, slow={70: 1.5})
    space = ToySpace()
    with ProcessPoolExecutor(objective, workers=2, max_retries=1) as pool:
        for task_id, value in enumerate([70, 11, 12]):
            pool.submit(Task(task_id, space.to_descriptor(value)))
        results = collect_all(pool)
    assert [(r.id, r.status, r.fitness, r.attempts) for r in results] == [
        (0, "ok", 0.0, 1), (1, "ok", -59.0 ** 2, 2), (2, "ok", -58.0 ** 2, 2)]
    assert pool.restarts == 2 and sorted(pool.resubmitted) == [1, 2]


@pytest.mark.slow
def test_a_candidate_whose_worker_keeps_dying_fails_after_max_retries(tmp_path):
    space = ToySpace()
    with ProcessPoolExecutor(DyingObjective(tmp_path, die_at={0, 1}), workers=1,
                             max_retries=1) as pool:
        pool.submit(Task(0, space.to_descriptor(5)))
        [result] = collect_all(pool)
    assert (result.status, result.fitness, result.attempts) == ("failed", 0.0, 2)
    assert result.error.startswith("WorkerDied: the worker evaluating this candidate died 2 "
                                   "times (killed by signal 9 the last time")


def run_search(tmp_path, name, executor, budget):
    store = RunStore(tmp_path / name / "run.sqlite")
    strategy = RegularizedEvolution(ToySpace(), 6, 2, rng=3, synchronous=True, cycle_size=2)
    with executor:
        SearchRun(strategy, executor.objective, store, budget, executor=executor,
                  cache=False).run()
    return store


@pytest.mark.slow
def test_repeated_worker_kills_give_the_result_of_an_uninterrupted_run(tmp_path):
    reference = run_search(tmp_path, "reference", SerialExecutor(ToyObjective()), 24)
    (tmp_path / "marks").mkdir()
    pool = ProcessPoolExecutor(DyingObjective(tmp_path / "marks", die_at={3, 9, 15}), workers=2)
    killed = run_search(tmp_path, "killed", pool, 24)

    def rows(store):
        return [(r.id, r.architecture, r.status, r.fitness) for r in store.records()]

    assert rows(killed) == rows(reference)
    assert pool.restarts == 3 and len(set(pool.resubmitted)) == 3
    attempts = {r.id: r.attempts for r in killed.records()}
    assert {i: a for i, a in attempts.items() if a != 1} == {i: 2 for i in pool.resubmitted}
    assert {r.attempts for r in reference.records()} == {1}


def test_workers_outlive_the_thread_that_started_them():
    space = ToySpace()
    with ProcessPoolExecutor(ToyObjective(), workers=1) as pool:
        starter = threading.Thread(target=pool.submit, args=(Task(0, space.to_descriptor(5)),))
        starter.start()
        starter.join()  # on Linux a worker's parent-death signal follows the starting thread
        assert [r.id for r in collect_all(pool)] == [0]
        time.sleep(0.3)
        pool.submit(Task(1, space.to_descriptor(70)))
        assert [(r.id, r.fitness) for r in collect_all(pool)] == [(1, 0.0)]
        assert pool.restarts == 0


def test_an_error_while_a_worker_starts_is_raised_with_its_traceback():
    with ProcessPoolExecutor(FailingStart(), workers=1) as pool:
        pool.submit(Task(0, ToySpace().to_descriptor(5)))
        with pytest.raises(RuntimeError, match="no data on this worker") as raised:
            pool.collect()
    assert "in prepare" in str(raised.value.__cause__)


@pytest.mark.slow
def test_workers_that_die_before_starting_are_a_clear_error():
    with ProcessPoolExecutor(UnloadableObjective(), workers=1, max_retries=0) as pool:
        pool.submit(Task(0, ToySpace().to_descriptor(5)))
        with pytest.raises(WorkerStartError, match="keep dying while starting .*1 in a row"):
            pool.collect()


ORPHAN_SCRIPT = """
import os, subprocess, sys, time
from nord.execution.process_pool import ProcessPoolExecutor
from nord.execution.tasks import Task
from tests.toy_search import ToyObjective, ToySpace


class SpawningObjective(ToyObjective):
    def __init__(self, path):
        super().__init__()
        self.path = path

    def evaluate(self, descriptor):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        with open(self.path, "a") as handle:
            handle.write(f"{os.getpid()} {child.pid}\\n")
        time.sleep(120)


if __name__ == "__main__":
    pool = ProcessPoolExecutor(SpawningObjective(sys.argv[1]), workers=2)
    for i in range(2):
        pool.submit(Task(i, ToySpace().to_descriptor(5)))
    pool.collect()
"""


def _children_map():
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    return children


def descendants(pid):
    children, found, todo = _children_map(), [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_no_worker_or_what_it_started_outlives_a_killed_parent(tmp_path):
    script, pids = tmp_path / "pool.py", tmp_path / "pids"
    script.write_text(ORPHAN_SCRIPT)
    parent = subprocess.Popen([sys.executable, str(script), str(pids)],
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    family = []
    try:
        deadline = time.time() + 90
        while time.time() < deadline and (not pids.exists()
                                           or len(pids.read_text().splitlines()) < 2):
            assert parent.poll() is None, "the pool script ended early"
            time.sleep(0.05)
        started = [int(p) for p in pids.read_text().split()]
        family = descendants(parent.pid)  # the workers, their children, the resource tracker
        assert len(started) == 4 and set(started) <= set(family)
        parent.kill()
        parent.wait()
        deadline = time.time() + 5
        while any(alive(p) for p in family) and time.time() < deadline:
            time.sleep(0.05)
        assert [p for p in family if alive(p)] == []
    finally:
        parent.kill()
        for pid in family:  # never leave a leak behind, whatever the outcome
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
