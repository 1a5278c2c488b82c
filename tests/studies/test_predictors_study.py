"""The predictors study (§7.4, tables 7.3/7.4, Figures 7.3-7.8) at tiny settings: EGraph
and ReNAS ranked on unseen NAS-Bench-101 cells, resumable, and a gcn search's best
genomes and figures."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from nord.cli import build_parser, main
from nord.errors import SettingsError, StudyError
from nord.execution.store import RunStore
from nord.studies.base import Trial, run_study
from tests.studies.study_helpers import kill_after

pytest.importorskip("torch_geometric")

from nord.studies.predictors import (PredictorsObjective, PredictorsStudy,  # noqa: E402
                                     best_genomes, load_gcn_search)

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("NORD_DATA") or ROOT.parent / "shared" / "data")
NB101 = DATA / "nasbench101" / "nb101_30k_subset.csv.gz"
pytestmark = pytest.mark.skipif(not NB101.exists(), reason="../shared/data not present")
TINY = {"train": 12, "test": 16, "filters": 8, "renas_epochs": 2, "regression_epochs": 2}


@pytest.fixture(autouse=True)
def data_env(monkeypatch):
    monkeypatch.setenv("NORD_DATA", str(DATA))


def table(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def taus(folder):
    with RunStore(Path(folder) / "run.sqlite", create=False) as store:
        return {(Trial.from_json(r.descriptor).params["model"],
                 Trial.from_json(r.descriptor).params["seed"]): r.metrics["tau"]
                for r in store.finished()}


def test_table_7_4_holds_the_three_models_and_a_resume_redoes_nothing(tmp_path, monkeypatch):
    study = PredictorsStudy(**TINY, seeds=(0, 1))
    assert [(t["model"], t["seed"]) for t in study.trials()] == [
        ("egraph", 0), ("egraph", 1), ("renas-32", 0), ("renas-32", 1), ("renas-1024", 0),
        ("renas-1024", 1)]
    outcome = run_study(study, tmp_path / "whole")
    rows = table(tmp_path / "whole" / "table_7_4.csv")
    assert [(r["model"], r["name"], r["batch_size"]) for r in rows] == [
        ("egraph", "EGraph", "32"), ("renas-32", "ReNAS", "32"), ("renas-1024", "ReNAS", "1024")]
    whole = taus(tmp_path / "whole")
    assert all(-1 <= t <= 1 for t in whole.values())
    for row in rows:
        values = [whole[(row["model"], s)] for s in (0, 1)]
        assert float(row["tau_mean"]) == pytest.approx(np.mean(values), abs=1e-12)
        assert float(row["tau_std"]) == pytest.approx(np.std(values, ddof=1), abs=1e-12)
        settings = (row["train"], row["test"], row["epsilon"], row["seeds"])
        assert settings == ("12", "16", "0.003", "2")
    assert rows[1]["epochs"] == "2" and rows[0]["epochs"] == "1"
    assert rows[0]["thesis_tau"] == "0.907" and rows[2]["thesis_top50_tau"] == "0.64"
    markdown = (tmp_path / "whole" / "table_7_4.md").read_text()
    assert "| EGraph | 32 | 12/16 | 0.003 | 1 |" in markdown and markdown.count("| ReNAS |") == 2
    assert outcome.text.startswith("Table 7.4: rankers on NAS-Bench-101, 12 train / 16 test")
    results = json.loads((tmp_path / "whole" / "results.json").read_text())
    assert [r["model"] for r in results["table_7_4"]] == ["egraph", "renas-32", "renas-1024"]

    # killed after two trials, resumed: the same results (same seed, same tau)
    kill_after(PredictorsStudy(**TINY, seeds=(0, 1)), tmp_path / "killed", 2)
    run_study(PredictorsStudy(**TINY, seeds=(0, 1)), tmp_path / "killed", resume=True)
    assert taus(tmp_path / "killed") == whole

    def never(self, trial):
        raise AssertionError("a finished study evaluated a trial again")

    monkeypatch.setattr(PredictorsObjective, "evaluate", never)
    again = run_study(PredictorsStudy(**TINY, seeds=(0, 1)), tmp_path / "whole", resume=True)
    assert again.summary.evaluations == 6 and again.text == outcome.text


@pytest.fixture(scope="module")
def gcn_search(tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "g"
    os.environ.setdefault("NORD_DATA", str(DATA))
    assert main(["search", "--space", "gcn", "--budget", "6", "--population", "4", "--seed", "2",
                 "--objective-option", "size=24", "--batch-size", "64", "--space-option",
                 "filters=8", "--quiet", "--out", str(out)]) == 0
    return out


def test_a_gcn_search_gives_table_7_3_the_search_best_model_and_figures(tmp_path, gcn_search):
    study = PredictorsStudy(**TINY, search=str(gcn_search), top=3)
    assert study.models == ["egraph", "renas-32", "renas-1024", "search-best"]
    records = load_gcn_search(gcn_search)
    best = best_genomes(records, 3)
    assert len(best) == 3 and [b["tau"] for b in best] == sorted((b["tau"] for b in best),
                                                                 reverse=True)
    assert best[0]["tau"] == max(r.fitness for r in records)
    assert study.trials()[-1] == {"model": "search-best", "seed": 0,
                                  "architecture": best[0]["architecture"]}
    outcome = run_study(study, tmp_path / "with-search")
    folder = tmp_path / "with-search"
    rows = table(folder / "table_7_3.csv")
    assert [r["genome"] for r in rows] == [b["genome"] for b in best]
    assert [float(r["tau"]) for r in rows] == pytest.approx([b["tau"] for b in best])
    assert "Table 7.3: the best genomes of the gcn search" in outcome.text
    markdown = (folder / "table_7_3.md").read_text().splitlines()[2:]
    assert len(markdown) == 2 + 3  # header, rule, 3 genomes: each row 7 cells
    assert all(line.replace("\\|", "").count("|") == 8 for line in markdown)
    assert "\\| " in markdown[2]  # the genome's own | escaped
    assert [r["model"] for r in table(folder / "table_7_4.csv")][-1] == "search-best"
    assert f"search best: {best[0]['genome']}" in outcome.text
    for name in ("search_progress.png", "tau_by_pooling.png", "tau_by_layer.png",
                 "tau_vs_parameters.png"):
        assert (folder / name).stat().st_size > 10_000, name


def test_bad_settings_and_folders_are_refused(tmp_path):
    with pytest.raises(SettingsError, match="give its run folder with --search"):
        PredictorsStudy(models=["search-best"])
    with pytest.raises(SettingsError, match="models are distinct names among egraph"):
        PredictorsStudy(models=["egraf"])
    with pytest.raises(SettingsError, match="seeds must be distinct"):
        PredictorsStudy(seeds=[1, 1])
    with pytest.raises(SettingsError, match="test must hold at least 4 architectures"):
        PredictorsStudy(test=3)
    with pytest.raises(SettingsError, match="filters .F. must be an even whole number"):
        PredictorsStudy(filters=7)
    with pytest.raises(StudyError, match="holds no run"):
        PredictorsStudy(search=str(tmp_path)).trials()
    nb201 = tmp_path / "nb201"
    assert main(["search", "--space", "nasbench201", "--budget", "3", "--quiet",
                 "--out", str(nb201)]) == 0
    with pytest.raises(StudyError, match="holds a search of the 'nasbench201' space"):
        load_gcn_search(nb201)


def test_the_command_line_runs_resumes_and_knows_the_thesis_preset(tmp_path, capsys):
    out = tmp_path / "cli"
    flags = ["study", "predictors", "--train", "12", "--test", "16", "--filters", "8",
             "--renas-epochs", "2", "--models", "egraph", "renas-1024", "--quiet"]
    assert main([*flags, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| EGraph | 32 | 12/16 |" in printed and "table_7_4.md" in printed
    assert main(["study", "predictors", "--resume", "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["study", "predictors", "--resume", "--train", "20", "--out", str(out)]) == 2
    assert "train: stored 12, given 20" in capsys.readouterr().err
    from nord.studies.commands import STUDY_FLAGS
    args = build_parser().parse_args(["study", "predictors", "--preset", "table-7.4",
                                      "--seeds", "7"])
    settings = STUDY_FLAGS["predictors"][1](args)
    assert PredictorsStudy(**settings).settings() == {
        **PredictorsStudy().settings(), "train": 450, "test": 1050, "epochs": 2,
        "filters": 300, "renas_epochs": 200, "seeds": [7]}
