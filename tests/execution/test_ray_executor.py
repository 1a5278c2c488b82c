"""The Ray executor: on a real local Ray instance (2 CPUs, started once for this module
and shut down at its end), and on a stand-in for Ray that runs tasks in this process.

The real-Ray tests compare whole searches on the NAS-Bench-201 table with the serial
and process pool executors, kill a Ray worker in the middle of an evaluation, and
check that no Ray process outlives the module.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid
from pathlib import Path

import pytest

from nord.design.strategies.evolution import RegularizedEvolution
from nord.errors import DataNotFoundError, ExecutorError, MissingDependencyError
from nord.execution.executors import make_executor
from nord.execution.ray_executor import resource_shortfall
from nord.execution.run_loop import SearchRun
from nord.execution.runs import SearchSettings, run_search
from nord.execution.store import RunStore
from nord.execution.tasks import Task
from tests.execution.ray_objectives import (CountingObjective, MissingDataObjective,
                                            StallOnceObjective)
from tests.toy_search import ToyObjective, ToySpace, collect_all

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("NORD_DATA") or ROOT.parent / "shared" / "data")
NB201 = DATA / "nasbench201" / "nb201_tables.csv"
needs_nb201 = pytest.mark.skipif(not NB201.exists(),
                                 reason=f"the NAS-Bench-201 table is not at {NB201}")


# ----------------------------------------------------------------- a local Ray instance
def _ray_processes():
    """Pids of the Ray processes descended from this one (raylet, GCS, workers); none
    where there is no /proc to look in."""
    if not Path("/proc/self/stat").exists():
        return []
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [os.getpid()]
    while todo:
        for pid in children.get(todo.pop(), []):
            todo.append(pid)
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"ray" in command:
                found.append(pid)
    return found


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs for this module's tests; afterwards, every Ray
    process it started must be gone."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[test]' "
                                            "(CI installs it, so these tests run there)")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    processes = _ray_processes()
    ray.shutdown()
    deadline = time.time() + 20
    while time.time() < deadline and any(_alive(pid) for pid in processes):
        time.sleep(0.1)
    left = [pid for pid in processes if _alive(pid)]
    assert not left, f"Ray processes left behind after ray.shutdown(): {left}"


# ----------------------------------------------------------------- same search, any executor
def search(tmp_path, executor, workers, synchronous):
    """A NAS-Bench-201 search of 40 evaluations; its records and its step log."""
    out = tmp_path / f"{executor}-{workers}-{'sync' if synchronous else 'async'}"
    settings = SearchSettings(space="nasbench201", strategy="evolution", budget=40,
                              population=6, sample=2, seed=0, table=str(NB201),
                              executor=executor, workers=workers, synchronous=synchronous,
                              cycle_size=2 if synchronous else None)
    run_search(settings, out)
    with RunStore(out / "run.sqlite", create=False) as store:
        records = [(r.id, r.architecture, r.status, r.fitness, r.cached_from, r.metrics)
                   for r in store.records()]
        return records, store.steps_since(0)


@pytest.mark.slow
@needs_nb201
def test_one_ray_worker_repeats_the_serial_and_pool_search_step_for_step(local_ray, tmp_path):
    serial = search(tmp_path, "serial", 1, synchronous=False)
    pooled = search(tmp_path, "process", 1, synchronous=False)
    on_ray = search(tmp_path, "ray", 1, synchronous=False)
    records, steps = serial
    assert len(records) == 40 and {r[2] for r in records} <= {"ok", "cached"}
    assert len(steps) == 80  # every ask and every tell, in the same order
    assert on_ray == serial
    assert pooled == serial


@pytest.mark.slow
@needs_nb201
def test_two_ray_workers_give_the_synchronous_search_of_the_pool_and_of_one(
        local_ray, tmp_path):
    # with two workers asks and tells interleave as results arrive, so the step logs
    # differ; a fixed cycle makes every candidate, and so every result, the same
    serial_records, _ = search(tmp_path, "serial", 1, synchronous=True)
    pool_records, _ = search(tmp_path, "process", 2, synchronous=True)
    ray_records, ray_steps = search(tmp_path, "ray", 2, synchronous=True)
    assert ray_records == serial_records  # the same architectures, fitness and metrics
    assert pool_records == serial_records
    assert [c for kind, c in ray_steps if kind == "ask"] == list(range(40))
    assert max(fitness for _, _, _, fitness, _, _ in ray_records) > 90.0  # it did search


def processes_mentioning(text):
    """Pids of the processes whose command line mentions ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def nord_search(*arguments, **env):
    """Run ``nord`` in a fresh interpreter; fail with what it printed if it fails."""
    done = subprocess.run([sys.executable, "-m", "nord", *arguments], cwd=ROOT,
                          env=dict(os.environ, **env), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"nord {' '.join(arguments)} failed:\n{done.stderr[-4000:]}"


@pytest.mark.slow
@needs_nb201
def test_nord_search_on_ray_starts_and_stops_its_own_instance(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[test]'")
    ray_dir = tempfile.mkdtemp(prefix="nord-ray-")  # short: Ray's socket paths are limited
    common = ["search", "--space", "nasbench201", "--budget", "12", "--population", "6",
              "--sample", "2", "--seed", "0", "--synchronous", "--cycle-size", "2",
              "--table", str(NB201), "--quiet"]
    try:
        nord_search(*common, "--executor", "ray", "--workers", "2", "--out",
                    str(tmp_path / "ray"), RAY_TMPDIR=ray_dir)
        deadline = time.time() + 20
        while processes_mentioning(ray_dir) and time.time() < deadline:
            time.sleep(0.1)
        left = processes_mentioning(ray_dir)
    finally:
        shutil.rmtree(ray_dir, ignore_errors=True)
    assert left == [], "the search left its Ray instance running"
    nord_search(*common, "--out", str(tmp_path / "serial"))
    runs = {}
    for name in ("ray", "serial"):
        with RunStore(tmp_path / name / "run.sqlite", create=False) as store:
            runs[name] = [(r.id, r.architecture, r.fitness) for r in store.records()]
            assert store.meta()["settings"]["executor"] == name
    assert len(runs["ray"]) == 12 and runs["ray"] == runs["serial"]


# ----------------------------------------------------------------- faults and set-up
def toy_run(tmp_path, executor, budget):
    store = RunStore(tmp_path / "run.sqlite")
    strategy = RegularizedEvolution(ToySpace(), 6, 2, rng=0, cycle_size=2)
    with executor:
        SearchRun(strategy, executor.objective, store, budget, executor=executor,
                  cache=False).run()
    return store


def kill_the_stalled_worker(marker, killed):
    """Kill the Ray worker whose pid ``marker`` holds (it is then mid-evaluation)."""
    deadline = time.time() + 60
    while time.time() < deadline:
        if marker.exists() and marker.read_text().endswith("\n"):
            pid = int(marker.read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.005)


@pytest.mark.slow
def test_a_killed_ray_worker_is_replaced_and_its_candidate_evaluated_again(
        local_ray, tmp_path):
    marker = tmp_path / "stalled"
    executor = make_executor("ray", StallOnceObjective(marker), workers=2)
    killed = []
    killer = threading.Thread(target=kill_the_stalled_worker, args=(marker, killed))
    killer.start()
    store = toy_run(tmp_path, executor, budget=8)
    killer.join()
    assert killed, "no Ray worker was killed"
    records = {r.id: r for r in store.records()}
    assert sorted(records) == list(range(8))
    for r in records.values():  # every candidate has its own, correct result
        expected = 0.0 if r.architecture % 13 == 0 else float(-(r.architecture - 70) ** 2)
        assert r.status in ("ok", "invalid") and r.told and r.fitness == expected
    [again] = executor.resubmitted  # only the killed worker's candidate, once
    assert records[again].worker.split(":")[1] != str(killed[0])  # finished by a live worker
    assert {i: r.attempts for i, r in records.items()} == {i: 2 if i == again else 1
                                                           for i in records}


def evaluate_all(executor, values):
    for i, value in enumerate(values):
        executor.submit(Task(i, ToySpace().to_descriptor(value)))
    return collect_all(executor)


@pytest.mark.slow
def test_a_ray_worker_loads_the_objective_once_for_all_its_tasks(local_ray):
    with make_executor("ray", CountingObjective(), workers=1) as executor:
        results = evaluate_all(executor, [70, 71, 72, 73])
    assert [r.fitness for r in results] == [0.0, -1.0, -4.0, -9.0]
    by_worker = {}
    for r in results:
        by_worker.setdefault(r.metrics["pid"], []).append(r.metrics["calls"])
    # each worker process prepared its copy once and counted its calls from 1
    assert all(calls == list(range(1, len(calls) + 1)) for calls in by_worker.values())
    assert {r.metrics["prepared"] for r in results} == {1}
    assert max(len(calls) for calls in by_worker.values()) >= 2  # reused, not reloaded


class DriverOnlyObjective(ToyObjective):
    """Defined in this test file, which Ray workers cannot import."""


@pytest.mark.slow
def test_a_set_up_error_in_a_ray_worker_stops_the_run_with_its_own_type(local_ray):
    with make_executor("ray", MissingDataObjective(), workers=1) as executor:
        executor.submit(Task(0, ToySpace().to_descriptor(70)))
        with pytest.raises(DataNotFoundError) as raised:
            executor.collect()
    assert type(raised.value) is DataNotFoundError  # as raised, not wrapped by Ray
    assert str(raised.value) == "no data at /nowhere: set NORD_DATA"


@pytest.mark.slow
def test_an_objective_ray_workers_cannot_import_is_a_clear_error(local_ray):
    with make_executor("ray", DriverOnlyObjective(), workers=1) as executor:
        executor.submit(Task(0, ToySpace().to_descriptor(70)))
        with pytest.raises(ExecutorError, match="^the objective could not be loaded on the "
                           "Ray worker .*No module named 'test_ray_executor'.*; its class must "
                           "be importable on every Ray node"):
            executor.collect()


@pytest.mark.slow
@pytest.mark.parametrize("options, asked", [
    ({"gpus": 1000.0}, "1000 GPU"), ({"threads": 64}, "64 CPU")])
def test_a_request_no_ray_node_can_meet_is_refused_not_left_waiting(local_ray, options, asked):
    refused = f"asks for .*{asked}.* so no evaluation could ever start: lower --gpus"
    with pytest.raises(ExecutorError, match=refused):
        make_executor("ray", ToyObjective(), workers=1, **options)
    assert local_ray.is_initialized()  # the instance it did not start is left running


def test_resource_shortfall_looks_for_one_node_that_can_run_a_task():
    nodes = [{"Alive": True, "Resources": {"CPU": 8.0}},
             {"Alive": True, "Resources": {"CPU": 2.0, "GPU": 1.0}},
             {"Alive": False, "Resources": {"CPU": 64.0, "GPU": 8.0}}]
    assert resource_shortfall(nodes, cpus=8, gpus=0) is None
    assert resource_shortfall(nodes, cpus=2, gpus=1) is None
    assert resource_shortfall(nodes, cpus=4, gpus=1) == (
        "each evaluation asks for 4 CPU(s) and 1 GPU(s), but the largest node of the Ray "
        "cluster has 2 CPU(s) and 1 GPU(s)")
    assert resource_shortfall(nodes[2:], cpus=1, gpus=0) == "the Ray cluster has no alive node"


# ----------------------------------------------------------------- a stand-in for Ray
class FakeRef:
    def __init__(self, value):
        self.value, self._hex = value, uuid.uuid4().hex

    def hex(self):
        return self._hex


class FakeRay(types.ModuleType):
    """Just enough of Ray to run tasks in this process; ``crashes[id]``: how many times
    the worker evaluating task ``id`` dies before one finishes it."""

    def __init__(self, crashes):
        super().__init__("ray")
        self.crashes, self.options = dict(crashes), {}
        self.exceptions = types.SimpleNamespace(
            RayTaskError=type("RayTaskError", (Exception,), {}),
            WorkerCrashedError=type("WorkerCrashedError", (Exception,), {}),
            NodeDiedError=type("NodeDiedError", (Exception,), {}))

    def is_initialized(self):
        return True

    def nodes(self):
        return [{"Alive": True, "Resources": {"CPU": 4.0}}]

    def put(self, value):
        return FakeRef(value)

    def remote(self, function):
        fake = self

        class Remote:
            def options(self, **options):
                fake.options = options
                return self

            def remote(self, *args):
                return lambda: fake._run(function, *args)
        return Remote()

    def _run(self, function, boxed, task, threads):
        if self.crashes.get(task.id, 0) > 0:
            self.crashes[task.id] -= 1
            raise self.exceptions.WorkerCrashedError("the worker died")
        return function(boxed, task, threads)

    def wait(self, refs, num_returns=1, timeout=None):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        return ref.value if isinstance(ref, FakeRef) else ref()

    def cancel(self, ref, force=False):
        pass


def test_ray_counts_each_attempt_after_a_worker_died(monkeypatch):
    import torch
    fake = FakeRay(crashes={1: 1, 2: 5})
    monkeypatch.setitem(sys.modules, "ray", fake)
    threads = torch.get_num_threads()
    try:
        executor = make_executor("ray", ToyObjective(), workers=3, max_retries=2)
        results = evaluate_all(executor, [70, 71, 72])
    finally:
        torch.set_num_threads(threads)
    assert fake.options["max_retries"] == 0  # retried by the executor, which counts them
    assert [(r.id, r.status, r.fitness, r.attempts) for r in results] == [
        (0, "ok", 0.0, 1), (1, "ok", -1.0, 2), (2, "failed", 0.0, 3)]
    assert "died 3 times" in results[2].error
    assert executor.resubmitted == [1, 2, 2]


def test_ray_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match="pip install 'nord\\[ray\\]'"):
        make_executor("ray", ToyObjective(), workers=2)
