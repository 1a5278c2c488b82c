"""The run loop and its SQLite store: every evaluation recorded once, resumable."""

import sqlite3

import pytest

from nord.design.strategies.evolution import RegularizedEvolution
from nord.design.strategies.random_search import RandomSearch
from nord.errors import DataNotFoundError
from nord.execution.run_loop import SearchRun
from nord.execution.store import RunStore, StoreError
from nord.execution.objectives import Outcome
from tests.toy_search import Crash, ToyObjective, ToySpace, crash_after


def search(tmp_path, name="run", seed=0, budget=40, objective=None, cache=True, callbacks=(),
           strategy=None):
    store = RunStore(tmp_path / name / "run.sqlite")
    strategy = strategy or RegularizedEvolution(ToySpace(), 8, 3, rng=seed)
    objective = objective or ToyObjective()
    run = SearchRun(strategy, objective, store, budget, cache=cache, callbacks=callbacks)
    return run, store, objective


def history(store):
    return [(r.id, r.architecture, r.status, r.fitness) for r in store.finished()]


def test_every_evaluation_is_recorded_once_with_its_outcome(tmp_path):
    run, store, objective = search(tmp_path, budget=60, cache=False)
    summary = run.run()
    records = store.records()
    assert [r.id for r in records] == list(range(60))
    assert all(r.told and r.status != "pending" for r in records)
    assert objective.calls == 60
    for r in records:
        if r.architecture % 13 == 0:
            assert r.status == "invalid" and r.fitness == 0.0
            assert "divisible by 13" in r.error
        else:
            assert r.status == "ok" and r.fitness == -(r.architecture - 70) ** 2
            assert r.metrics == {"value": r.architecture} and r.cost == 1.0
    assert summary.evaluations == 60 and summary.best.fitness == max(r.fitness for r in records)
    assert summary.simulated_cost == sum(1.0 for r in records if r.status == "ok")
    assert "60/60 evaluations" in summary.line()


def test_same_seed_same_search(tmp_path):
    first = search(tmp_path, "a", seed=4)
    second = search(tmp_path, "b", seed=4)
    first[0].run(), second[0].run()
    assert history(first[1]) == history(second[1])
    third = search(tmp_path, "c", seed=5)
    third[0].run()
    assert history(third[1]) != history(first[1])


def test_cache_reuses_isomorphic_results(tmp_path):
    run, store, objective = search(tmp_path, budget=80, cache=True)
    run.run()
    records = store.records()
    cached = [r for r in records if r.status == "cached"]
    assert cached, "evolution on 100 integers repeats itself"
    for r in cached:
        original = store.records("id = ?", (r.cached_from,))[0]
        assert original.architecture == r.architecture and original.fitness == r.fitness
        assert original.id < r.id
    assert objective.calls == len(records) - len(cached)


def test_failed_training_is_recorded_with_its_traceback(tmp_path):
    strategy = RandomSearch(ToySpace(), rng=0)
    run, store, _ = search(tmp_path, budget=100, cache=False, strategy=strategy,
                           objective=ToyObjective(fail_on=range(0, 100, 2)))
    summary = run.run()
    failed = store.records("status = 'failed'")
    assert failed and all(r.fitness == 0.0 for r in failed)
    assert "RuntimeError: training" in failed[0].error and "Traceback" in failed[0].error
    assert summary.statuses["failed"] == len(failed)


class NaNObjective(ToyObjective):
    """Answers NaN (a table cell without the metric, a diverged score) for odd values."""

    def evaluate(self, descriptor):
        outcome = super().evaluate(descriptor)
        if outcome.metrics["value"] % 2:
            return Outcome(float("nan"), outcome.metrics, outcome.cost)
        return outcome


def test_a_non_finite_fitness_is_a_failed_evaluation_not_a_poisoned_store(tmp_path):
    run, store, _ = search(tmp_path, budget=40, cache=False,
                           strategy=RandomSearch(ToySpace(), rng=0), objective=NaNObjective())
    summary = run.run()
    odd = [r for r in store.finished() if r.architecture % 2 and r.architecture % 13]
    assert odd and all(r.status == "failed" and r.fitness == 0.0 for r in odd)
    assert "NonFiniteFitness: the objective scored this candidate nan" in odd[0].error
    even = [r for r in store.finished() if r.status == "ok"]
    assert even and all(r.architecture % 2 == 0 for r in even)
    assert summary.evaluations == 40 and summary.statuses["failed"] == len(odd)


