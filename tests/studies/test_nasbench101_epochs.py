"""The NAS-Bench-101 epochs study (§5.2.2): taus against scipy computed directly, the
one-run subset's skipped baseline, and a three-run table's 108PTG."""

import csv
import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from nord.cli import main
from nord.errors import StudyError
from nord.neural_nets.benchmarks.nasbench101 import write_nasbench_tfrecord
from nord.studies.base import run_study
from nord.studies.nasbench101_epochs import NASBench101EpochsStudy, sample_groups

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("NORD_DATA") or ROOT.parent / "shared" / "data")
SUBSET = DATA / "nasbench101" / "nb101_30k_subset.csv.gz"
needs_subset = pytest.mark.skipif(not SUBSET.exists(), reason="../shared/data not present")


def test_groups_draw_runs_independently_as_the_thesis():
    runs = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)  # 5 cells, budgets 12/108
    counts = np.full((5, 2), 3)
    groups = sample_groups(runs, counts, (12, 108), 3000, seed=0)
    assert set(groups) == {"FTG", "12", "108"}
    same = (groups["FTG"] % 3).astype(int) == (groups["108"] % 3).astype(int)
    assert 0.29 < same.mean() < 0.38  # the FTG's own run one time in three (§5.3.2)
    assert np.all(groups["FTG"] // 6 == groups["12"] // 6)  # the same cells in each group
    distinct = sample_groups(runs, counts, (12, 108), 3000, seed=0, distinct_runs=True)
    assert np.all(distinct["FTG"] % 3 != distinct["108"] % 3)
    single = sample_groups(runs[..., :1], np.ones((5, 2), int), (12, 108), 100, seed=0)
    assert set(single) == {"FTG", "12"}


@needs_subset
def test_study_on_the_shipped_subset(tmp_path, monkeypatch):
    monkeypatch.setenv("NORD_DATA", str(DATA))
    study = NASBench101EpochsStudy(samples=3000, resamples=30, seed=1)
    outcome = run_study(study, tmp_path / "nb")
    assert [t["group"] for t in study.trials()] == ["4", "4", "12", "12", "36", "36"]
    groups = study.objective().groups()
    results = json.loads((tmp_path / "nb" / "results.json").read_text())["groups"]
    for group in ("4", "12", "36"):
        expected = scipy.stats.kendalltau(groups[group], groups["FTG"]).statistic
        assert results[group]["raw"]["tau"] == pytest.approx(expected, abs=1e-12)
        rounded = scipy.stats.kendalltau(np.floor(np.round(groups[group] * 100, 9) + 0.5),
                                         np.floor(np.round(groups["FTG"] * 100, 9) + 0.5)
                                         ).statistic
        assert results[group]["rounded"]["tau"] == pytest.approx(rounded, abs=1e-12)
        assert results[group]["raw"]["standard_error"] > 0
    assert results["4"]["raw"]["tau"] < results["12"]["raw"]["tau"] < results["36"]["raw"]["tau"]
    assert "one training run per cell" in outcome.text and "skipped" in outcome.text
    for name in ("nasbench101_accuracies.png", "nasbench101_bootstrap.png"):
        assert (tmp_path / "nb" / name).stat().st_size > 10_000


def three_run_table(path: Path, cells: int = 40) -> Path:
    """A tfrecord in the official format: real cells of the subset, three runs each."""
    rng = np.random.default_rng(0)
    rows = []
    with gzip.open(SUBSET, "rt", newline="") as handle:
        reader = csv.DictReader(handle)
        for _, row in zip(range(cells), reader):
            key, n, flat = row["hash"], int(row["num_vertices"]), row["matrix_flat_row_major"]
            ops = row["ops"].split(",")
            matrix = [[int(flat[i * n + j]) for j in range(n)] for i in range(n)]
            base = float(row["val_acc_108ep"])
            for epochs, drop in ((4, 0.4), (12, 0.2), (36, 0.05), (108, 0.0)):
                for _ in range(3):
                    final = float(np.clip(base - drop + rng.normal(0, 0.01), 0, 1))
                    rows.append((key, epochs, matrix, ops, [
                        {"current_epoch": 0.0, "training_time": 0.0, "train_accuracy": 0.1,
                         "validation_accuracy": 0.1, "test_accuracy": 0.1},
                        {"current_epoch": epochs / 2, "training_time": 5.0 * epochs,
                         "train_accuracy": final, "validation_accuracy": final,
                         "test_accuracy": final},
                        {"current_epoch": float(epochs), "training_time": 10.0 * epochs,
                         "train_accuracy": final, "validation_accuracy": final,
                         "test_accuracy": final}], 1000))
    return write_nasbench_tfrecord(path, rows)


@needs_subset
def test_a_three_run_table_measures_the_retraining_baseline(tmp_path):
    table = three_run_table(tmp_path / "nasbench_full.tfrecord")
    study = NASBench101EpochsStudy(samples=2000, resamples=20, table=str(table))
    assert study.repeats_per_cell() == 3
    outcome = run_study(study, tmp_path / "nb")
    baseline = outcome.results["groups"]["108"]["raw"]["tau"]
    assert 0.5 < baseline < 0.99  # two trainings of the same cells agree, but not fully
    assert "skipped" not in outcome.text and "108PTG (re-trained)" in outcome.text


@needs_subset
def test_command_line_and_a_foreign_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NORD_DATA", str(DATA))
    out = tmp_path / "nb"
    assert main(["study", "nasbench101-epochs", "--samples", "500", "--resamples", "10",
                 "--quiet", "--out", str(out)]) == 0
    assert "36PTG" in capsys.readouterr().out
    assert main(["study", "montecarlo", "--resume", "--quiet", "--out", str(out)]) == 1
    assert "holds a 'nasbench101-epochs' study" in capsys.readouterr().err
    with pytest.raises(StudyError, match="holds no study"):
        run_study(NASBench101EpochsStudy(samples=500, resamples=10), tmp_path / "none",
                  resume=True)
