"""Strategy state is saved at a cost that does not grow with the run, and resumes exactly.

The run loop logs every ask and tell and saves the whole strategy state only
every ``checkpoint_every`` steps (its large arrays as chunks, only the changed
ones written); a resumed run replays the steps since the checkpoint.
"""

import time
from pathlib import Path

import numpy as np
import pytest

from nord import safe_pickle
from nord.design.spaces.nasbench101 import NASBench101Space
from nord.design.strategies.evolution import RegularizedEvolution
from nord.design.strategies.random_search import RandomSearch
from nord.design.strategies.reinforcement import DQNAgent
from nord.execution.executors import SerialExecutor
from nord.execution.objectives import Objective, Outcome
from nord.execution.run_loop import SearchRun
from nord.execution.store import RunStore, StoreError
from tests.toy_search import Crash, ToyObjective, ToySpace, crash_after


class CellShare(Objective):
    """Fitness of a NAS-Bench-101 cell without a table: its share of 3x3 convolutions."""

    name = "cell-share"

    def __init__(self):
        self.calls = 0

    def evaluate(self, descriptor):
        self.calls += 1
        inner = [s.layer for s in descriptor.layers.values() if s.layer not in ("input", "output")]
        return Outcome(sum(op == "conv3x3-bn-relu" for op in inner) / 5.0, {}, cost=1.0)


class NewestFirst(SerialExecutor):
    """Three in flight, the newest evaluated first: asks and tells interleave, out of order."""

    capacity = 3

    def collect(self):
        self._queue.rotate(1)  # the newest to the front, the others keep their order
        return super().collect()


class HalfDescribable(ToySpace):
    """Odd integers have no descriptor: their asks end as ``invalid`` at once."""

    def to_descriptor(self, architecture):
        if architecture % 2:
            raise ValueError(f"{architecture} is odd")
        return super().to_descriptor(architecture)


STRATEGIES = {
    "undescribable": lambda seed: (RandomSearch(HalfDescribable(), rng=seed), ToyObjective),
    "random": lambda seed: (RandomSearch(ToySpace(), rng=seed), ToyObjective),
    "evolution": lambda seed: (RegularizedEvolution(ToySpace(), 8, 3, rng=seed), ToyObjective),
    "synchronous": lambda seed: (RegularizedEvolution(ToySpace(), 6, 3, rng=seed,
                                                      synchronous=True, cycle_size=3),
                                 ToyObjective),
    "rl": lambda seed: (DQNAgent(NASBench101Space(), rng=seed, memory_size=300), CellShare),
    # without novelty replays, so that the policy proposes repeats (found cached)
    "rl-repeats": lambda seed: (DQNAgent(NASBench101Space(), rng=seed, memory_size=300,
                                         novelty_tries=0), CellShare),
}


def search(tmp_path, name, strategy, seed=1, budget=60, every=7, callbacks=()):
    strategy, objective_type = STRATEGIES[strategy](seed)
    objective = objective_type()
    store = RunStore(tmp_path / name / "run.sqlite")
    run = SearchRun(strategy, objective, store, budget, executor=NewestFirst(objective),
                    callbacks=callbacks)
    run.checkpoint_every = every
    return run, store, objective


def history(store):
    return [(r.id, r.architecture, r.status, r.fitness) for r in store.finished()]


@pytest.mark.parametrize("strategy", ["random", "evolution", "synchronous", "rl"])
@pytest.mark.parametrize("crash_at", [5, 23])
def test_a_crashed_run_resumes_exactly_for_every_strategy(tmp_path, strategy, crash_at):
    reference = search(tmp_path, "reference", strategy)
    reference[0].run()
    run, store, objective = search(tmp_path, "crashed", strategy, callbacks=[crash_after(crash_at)])
    with pytest.raises(Crash):
        run.run()
    calls_before = objective.calls
    logged = store.db.execute("SELECT COUNT(*) FROM strategy_events").fetchone()[0]
    assert logged % 7 != 1, "the crash should leave steps to replay after the checkpoint"
    store.close()
    resumed, store, objective = search(tmp_path, "crashed", strategy, seed=999)
    assert resumed.run().resumed
    assert history(store) == history(reference[1])
    assert calls_before + objective.calls == reference[2].calls  # nothing evaluated twice


@pytest.mark.parametrize("strategy,crash_at,status", [
    ("evolution", 17, "cached"), ("rl-repeats", 16, "cached"), ("undescribable", 14, "invalid"),
    ("evolution", 15, "ok")])
