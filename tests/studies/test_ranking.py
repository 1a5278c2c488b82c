"""The ranking-retention study (chapters 4-5), tiny: 6 architectures x 2 optimizers x
epochs 1, 2 on a sliver of Fashion-MNIST, its tau matrix checked against scipy."""

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from nord.cli import main
from nord.errors import SettingsError, UnknownNameError
from nord.execution.store import RunStore
from nord.studies.base import Trial, run_study
from nord.studies.ranking import RankingStudy
from tests.fashion_mnist_data import needs_fashion_mnist
from tests.studies.study_helpers import kill_after

pytestmark = [needs_fashion_mnist, pytest.mark.slow]


def tiny(**options):
    settings = dict(architectures=6, optimizers=("adam", "sgd"), budgets=(1, 2),
                    percentage=0.004, scheme="chapter4", split="validation",
                    validation_fraction=0.005, resamples=40, batch_size=32,
                    space_options={"filters": [4, 8]})
    settings.update(options)
    return RankingStudy(**settings)


def half_up(fractions):
    """Integer percent, halves up (0.285 -> 29: rounded to 9 decimals first)."""
    return np.floor(np.round(np.asarray(fractions) * 100, 9) + 0.5)


def stored_lists(out):
    lists = {}
    with RunStore(Path(out) / "run.sqlite", create=False) as store:
        for record in store.finished():
            params = Trial.from_json(record.descriptor).params
            for budget, accuracy in record.metrics["accuracy"].items():
                name = f"{params['optimizer']}_{budget}"
                lists.setdefault(name, [np.nan] * 6)[params["architecture"]] = accuracy
    return {k: np.array(v, dtype=float) for k, v in lists.items()}


def test_tau_matrix_equals_scipy_on_the_stored_accuracies(tmp_path):
    study = tiny()
    assert len(study.trials()) == 12
    outcome = run_study(study, tmp_path / "rank")
    lists = stored_lists(tmp_path / "rank")
    assert all(np.unique(v).size >= 3 for v in lists.values())  # rankings, not one tie
    tau = outcome.results["tau"]
    assert tau["raw"]["rows"] == ["adam_2", "sgd_2"]
    assert tau["raw"]["columns"] == ["adam_1", "sgd_1"]
    for i, row in enumerate(tau["raw"]["rows"]):
        for j, column in enumerate(tau["raw"]["columns"]):
            raw = scipy.stats.kendalltau(lists[row], lists[column]).statistic
            rounded = scipy.stats.kendalltau(half_up(lists[row]),
                                             half_up(lists[column])).statistic
            young = scipy.stats.kendalltau(lists[row][3:], lists[column][3:]).statistic
            for kind, expected in (("raw", raw), ("rounded", rounded), ("subset", young)):
                got = tau[kind]["values"][i][j]
                if np.isnan(expected):
                    assert got is None
                else:
                    assert got == pytest.approx(expected, abs=1e-12)
    assert len(tau["bootstrap"]["standard_errors"]) == 2
    means = outcome.results["mean_accuracy"]
    assert means["adam"]["2"] == pytest.approx(100 * lists["adam_2"].mean())
    booted = tau["bootstrap_raw"]["values"]
    assert all(abs(booted[i][j] - tau["raw"]["values"][i][j]) < 0.5
               for i in range(2) for j in range(2) if booted[i][j] is not None)
    for name in ("tau_raw.png", "tau_rounded.png", "tau_bootstrap.png", "tau_bootstrap_se.png",
                 "tau_bootstrap_raw.png",
                 "tau_subset.png", "accuracy_distributions.png", "ranking_study.md"):
        assert (tmp_path / "rank" / name).stat().st_size > 100
    assert "table 5.3" in outcome.text and "table 4.2" in outcome.text
    assert json.loads((tmp_path / "rank" / "results.json").read_text())["tau"] == tau


def test_a_killed_ranking_study_resumes_to_the_same_result(tmp_path):
    kill_after(tiny(), tmp_path / "cut", 5)
    resumed = run_study(tiny(), tmp_path / "cut", resume=True)
    whole = run_study(tiny(), tmp_path / "whole")
    assert resumed.results["tau"] == whole.results["tau"]
    assert resumed.summary.evaluations == 12
    with pytest.raises(SettingsError, match="budgets: stored \\[1, 2\\], given \\[1, 3\\]"):
        run_study(tiny(budgets=(1, 3)), tmp_path / "whole", resume=True)


def test_independent_budgets_train_each_budget_from_its_own_seed(tmp_path):
    study = tiny(architectures=3, optimizers=("adam",), independent_budgets=True)
    assert [(t["architecture"], t["budget"]) for t in study.trials()] == [
        (0, 1), (0, 2), (1, 1), (1, 2), (2, 1), (2, 2)]
    outcome = run_study(study, tmp_path / "independent")
    shared = run_study(tiny(architectures=3, optimizers=("adam",)), tmp_path / "shared")
    with RunStore(tmp_path / "independent" / "run.sqlite", create=False) as store:
        records = store.finished()
    for record in records:
        budget = Trial.from_json(record.descriptor).params["budget"]
        assert list(record.metrics["accuracy"]) == [str(budget)]  # one budget per trial
    ours, theirs = stored_lists(tmp_path / "independent"), stored_lists(tmp_path / "shared")
    assert not np.array_equal(ours["adam_1"][:3], theirs["adam_1"][:3])  # other seeds
    assert "trained on its own" in outcome.text and "read off" in shared.text


def test_bad_settings_are_refused():
    with pytest.raises(SettingsError, match="at least 3 architectures"):
        tiny(architectures=2)
    with pytest.raises(SettingsError, match="at least two epoch counts"):
        tiny(budgets=(5,))
    with pytest.raises((SettingsError, UnknownNameError), match="adamm"):
        tiny(optimizers=("adamm",))
    with pytest.raises(SettingsError, match="scheme"):
        tiny(scheme="chapter6")


def test_command_line(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["study", "ranking", "--architectures", "4", "--optimizers", "adam", "sgd",
                 "--epochs", "1", "2", "--percentage", "0.004", "--scheme", "chapter4",
                 "--split", "validation", "--validation-fraction", "0.005", "--resamples",
                 "20", "--space-option", "filters=[4,8]", "--quiet", "--out", str(out)]) == 0
    assert "Bootstrap tau-b" in capsys.readouterr().out
    assert main(["study", "ranking", "--architectures", "2", "--quiet",
                 "--out", str(tmp_path / "bad")]) == 2
