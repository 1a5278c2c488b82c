"""Executors: serial, and a local process pool (with a worker killed mid-run);
the Ray executor's tests are in test_ray_executor.py."""

import os
import signal
import threading
import time

import pytest

from nord.design.strategies.evolution import RegularizedEvolution
from nord.errors import NordError, SettingsError
from nord.execution.executors import SerialExecutor, make_executor
from nord.execution.process_pool import ProcessPoolExecutor, threads_per_worker, worker_gpu
from nord.execution.run_loop import SearchRun
from nord.execution.store import RunStore
from nord.execution.tasks import set_worker_device, worker_name
from tests.toy_search import (ToyObjective, ToySpace, TwoWorkersObjective,
                              WorkerNumberObjective, collect_all)


def run(tmp_path, name, executor, budget=30, seed=0, synchronous=False, workers=1):
    store = RunStore(tmp_path / name / "run.sqlite")
    strategy = RegularizedEvolution(ToySpace(), 6, 2, rng=seed, synchronous=synchronous,
                                    cycle_size=workers)
    with executor:
        summary = SearchRun(strategy, executor.objective, store, budget, executor=executor,
                            cache=False).run()
    return summary, store


def rows(store):
    return [(r.id, r.architecture, r.status, r.fitness) for r in store.finished()]


def check_each_evaluation_once(store, budget):
    records = store.records()
    assert [r.id for r in records] == list(range(budget))
    for r in records:
        assert r.status in ("ok", "invalid") and r.told
        expected = 0.0 if r.architecture % 13 == 0 else -(r.architecture - 70) ** 2
        assert r.fitness == expected


def test_threads_are_shared_between_workers():
    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(4, cores=16) == 4
    assert threads_per_worker(8, cores=2) == 1


def test_workers_take_the_visible_gpus_in_turn():
    assert [worker_gpu(i, 4) for i in range(6)] == [0, 1, 2, 3, 0, 1]
    assert [worker_gpu(i, 1) for i in range(3)] == [0, 0, 0]
    assert worker_gpu(0, 0) is None and worker_gpu(5, 0) is None


def test_each_worker_of_a_pool_gets_its_own_number(tmp_path):
    executor = ProcessPoolExecutor(WorkerNumberObjective(delay=0.05), workers=2)
    _, store = run(tmp_path, "pool", executor, budget=16, workers=2)
    numbers = {r.metrics["worker"]: r.worker for r in store.finished() if r.status == "ok"}
    assert sorted(numbers) == [0, 1]  # one number per worker process, from 0
    assert len(set(numbers.values())) == 2


def test_a_worker_given_a_gpu_names_it(monkeypatch):
    from nord.execution import tasks
    monkeypatch.setattr(tasks, "_worker_device", "")
    plain = worker_name()
    set_worker_device("cuda:1")
    assert worker_name() == plain + ":cuda:1"


class ThreadCountObjective(ToyObjective):
    def evaluate(self, descriptor):
        import torch
        outcome = super().evaluate(descriptor)
        outcome.metrics["threads"] = torch.get_num_threads()
        return outcome


def test_the_serial_executor_trains_on_the_threads_it_is_given():
    import torch
    from nord.execution.tasks import Task
    from tests.toy_search import ToySpace as Space
    before = torch.get_num_threads()
    executor = make_executor("serial", ThreadCountObjective(), threads=1)
    executor.submit(Task(0, Space().to_descriptor(5)))
    assert executor.collect()[0].metrics["threads"] == 1
    assert torch.get_num_threads() == before  # only while evaluating
    with pytest.raises(NordError, match="threads must be at least 1"):
        make_executor("serial", ThreadCountObjective(), threads=0)


def test_one_worker_reproduces_the_serial_run(tmp_path):
    _, serial = run(tmp_path, "serial", SerialExecutor(ToyObjective()))
    _, pooled = run(tmp_path, "pool", ProcessPoolExecutor(ToyObjective(), workers=1))
    assert rows(pooled) == rows(serial)


@pytest.mark.parametrize("synchronous", [False, True])
def test_two_workers_record_every_evaluation_once(tmp_path, synchronous):
    # a pool hands tasks to the workers that are ready: the objective holds the first
    # worker until the second one (started later under load) has begun an evaluation
    objective = TwoWorkersObjective(str(tmp_path / "pids"), delay=0.01)
    executor = ProcessPoolExecutor(objective, workers=2)
    summary, store = run(tmp_path, "pool", executor, budget=40, synchronous=synchronous,
                         workers=2)
    check_each_evaluation_once(store, 40)
    workers = {r.worker for r in store.records()}
    assert len(workers) == 2  # both processes evaluated