def test_a_run_killed_right_after_an_ask_resumes_exactly(tmp_path, monkeypatch, strategy,
                                                         crash_at, status):
    """Killed before the asked candidate is found cached, invalid or sent out."""
    reference = search(tmp_path, "reference", strategy, budget=40)
    reference[0].run()
    assert reference[1].records("id = ?", (crash_at,))[0].status == status
    run, store, _ = search(tmp_path, "crashed", strategy, budget=40)
    original, calls = RunStore.record_ask, {"n": 0}

    def record_ask(self, *args, **kwargs):
        original(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == crash_at + 1:
            raise Crash  # the ask is committed, its candidate never reached the executor

    monkeypatch.setattr(RunStore, "record_ask", record_ask)
    with pytest.raises(Crash):
        run.run()
    monkeypatch.setattr(RunStore, "record_ask", original)
    store.close()
    resumed, store, _ = search(tmp_path, "crashed", strategy, budget=40)
    resumed.run()
    assert history(store) == history(reference[1])


def test_the_whole_state_is_saved_only_every_so_many_steps(tmp_path, monkeypatch):
    saved = []
    original = RunStore._save_state
    monkeypatch.setattr(RunStore, "_save_state",
                        lambda self, state, step: (saved.append(step), original(self, state, step)))
    run, store, _ = search(tmp_path, "run", "evolution", budget=30, every=10)
    run.run()
    steps = store.db.execute("SELECT COUNT(*) FROM strategy_events").fetchone()[0]
    assert steps == 60  # an ask and a tell per evaluation
    assert saved == [1, 11, 21, 31, 41, 51, 60]  # the first step, every 10th, and the end
    assert store.load_checkpoint()[1] == 60 and store.steps_since(60) == []


def test_a_replay_that_proposes_something_else_is_refused(tmp_path):
    run, store, _ = search(tmp_path, "crashed", "evolution", every=1000,
                           callbacks=[crash_after(20)])
    with pytest.raises(Crash):
        run.run()
    store.db.execute("UPDATE evaluations SET architecture = '1000' WHERE id = 12")
    store.close()
    resumed, store, _ = search(tmp_path, "crashed", "evolution")
    with pytest.raises(StoreError, match=r"replayed step \d+ of \d+ .* asks \(12, \d+\), but the "
                                         r"store recorded candidate 12 as 1000; .*another --out"):
        resumed.run()


def test_a_step_log_that_lost_steps_is_refused(tmp_path):
    run, store, _ = search(tmp_path, "crashed", "evolution", callbacks=[crash_after(20)])
    with pytest.raises(Crash):
        run.run()
    store.db.execute("DELETE FROM strategy_events WHERE seq > (SELECT MAX(seq) - 3 "
                     "FROM strategy_events)")
    store.close()
    resumed, store, _ = search(tmp_path, "crashed", "evolution")
    with pytest.raises(StoreError, match=r"do not account for the store's candidates \(the "
                                         r"strategy asked \d+ and awaits .*damaged"):
        resumed.run()


def write_like_the_previous_version(self, kind, candidate_id, state):
    """How stores were written before the step log: the whole state at every step."""
    self.db.execute("INSERT OR REPLACE INTO strategy_state VALUES (1, ?, ?)",
                    (time.time(), safe_pickle.dumps(state)))


@pytest.mark.parametrize("strategy", ["evolution", "rl"])
def test_a_store_from_the_previous_version_still_resumes(tmp_path, monkeypatch, strategy):
    reference = search(tmp_path, "reference", strategy)
    reference[0].run()
    run, store, _ = search(tmp_path, "old", strategy, every=1, callbacks=[crash_after(23)])
    monkeypatch.setattr(RunStore, "_log_step", write_like_the_previous_version)
    with pytest.raises(Crash):
        run.run()
    monkeypatch.undo()
    assert store.db.execute("SELECT COUNT(*) FROM strategy_events").fetchone()[0] == 0
    store.close()
    resumed, store, _ = search(tmp_path, "old", strategy)
    resumed.run()
    assert history(store) == history(reference[1])


def test_chunks_of_an_array_change_only_where_its_rows_do():
    memory = np.arange(4000 * 45, dtype=np.float32).reshape(4000, 45)
    state = {"memory": [memory, "x"], "small": np.zeros(3), "n": 4}
    skeleton, chunks = safe_pickle.split(state, chunk_bytes=4096)
    assert len(chunks) == 4000 // (4096 // 180) + 1 and skeleton["small"] is state["small"]
    loaded = safe_pickle.join(safe_pickle.loads(safe_pickle.dumps(skeleton)), chunks)
    assert np.array_equal(loaded["memory"][0], memory) and loaded["memory"][1] == "x"
    assert loaded["memory"][0].dtype == np.float32 and loaded["n"] == 4
    memory[1000:1003] = -1.0  # a ring buffer's few new rows
    changed = set(safe_pickle.split(state, chunk_bytes=4096)[1]) - set(chunks)
    assert len(changed) == 1


def test_a_chunked_array_of_objects_is_refused():
    reference = {"__nord_chunks__": [], "dtype": "|O", "shape": [0]}
    with pytest.raises(safe_pickle.UnsafePickleError, match="holds objects"):
        safe_pickle.join({"memory": reference}, {})


def test_a_missing_chunk_is_a_clear_store_error(tmp_path):
    run, store, _ = search(tmp_path, "run", "rl", budget=60)
    run.run()
    assert store.db.execute("SELECT COUNT(*) FROM strategy_chunks").fetchone()[0] > 1
    store.db.execute("DELETE FROM strategy_chunks WHERE rowid = (SELECT MIN(rowid) "
                     "FROM strategy_chunks)")
    with pytest.raises(StoreError, match="1 chunks of a saved array are missing.*start a new run"):
        store.load_state()


def rl_run(path, strategy, objective, budget, window):
    """Bytes the store's log file grew by (SQLite never folds it back here) and state
    bytes written, per evaluation, over ``window`` evaluations around each mark."""
    store = RunStore(path)
    store.db.execute("PRAGMA wal_autocheckpoint=0")  # every write stays in the WAL file
    wal = Path(str(path) + "-wal")
    samples = {}

    def sample(event):
        samples[event.done] = (wal.stat().st_size, store.state_bytes_written)

    SearchRun(strategy, objective, store, budget, cache=False, callbacks=[sample]).run()
    store.close()

    def per_evaluation(mark):
        (wal0, state0), (wal1, state1) = samples[mark - window // 2], samples[mark + window // 2]
        return (wal1 - wal0) / window, (state1 - state0) / window
    return per_evaluation


class Constant(Objective):
    """The same fitness for every cell: the agent's episodes keep their length."""

    def evaluate(self, descriptor):
        return Outcome(0.5, {}, cost=1.0)


def test_rl_state_saving_cost_stays_flat_as_the_replay_memory_fills(tmp_path):
    """The memory (500 transitions, about 3 an evaluation) fills by evaluation ~180."""
    agent = DQNAgent(NASBench101Space(), rng=0, memory_size=500)
    per_evaluation = rl_run(tmp_path / "run.sqlite", agent, Constant(), 300, 100)
    assert len(agent.memory) == 500
    (wal_early, state_early), (wal_late, state_late) = per_evaluation(60), per_evaluation(240)
    assert abs(wal_late - wal_early) <= 0.2 * wal_early, (wal_early, wal_late)
    assert abs(state_late - state_early) <= 0.2 * state_early, (state_early, state_late)
    assert state_late < 8 * 1024  # the memory alone is 500 * 389 bytes


@pytest.mark.slow
def test_rl_on_nasbench101_writes_as_much_at_evaluation_2000_as_at_100(tmp_path, monkeypatch):
    """The search of the issue: the replay memory (5,000 transitions) fills by ~1,300."""
    from nord.execution.runs import SearchSettings
    from tests.neural_nets.nasbench101_cases import data_root_or_skip
    monkeypatch.setenv("NORD_DATA", str(data_root_or_skip()))
    settings = SearchSettings(space="nasbench101", strategy="rl", budget=2050, seed=0)
    objective = settings.build_objective()
    objective.prepare()
    strategy = settings.build_strategy(settings.build_space(objective))
    per_evaluation = rl_run(tmp_path / "run.sqlite", strategy, objective, 2050, 100)
    (wal_early, state_early), (wal_late, state_late) = per_evaluation(100), per_evaluation(2000)
    assert abs(wal_late - wal_early) <= 0.2 * wal_early, (wal_early, wal_late)
    assert abs(state_late - state_early) <= 0.2 * state_early, (state_early, state_late)