@pytest.mark.parametrize("crash_at", [1, 9, 23])
def test_a_crashed_run_resumes_with_nothing_lost_or_repeated(tmp_path, crash_at):
    reference = search(tmp_path, "reference", seed=2, budget=40)
    reference[0].run()
    run, store, objective = search(tmp_path, "crashed", seed=2, budget=40,
                                   callbacks=[crash_after(crash_at)])
    with pytest.raises(Crash):
        run.run()
    calls_before = objective.calls
    store.close()
    resumed, store, objective = search(tmp_path, "crashed", seed=999, budget=40)
    summary = resumed.run()
    assert summary.resumed
    assert history(store) == history(reference[1])
    assert calls_before + objective.calls == reference[2].calls  # nothing evaluated twice


def test_a_result_committed_but_not_told_is_told_on_resume(tmp_path, monkeypatch):
    reference = search(tmp_path, "reference", seed=3, budget=30)
    reference[0].run()
    run, store, _ = search(tmp_path, "crashed", seed=3, budget=30)
    calls = {"n": 0}
    original = RunStore.record_tell

    def record_tell(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 12:
            raise Crash  # dies after committing result 12, before its tell is saved
        return original(self, *args, **kwargs)

    monkeypatch.setattr(RunStore, "record_tell", record_tell)
    with pytest.raises(Crash):
        run.run()
    monkeypatch.setattr(RunStore, "record_tell", original)
    assert len(store.untold()) == 1
    store.close()
    resumed, store, _ = search(tmp_path, "crashed", seed=3, budget=30)
    resumed.run()
    assert history(store) == history(reference[1])


def test_a_setup_error_stops_the_run_and_keeps_what_was_done(tmp_path):
    class MissingTable(ToyObjective):
        def evaluate(self, descriptor):
            if self.calls == 5:
                raise DataNotFoundError("table not found")
            return super().evaluate(descriptor)

    run, store, _ = search(tmp_path, seed=1, budget=20, cache=False, objective=MissingTable())
    with pytest.raises(DataNotFoundError):
        run.run()
    assert store.count("pending") == 1 and store.count() == 6
    store.close()
    resumed, store, _ = search(tmp_path, seed=1, budget=20, cache=False)
    resumed.run()
    reference = search(tmp_path, "reference", seed=1, budget=20, cache=False)
    reference[0].run()
    assert history(store) == history(reference[1])


def test_budget_can_be_extended_on_resume(tmp_path):
    search(tmp_path, seed=6, budget=10)[0].run()
    run, store, _ = search(tmp_path, seed=6, budget=25)
    assert run.run().evaluations == 25
    reference = search(tmp_path, "reference", seed=6, budget=25)
    reference[0].run()
    assert history(store) == history(reference[1])


def test_store_refuses_double_results_and_unknown_candidates(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    store.record_ask(0, 5, None, "5", {"x": 1}, 0.0)
    store.record_result(0, "ok", 1.0)
    with pytest.raises(StoreError, match="already has a result"):
        store.record_result(0, "ok", 2.0)
    with pytest.raises(StoreError, match="never asked"):
        store.record_result(7, "ok", 2.0)
    with pytest.raises(StoreError, match="unknown status"):
        store.record_result(0, "great", 2.0)
    store.record_ask(1, 6, None, "6", {"x": 2}, 0.0)
    with pytest.raises(StoreError, match="fitness is nan; SQLite would store it as NULL"):
        store.record_result(1, "ok", float("nan"))
    assert [r.status for r in store.records()] == ["ok", "pending"]
    with pytest.raises(StoreError, match="no run store"):
        RunStore(tmp_path / "missing.sqlite", create=False)


def test_best_breaks_ties_by_ask_order_not_arrival_order(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    for i in range(3):
        store.record_ask(i, i, None, str(i), {}, 0.0)
    store.record_result(2, "ok", 0.9)  # arrives first
    store.record_result(1, "ok", 0.9)
    store.record_result(0, "ok", 0.5)
    assert store.best().id == 1


def test_store_is_plain_sqlite(tmp_path):
    run, store, _ = search(tmp_path, budget=12)
    run.run()
    db = sqlite3.connect(str(store.path))
    assert db.execute("SELECT COUNT(*) FROM evaluations WHERE status != 'pending'").fetchone() == (12,)
