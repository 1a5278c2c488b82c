"""The ``predictor`` objective (chapter 7): a GCN genome's fitness is the Kendall tau of
its trained ranker on unseen NAS-Bench-101 cells; ``nord search --space gcn`` uses it."""

import os
import pickle
from pathlib import Path

import pytest

from nord.cli import main
from nord.errors import OutOfSearchSpaceError, SettingsError
from nord.execution.store import RunStore

pytest.importorskip("torch_geometric")

from nord.design.predictors.egraph import SiameseGCN, egraph_architecture  # noqa: E402
from nord.design.spaces.gcn import GCNSpace  # noqa: E402
from nord.execution.objectives import make_objective  # noqa: E402
from nord.execution.predictor_objective import (PredictorObjective,  # noqa: E402
                                                load_architecture_dataset)
from nord.execution.runs import SearchSettings, run_search  # noqa: E402
from nord.execution.tasks import Task, run_task  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("NORD_DATA") or ROOT.parent / "shared" / "data")
NB101 = DATA / "nasbench101" / "nb101_30k_subset.csv.gz"
needs_table = pytest.mark.skipif(not NB101.exists(), reason="../shared/data not present")
#: a tiny setting: 24 cells (17 train, 7 validation), one epoch of 2 steps
TINY = {"size": 24, "batch_size": 64}


@pytest.fixture(autouse=True)
def data_env(monkeypatch):
    monkeypatch.setenv("NORD_DATA", str(DATA))


def genome(filters=8):
    return egraph_architecture(filters=filters)


@needs_table
def test_a_known_genome_scores_a_tau_and_the_same_seed_repeats_it():
    objective = PredictorObjective(**TINY, seed=3)
    objective.prepare()
    split = objective.evaluator
    assert (len(split.train), len(split.validation)) == (17, 7)
    assert not set(split.train.keys) & set(split.validation.keys)
    outcome = objective.evaluate(GCNSpace().to_descriptor(genome()))
    assert -1 < outcome.fitness <= 1 and not outcome.failed
    assert outcome.fitness == outcome.metrics["tau"]
    assert sorted(outcome.metrics) == ["loss", "parameters", "tau", "top50_tau",
                                       "validation_size"]
    # F=8: two SAGE_LSTM.H layers (5 -> 4, 4 -> 4; LSTM hidden = input) and the head
    lstm = [4 * 5 * (5 + 5) + 2 * 4 * 5, 4 * 4 * (4 + 4) + 2 * 4 * 4]
    sage = [5 * 4 + 4 + 5 * 4, 4 * 4 + 4 + 4 * 4]
    head = (8 * 4 + 4) + (4 * 3 + 3)
    assert outcome.metrics["parameters"] == sum(lstm) + sum(sage) + head == 531
    assert SiameseGCN(genome(), 5).num_parameters() == 531
    assert outcome.metrics["validation_size"] == 7 and outcome.cost > 0
    # the same seed, in a fresh objective and after a trip through pickle (a worker)
    again = pickle.loads(pickle.dumps(PredictorObjective(**TINY, seed=3)))
    assert again.evaluate(genome()).metrics == outcome.metrics
    other = PredictorObjective(**TINY, seed=4)
    assert other.evaluator.validation.keys != split.validation.keys


@needs_table
def test_the_evaluator_is_built_once_and_never_pickled():
    objective = PredictorObjective(**TINY)
    split = objective.evaluator
    assert objective.evaluator is split
    assert pickle.loads(pickle.dumps(objective)).__dict__["_evaluator"] is None


@needs_table
def test_a_descriptor_of_another_space_is_an_invalid_candidate():
    from nord.design.spaces import get_space
    import numpy as np
    objective = PredictorObjective(**TINY)
    space = get_space("nasbench201")
    descriptor = space.to_descriptor(space.sample(np.random.default_rng(0)))
    with pytest.raises(OutOfSearchSpaceError, match="a gcn descriptor has an 'input' node"):
        objective.evaluate(descriptor)
    assert run_task(objective, Task(0, descriptor)).status == "invalid"


@pytest.mark.parametrize("options, message", [
    ({"size": 2}, "size must be a whole number >= 4, got 2"),
    ({"train": 1.5}, "train is a share in (0, 1) or a count in 2..size-2 (118), got 1.5"),
    ({"size": 10, "train": 9}, "a count in 2..size-2 (8), got 9"),
    ({"epsilon": -0.1}, "epsilon must be a number >= 0, got -0.1"),
    ({"epochs": 0}, "epochs must be a whole number >= 1, got 0"),
    ({"lr": 0}, "lr must be a number > 0, got 0"),
    ({"batch_size": 2.5}, "batch_size must be a whole number >= 1, got 2.5"),
    ({"seed": -1}, "seed must be a whole number >= 0, got -1"),
    ({"data_percentage": 0.5}, "has no option data_percentage (--percentage)"),
    ({"sise": 10}, "has no option sise; its options are dataset, size"),
])
def test_bad_settings_say_what_is_wrong(options, message):
    with pytest.raises(SettingsError) as caught:
        make_objective("predictor", **options)
    assert message in str(caught.value)