@pytest.mark.slow
def test_a_worker_killed_mid_run_is_replaced_and_nothing_is_lost(tmp_path):
    pid_file = tmp_path / "pids"
    executor = ProcessPoolExecutor(ToyObjective(delay=0.05, pid_file=str(pid_file)), workers=2)
    killed = []

    def killer():
        deadline = time.time() + 60
        while time.time() < deadline:
            if pid_file.exists():
                pids = pid_file.read_text().split()
                if len(pids) >= 12:
                    pid = int(pids[-1])
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    return
            time.sleep(0.01)

    thread = threading.Thread(target=killer)
    thread.start()
    summary, store = run(tmp_path, "pool", executor, budget=40, workers=2)
    thread.join()
    assert killed, "no worker was killed"
    assert executor.restarts >= 1
    check_each_evaluation_once(store, 40)
    assert executor.resubmitted, "the killed worker's evaluation should have been resubmitted"
    finished_by = {r.id: r.worker.split(":")[-1] for r in store.records()}
    for task_id in executor.resubmitted:
        assert finished_by[task_id] != str(killed[0])  # finished by a live worker
    # only the killed worker's candidate was charged a second attempt
    assert executor.restarts == 1 and len(executor.resubmitted) == 1
    assert {r.id: r.attempts for r in store.records() if r.attempts != 1} == {
        executor.resubmitted[0]: 2}


def test_make_executor_names_its_choices():
    with pytest.raises(NordError, match="choose --executor process or ray"):
        make_executor("serial", ToyObjective(), workers=2)
    with pytest.raises(NordError, match="available: serial, process, ray"):
        make_executor("mpi", ToyObjective())


@pytest.mark.parametrize("kind", ["serial", "process", "ray"])
def test_zero_workers_or_threads_are_refused_naming_the_flag(kind):
    with pytest.raises(SettingsError, match="^--workers must be at least 1 .*got 0: pass "
                                            "--workers 1 or more$"):
        make_executor(kind, ToyObjective(), workers=0)
    with pytest.raises(SettingsError, match="^--threads must be at least 1 .*got 0: pass "
                                            "--threads 1 or more"):
        make_executor(kind, ToyObjective(), workers=1, threads=0)


def test_the_pool_itself_refuses_zero_workers_or_threads():
    with pytest.raises(SettingsError, match="workers must be at least 1, got 0: pass "
                                            "--workers 1 or more"):
        ProcessPoolExecutor(ToyObjective(), workers=0)
    with pytest.raises(SettingsError, match="threads must be at least 1, got 0: pass "
                                            "--threads 1 or more"):
        ProcessPoolExecutor(ToyObjective(), workers=2, threads=0)


@pytest.mark.parametrize("kind", ["serial", "process"])
def test_ray_only_options_elsewhere_name_the_flag(kind):
    with pytest.raises(SettingsError, match="^--gpus applies to the Ray executor only: add "
                                            "--executor ray, or leave --gpus out"):
        make_executor(kind, ToyObjective(), gpus=1.0)
    with pytest.raises(SettingsError, match="^--ray-address applies to the Ray executor"):
        make_executor(kind, ToyObjective(), address="auto")


def test_serial_results_record_one_attempt_and_cached_ones_none(tmp_path):
    store = RunStore(tmp_path / "run.sqlite")
    strategy = RegularizedEvolution(ToySpace(), 6, 2, rng=0)
    SearchRun(strategy, ToyObjective(), store, 30, cache=True).run()
    attempts = {(r.status == "cached", r.attempts) for r in store.records()}
    assert attempts == {(False, 1), (True, 0)}


@pytest.mark.slow
def test_submitting_to_a_pool_whose_idle_worker_died(tmp_path):
    from nord.execution.tasks import Task
    from tests.toy_search import ToySpace as Space
    pid_file = tmp_path / "pids"
    space = Space()
    with ProcessPoolExecutor(ToyObjective(pid_file=str(pid_file)), workers=1) as pool:
        pool.submit(Task(0, space.to_descriptor(5)))
        assert [r.id for r in pool.collect()] == [0]
        os.kill(int(pid_file.read_text().split()[-1]), signal.SIGKILL)
        time.sleep(1.0)  # let the pool notice it is broken
        pool.submit(Task(1, space.to_descriptor(70)))  # must not raise BrokenProcessPool
        results = collect_all(pool)
        assert [(r.id, r.status, r.fitness) for r in results] == [(1, "ok", 0.0)]
        assert pool.restarts == 1
