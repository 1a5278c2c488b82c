"""The search examples (thesis Figures 3.1, 3.5, 3.6; REA against random) at small settings."""

import os
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NORD_DATA") or ROOT.parent / "shared" / "data")

pytestmark = pytest.mark.skipif(
    not (DATA / "nasbench201" / "nb201_tables.csv").exists()
    or not (DATA / "nasbench101" / "nb101_30k_subset.csv.gz").exists(),
    reason="../shared/data benchmark tables not present")


@pytest.fixture(autouse=True)
def data_env(monkeypatch):
    monkeypatch.setenv("NORD_DATA", str(DATA))


def example(name):
    return runpy.run_path(str(ROOT / "examples" / name), run_name="example")["main"]


def test_rea_beats_random_on_nasbench201(capsys):
    means = example("nasbench201_rea_vs_random.py")(["--seeds", "12", "--budgets", "50", "150"])
    rea, random = means.values()
    assert rea[-1] > random[-1]
    assert 93.0 < rea[-1] <= 94.37
    table = capsys.readouterr().out
    assert "| regularized evolution (P=10, S=3) |" in table and "150 queries" in table


def test_figure_3_5(tmp_path):
    best = example("figure_3_5_evolution.py")(["--budget", "40", "--out", str(tmp_path)])
    assert (tmp_path / "figure_3_5.png").stat().st_size > 10000
    nb101, nb201 = best.values()
    assert 0.8 < nb101 < 1.0 and 80 < nb201 <= 91.61


def test_figure_3_6(tmp_path):
    accuracy = example("figure_3_6_rl.py")(["--episodes", "30", "--out", str(tmp_path)])
    assert accuracy.size == 30 and (accuracy > 0).all()
    assert (tmp_path / "figure_3_6.png").stat().st_size > 10000


def test_figure_3_1(tmp_path):
    results = example("figure_3_1_evolution_vs_rl.py")(["--budget", "30", "--out", str(tmp_path)])
    assert set(results) == {"regularized evolution", "RL agent (DQN)"}
    for logic_seconds, best in results.values():
        assert logic_seconds > 0 and 0.8 < best < 1.0
    assert (tmp_path / "figure_3_1.png").stat().st_size > 10000


@pytest.mark.slow
def test_rea_reaches_the_published_level_over_100_seeds():
    means = example("nasbench201_rea_vs_random.py")(["--seeds", "100", "--budgets", "150"])
    rea, random = (float(v[-1]) for v in means.values())
    assert rea >= 93.95           # published REA 93.92 ± 0.30 at 150 queries
    assert rea >= random + 0.15   # published random 93.70 ± 0.36


def test_listing_3_3_example(capsys):
    (val_acc, train_time), values = example("listing_3_3_benchmark_evaluators.py")()
    assert 0.5 < val_acc < 1.0 and train_time > 0
    out = capsys.readouterr().out
    assert "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|" in out
    assert "no metric 'time_cost'" in out and "five nodes in a chain are rejected" in out
    assert len(values) == 2


@pytest.mark.parametrize("benchmark", ["nasbench101", "nasbench201"])
def test_listing_3_6_as_written(benchmark):
    history, failures = example("listing_3_6_regularized_evolution.py")(
        ["--benchmark", benchmark, "--population", "10", "--sample", "3", "--evolutions", "30"])
    assert len(history) == 40 and max(history) > 0
    assert sum(failures.values()) == sum(1 for f in history if f == 0.0)
    again, _ = example("listing_3_6_regularized_evolution.py")(
        ["--benchmark", benchmark, "--population", "10", "--sample", "3", "--evolutions", "30"])
    assert again == history  # one seeded generator: the same search