def test_a_dataset_that_is_neither_a_table_nor_a_run_folder_is_refused(tmp_path):
    objective = PredictorObjective(dataset=str(tmp_path / "nothing"))
    with pytest.raises(SettingsError, match="neither one of nasbench101 nor a nord search run "
                                            "folder"):
        objective.prepare()


def test_search_settings_pick_the_predictor_for_the_gcn_space():
    objective = SearchSettings(space="gcn", seed=5, table="/x/nb.csv",
                               objective_options={"size": 30}).build_objective()
    assert isinstance(objective, PredictorObjective)
    assert (objective.size, objective.seed, objective.table) == (30, 5, "/x/nb.csv")
    explicit = SearchSettings(space="gcn", objective="predictor").build_objective()
    assert explicit.settings()["size"] == 120 and explicit.epochs == 1
    assert SearchSettings(space="gcn").build_space().filters == 32
    assert SearchSettings(space="gcn", space_options={"filters": 300}).build_space().filters \
        == 300
    with pytest.raises(SettingsError, match="scores GCN rankers .* not nasbench201"):
        SearchSettings(space="nasbench201", objective="predictor").build_objective()
    with pytest.raises(SettingsError, match="--fitness: the gcn space's fitness is the "
                                            "trained ranker's Kendall tau"):
        SearchSettings(space="gcn", fitness="tau").build_objective()


FLAGS = ["--space", "gcn", "--population", "3", "--sample", "2", "--seed", "1",
         "--objective-option", "size=24", "--batch-size", "64", "--space-option", "filters=8",
         "--quiet"]


def records(out):
    with RunStore(Path(out) / "run.sqlite", create=False) as store:
        return [(r.id, r.architecture, r.status, r.fitness) for r in store.finished()]


@needs_table
def test_nord_search_gcn_runs_reports_the_best_tau_and_resumes(tmp_path, capsys):
    whole = tmp_path / "whole"
    assert main(["search", *FLAGS, "--budget", "5", "--out", str(whole)]) == 0
    printed = capsys.readouterr().out
    assert "5/5 evaluations" in printed and "0 failed or invalid" in printed
    assert "best: #" in printed and "tau=" in printed and "top50_tau=" in printed
    assert "ternary head, F=8" in printed
    done = records(whole)
    assert [r[2] for r in done].count("ok") >= 3 and all(-1 < r[3] <= 1 for r in done)

    class Killed(Exception):
        pass

    def stop(event):
        if event.done == 2:
            raise Killed

    killed = tmp_path / "killed"
    settings = SearchSettings(space="gcn", budget=5, population=3, sample=2, seed=1,
                              space_options={"filters": 8},
                              objective_options={"size": 24, "batch_size": 64})
    with pytest.raises(Killed):
        run_search(settings, killed, callbacks=[stop])
    assert len(records(killed)) == 2
    assert main(["search", "--out", str(killed), "--resume", "--quiet"]) == 0
    assert records(killed) == done  # nothing lost, nothing repeated, the same search
    assert main(["search", "--out", str(killed), "--resume", "--budget", "6", "--quiet"]) == 0
    assert records(killed)[:5] == done and len(records(killed)) == 6


@needs_table
def test_nord_search_gcn_refuses_options_it_has_not(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["search", *FLAGS, "--percentage", "0.5", "--budget", "2",
                 "--out", str(out)]) == 2
    assert "has no option data_percentage (--percentage)" in capsys.readouterr().err
    assert not out.exists()


@needs_table
def test_a_search_run_folder_is_a_dataset(tmp_path):
    source = tmp_path / "nb201"
    assert main(["search", "--space", "nasbench201", "--budget", "30", "--quiet",
                 "--out", str(source)]) == 0
    data = load_architecture_dataset(str(source), size=20, seed=0)
    assert len(data) == 20 and data.name.startswith("nasbench201 run")
    with pytest.raises(Exception, match="fewer than size=500"):
        load_architecture_dataset(str(source), size=500)
    objective = PredictorObjective(dataset=str(source), size=20, batch_size=64)
    outcome = objective.evaluate(genome())
    assert -1 < outcome.fitness <= 1 and outcome.metrics["validation_size"] == 6
