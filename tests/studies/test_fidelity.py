"""The fidelity advisor: its recommendation rule by hand, a tiny study on Fashion-MNIST,
and a search that takes its budget from the study."""

import json

import pytest

from nord.cli import main
from nord.errors import SettingsError, StatisticsInputError, StudyError
from nord.execution.store import RunStore
from nord.studies.base import run_study
from nord.studies.fidelity import FidelityStudy, load_recommendation, recommend
from nord.studies.montecarlo import MonteCarloStudy

from tests.fashion_mnist_data import needs_fashion_mnist

BUDGETS = [
    {"epochs": 1, "share": 0.1, "tau": 0.60, "standard_error": 0.05, "cost_ratio": 0.05},
    {"epochs": 2, "share": 0.1, "tau": 0.78, "standard_error": 0.04, "cost_ratio": 0.10},
    {"epochs": 1, "share": 0.5, "tau": 0.80, "standard_error": 0.03, "cost_ratio": 0.25},
    {"epochs": 4, "share": 0.5, "tau": 1.0, "standard_error": 0.0, "cost_ratio": 1.0},
]


def test_the_cheapest_budget_reaching_the_target_is_recommended():
    chosen = recommend(BUDGETS, 0.75)
    assert (chosen.epochs, chosen.share, chosen.cost_ratio) == (2, 0.1, 0.10)
    assert "10.0x cheaper" in chosen.line()
    assert recommend(BUDGETS, 0.5).epochs == 1 and recommend(BUDGETS, 0.5).share == 0.1
    with pytest.raises(StudyError, match="no reduced budget reaches tau 0.9.*closest is 1 "
                       "epochs on 50 % with tau 0.800"):
        recommend(BUDGETS, 0.9)
    for target in (1.0, -1.0, 1.5):
        with pytest.raises(StatisticsInputError, match=r"\(-1, 1\)"):
            recommend(BUDGETS, target)


def tiny(**options):
    settings = dict(space="deepneat", space_options={"filters": [4, 8], "sample_mutations": 4},
                    architectures=6, epochs=(1, 2), shares=(0.004, 0.008), resamples=30,
                    target=0.2, batch_size=32, validation_fraction=0.005)
    settings.update(options)
    return FidelityStudy(**settings)


@needs_fashion_mnist
@pytest.mark.slow
def test_a_tiny_fidelity_study_and_a_search_that_uses_it(tmp_path, capsys):
    study_dir = tmp_path / "fidelity"
    outcome = run_study(tiny(), study_dir)
    budgets = outcome.results["budgets"]
    assert len(budgets) == 4 and len(tiny().trials()) == 12
    largest = [b for b in budgets if b["cost_ratio"] == 1.0]
    assert [(b["epochs"], b["share"]) for b in largest] == [(2, 0.008)]
    assert all(b["seconds"] > 0 for b in budgets)
    cheapest = [b for b in budgets if (b["epochs"], b["share"]) == (1, 0.004)][0]
    assert cheapest["cost_ratio"] < 1  # a quarter of the largest's work
    assert (study_dir / "fidelity.png").stat().st_size > 10_000
    chosen, settings = load_recommendation(study_dir, target=-0.99)  # any tau reaches it
    assert chosen.cost_ratio == min(b["cost_ratio"] for b in budgets)
    out = tmp_path / "search"
    assert main(["search", "--fidelity-from", str(study_dir), "--fidelity-target", "-0.99",
                 "--strategy", "random", "--budget", "2", "--quiet", "--out", str(out)]) == 0
    assert "fidelity from" in capsys.readouterr().out
    with RunStore(out / "run.sqlite", create=False) as store:
        stored = store.meta()["settings"]
    assert stored["space"] == "deepneat"
    assert stored["space_options"] == {"filters": [4, 8], "sample_mutations": 4}
    assert stored["objective_options"]["epochs"] == chosen.epochs
    assert stored["objective_options"]["data_percentage"] == chosen.share
    assert main(["search", "--fidelity-from", str(study_dir), "--epochs", "3", "--quiet",
                 "--out", str(tmp_path / "s2")]) == 2
    assert "--epochs and --fidelity-from both set" in capsys.readouterr().err
    assert main(["search", "--fidelity-from", str(study_dir), "--fidelity-target", "0.999",
                 "--quiet", "--out", str(tmp_path / "s3")]) == 1
    assert "no reduced budget reaches tau 0.999" in capsys.readouterr().err
    assert json.loads((study_dir / "results.json").read_text())["settings"]["target"] == 0.2
    assert stored["objective_options"]["split"] == "validation"  # the study's split and batch
    assert stored["objective_options"]["batch_size"] == 32
    assert main(["search", "--fidelity-target", "0.5", "--quiet",
                 "--out", str(tmp_path / "s4")]) == 2
    assert "give the study with --fidelity-from" in capsys.readouterr().err


def test_empty_and_foreign_folders_are_refused(tmp_path):
    with pytest.raises(StudyError, match="not a study folder"):
        load_recommendation(tmp_path)
    run_study(MonteCarloStudy(dims=(2,), taus=(0.8,), generations=(2,), repeats=2,
                              points={2: 10}, engine="builtin"), tmp_path / "mc")
    with pytest.raises(StudyError, match="holds a 'montecarlo' study, not a fidelity study"):
        load_recommendation(tmp_path / "mc")


def test_bad_settings_are_refused():
    with pytest.raises(StatisticsInputError, match=r"\(-1, 1\)"):
        tiny(target=1.2)
    with pytest.raises(SettingsError, match="at least 4 architectures"):
        tiny(architectures=3)
    with pytest.raises(SettingsError, match="at least two"):
        tiny(epochs=(2,), shares=(0.01,))
    with pytest.raises(Exception, match="deepnet"):
        tiny(space="deepnet")
