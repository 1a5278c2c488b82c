"""The Monte-Carlo noisy search of §4.3.2/§5.2.3: its parts by hand, the built-in GA
against pygmo's in distribution, and the study as a resumable run."""

import json

import numpy as np
import pytest
import scipy.stats

from nord.cli import main
from nord.errors import SettingsError, StatisticsInputError, StudyError
from nord.execution.store import RunStore
from nord.studies.base import run_study
from nord.studies.montecarlo import (MonteCarloStudy, builtin_sga, perturb_to_tau, pygmo_sga,
                                     rastrigin_mesh, top_fraction)
from tests.studies.study_helpers import kill_after


def test_rastrigin_mesh_by_hand():
    mesh = rastrigin_mesh(2, 3)  # axis -5.12, 0, 5.12
    edge = 5.12 ** 2 - 10 * np.cos(2 * np.pi * 5.12)
    assert mesh[1, 1] == pytest.approx(0.0)
    assert mesh[0, 1] == pytest.approx(10 + edge) and mesh[2, 2] == pytest.approx(20 + 2 * edge)
    assert rastrigin_mesh(3, 100).shape == (100, 100, 100)
    with pytest.raises(SettingsError, match="fewer points"):
        rastrigin_mesh(4, 100)


@pytest.mark.parametrize("noise_on", ["rank", "value"])
def test_noise_reaches_the_target_tau(noise_on):
    mesh = rastrigin_mesh(2, 100)
    noisy, achieved, scale = perturb_to_tau(mesh, 0.75, seed=3, noise_on=noise_on)
    assert achieved == pytest.approx(0.75, abs=0.003)
    assert achieved == pytest.approx(scipy.stats.kendalltau(mesh.ravel(), noisy.ravel())[0])
    assert scale > 0 and noisy.shape == mesh.shape
    again = perturb_to_tau(mesh, 0.75, seed=3, noise_on=noise_on)[0]
    assert np.array_equal(again, noisy)
    with pytest.raises(StatisticsInputError, match=r"\(-1, 1\)"):
        perturb_to_tau(mesh, 1.0)


def test_top_fraction_counts_strictly_better_points():
    values = np.array([3.0, 1.0, 2.0, 5.0, 1.0])
    assert top_fraction(values, [0, 1, 3, 2]).tolist() == [0.6, 0.0, 0.8, 0.4]


def test_zero_generations_return_the_best_initial_point():
    values = np.arange(1000.0)[::-1].copy()
    rng = np.random.default_rng(0)
    champions = builtin_sga(values, 0, 5, rng, population=10)
    initial = np.random.default_rng(0).integers(0, 1000, (5, 10, 1))[..., 0]
    assert champions.tolist() == initial.max(axis=1).tolist()  # lowest value: largest index


@pytest.mark.slow
@pytest.mark.parametrize("flat,generations", [(True, 10), (True, 100), (False, 10)])
def test_builtin_ga_matches_pygmo_in_distribution(flat, generations):
    pytest.importorskip("pygmo")
    mesh = rastrigin_mesh(2, 100)
    noisy = perturb_to_tau(mesh, 0.75, seed=1)[0]
    searched = noisy.ravel() if flat else noisy
    ours = top_fraction(mesh, builtin_sga(searched, generations, 400, np.random.default_rng(0)))
    theirs = top_fraction(mesh, pygmo_sga(searched, generations, 400, np.random.default_rng(1)))
    assert scipy.stats.ks_2samp(ours, theirs).pvalue > 0.01
    assert ours.mean() == pytest.approx(theirs.mean(), rel=0.25)


def small(**options):
    settings = dict(dims=(2,), taus=(0.8,), generations=(5, 20), repeats=10,
                    points={2: 30}, engine="builtin")
    settings.update(options)
    return MonteCarloStudy(**settings)


def test_study_runs_through_the_store_and_writes_its_table(tmp_path):
    outcome = run_study(small(), tmp_path / "mc")
    assert len(small().trials()) == 4
    results = json.loads((tmp_path / "mc" / "results.json").read_text())
    cells = {(c["tau"], c["generations"]): c for c in results["cells"]}
    assert set(cells) == {(None, 5), (None, 20), (0.8, 5), (0.8, 20)}
    assert abs(results["achieved_tau"]["2d_tau0.8"] - 0.8) < 0.01
    assert "| 2 | 20 |" in outcome.text
    assert (tmp_path / "mc" / "rastrigin_2d.png").stat().st_size > 10_000
    with RunStore(tmp_path / "mc" / "run.sqlite", create=False) as store:
        records = store.finished()
    assert [r.status for r in records] == ["ok"] * 4
    assert records[0].metrics["top"] and len(records[0].metrics["top"]) == 10


def test_a_killed_study_resumes_with_nothing_lost(tmp_path):
    whole = run_study(small(), tmp_path / "whole").results
    kill_after(small(), tmp_path / "cut", 2)
    resumed = run_study(small(), tmp_path / "cut", resume=True)
    assert resumed.results == whole
    assert resumed.summary.evaluations == 4


def test_resuming_with_other_settings_or_a_foreign_folder_is_refused(tmp_path):
    run_study(small(), tmp_path / "mc")
    with pytest.raises(SettingsError, match="repeats: stored 10, given 20"):
        run_study(small(repeats=20), tmp_path / "mc", resume=True)
    with pytest.raises(SettingsError, match="already holds a run"):
        run_study(small(), tmp_path / "mc")
    with pytest.raises(StudyError, match="nothing to resume"):
        run_study(small(), tmp_path / "empty", resume=True)
    (tmp_path / "search").mkdir()
    with RunStore(tmp_path / "search" / "run.sqlite", meta={"settings": {"space": "x"}}):
        pass
    with pytest.raises(StudyError, match="holds a search run"):
        run_study(small(), tmp_path / "search", resume=True)


def test_bad_settings_are_refused():
    with pytest.raises(SettingsError, match=r"\(-1, 1\)"):
        small(taus=(1.5,))
    with pytest.raises(SettingsError, match="engine"):
        small(engine="cma")
    with pytest.raises(SettingsError, match="repeats"):
        small(repeats=1)


def test_command_line(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["study", "montecarlo", "--dims", "2", "--points", "2=30", "--taus", "0.8",
            "--generations", "5", "--repeats", "5", "--engine", "builtin", "--quiet",
            "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "E(τ=0.8)" in printed and "2d_tau0.8" in printed
    assert main(["study", "montecarlo", "--out", str(out), "--resume", "--quiet"]) == 0
    assert main(["study", "montecarlo", "--out", str(out), "--resume", "--quiet",
                 "--repeats", "7"]) == 2
    assert "repeats: stored 5, given 7" in capsys.readouterr().err
    assert main(args[:2] + ["--taus", "1.5", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    (out / "montecarlo_table.md").unlink()
    assert main(["report", str(out)]) == 0  # a study's report is its analysis, redone
    assert "E(τ=0.8)" in capsys.readouterr().out and (out / "montecarlo_table.md").exists()
