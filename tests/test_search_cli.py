"""`nord search` and `nord report` on the benchmark tables."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nord.cli import main
from nord.execution.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NORD_DATA") or ROOT.parent / "shared" / "data")
NB201 = DATA / "nasbench201" / "nb201_tables.csv"
NB101 = DATA / "nasbench101" / "nb101_30k_subset.csv.gz"

pytestmark = pytest.mark.skipif(not (NB201.exists() and NB101.exists()),
                                reason="../shared/data benchmark tables not present")


@pytest.fixture(autouse=True)
def data_env(monkeypatch):
    monkeypatch.setenv("NORD_DATA", str(DATA))


def rows(out):
    with RunStore(Path(out) / "run.sqlite", create=False) as store:
        return [(r.id, r.architecture, r.status, r.fitness) for r in store.finished()]


def search(tmp_path, name, *extra):
    out = tmp_path / name
    code = main(["search", "--space", "nasbench201", "--strategy", "evolution", "--budget", "60",
                 "--population", "10", "--sample", "3", "--seed", "0", "--quiet",
                 "--out", str(out), *extra])
    return code, out


def test_search_then_report(tmp_path, capsys):
    code, out = search(tmp_path, "a", "--fitness", "cifar10_valid_valid_12ep")
    assert code == 0
    printed = capsys.readouterr().out
    assert "60/60 evaluations, best fitness" in printed and "cifar10_test_200ep=" in printed
    records = rows(out)
    assert [r[0] for r in records] == list(range(60))
    best = max(records, key=lambda r: r[3])
    assert main(["report", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    assert f"fitness **{best[3]:.6g}**" in summary
    assert "search-logic overhead" in summary and "| ok |" in summary
    for figure in ("best_so_far.png", "fitness_ecdf.png"):
        assert (out / figure).stat().st_size > 5000


def test_same_seed_same_run_and_other_seed_differs(tmp_path):
    assert search(tmp_path, "a")[0] == 0 and search(tmp_path, "b")[0] == 0
    assert rows(tmp_path / "a") == rows(tmp_path / "b")
    assert search(tmp_path, "c", "--seed", "1")[0] == 0
    assert rows(tmp_path / "c") != rows(tmp_path / "a")


def test_existing_run_needs_resume_and_matching_settings(tmp_path, capsys):
    code, out = search(tmp_path, "a")
    assert search(tmp_path, "a")[0] == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(["search", "--out", str(out), "--resume", "--population", "20", "--quiet"]) == 2
    assert "population: stored 10, given 20" in capsys.readouterr().err
    assert main(["search", "--out", str(out), "--resume", "--budget", "90", "--quiet"]) == 0
    assert len(rows(out)) == 90
    main(["search", "--space", "nasbench201", "--budget", "90", "--seed", "0", "--quiet",
          "--out", str(tmp_path / "straight")])
    assert rows(out) == rows(tmp_path / "straight")


def test_a_resumed_budget_below_the_stored_one_is_refused(tmp_path, capsys):
    code, out = search(tmp_path, "a", "--budget", "20")
    assert main(["search", "--out", str(out), "--resume", "--budget", "10", "--quiet"]) == 2
    assert ("--budget 10 is lower than this run's budget 20 (stored in "
            f"{out / 'run.sqlite'}); a budget can only be raised") in capsys.readouterr().err
    assert len(rows(out)) == 20
    assert main(["search", "--out", str(out), "--resume", "--budget", "20", "--quiet"]) == 0


def test_resumed_workers_are_checked_too(tmp_path, capsys):
    code, out = search(tmp_path, "a", "--budget", "10")
    assert main(["search", "--out", str(out), "--resume", "--budget", "12", "--executor",
                 "process", "--workers", "0", "--quiet"]) == 2
    assert "--workers 0: at least one evaluation" in capsys.readouterr().err
    assert len(rows(out)) == 10


def test_bad_settings_fail_before_a_store_is_written(tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["search", "--space", "nasbench201", "--strategy", "rl", "--out", str(out),
                 "--quiet"]) == 2
    assert "needs the nasbench101 space" in capsys.readouterr().err
    assert main(["search", "--fitness", "cifar10_valid_valid_7ep", "--out", str(out),
                 "--quiet"]) == 2
    assert "not a NAS-Bench-201 table column" in capsys.readouterr().err
    assert not out.exists()
    assert main(["search", "--out", str(out), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


@pytest.mark.slow
def test_a_synchronous_run_keeps_its_cycle_when_resumed_with_other_workers(tmp_path, capsys):
    common = ["--budget", "40", "--synchronous", "--seed", "0"]
    code, straight = search(tmp_path, "straight", *common, "--workers", "2")
    with RunStore(straight / "run.sqlite", create=False) as store:
        settings = store.meta()["settings"]
    assert settings["cycle_size"] == 2 and settings["synchronous"]
    code, out = search(tmp_path, "resumed", *common[:1], "20", *common[2:], "--workers", "2")
    assert main(["search", "--out", str(out), "--resume", "--budget", "40", "--workers", "3",
                 "--quiet"]) == 0
    assert sorted(rows(out)) == sorted(rows(straight))
    # a cycle size of its own gives the same search with any number of workers
    one = search(tmp_path, "one", *common, "--workers", "1", "--cycle-size", "3")[1]
    three = search(tmp_path, "three", *common, "--workers", "3", "--cycle-size", "3")[1]
    assert sorted(rows(one)) == sorted(rows(three))
    assert search(tmp_path, "bad", "--cycle-size", "3")[0] == 2
    assert "applies only to synchronous evolution" in capsys.readouterr().err


def test_threads_per_evaluation_is_a_stored_setting(tmp_path):
    code, out = search(tmp_path, "t", "--threads", "1")
    with RunStore(out / "run.sqlite", create=False) as store:
        assert store.meta()["settings"]["threads"] == 1


@pytest.mark.parametrize("arguments, message", [
    (["--budget", "-1"], "budget must be at least 1"),
    (["--executor", "serial", "--workers", "2"], "runs one evaluation at a time"),
    (["--channels", "8"], "the nasbench201 space has no channels option (--channels)"),
    (["--space", "remnet", "--percentage", "150"], "percentage must be a share"),
    (["--space", "remnet", "--epochs", "0"], "epochs must be at least 1"),
    (["--space", "remnet", "--optimizer", "adamm"], "unknown optimizer 'adamm'; did you mean"),
    (["--space", "remnet", "--dataset", "activity_recognition"], "builds networks for 2-D"),
    (["--space", "nasbench101", "--fitness", "test_accuracy@108"], "holds only validation"),
    (["--space", "nasbench101", "--fitness", "validation_accuracy@100"], "epochs must be one"),
    (["--cycle-size", "2"], "applies only to synchronous evolution"),
    (["--epochs", "3"], "scored from its benchmark table, so training options (epochs)"),
    (["--space", "remnet", "--fitness", "x"], "but the remnet space trains its candidates"),
    (["--gpus", "1"], "applies to the Ray executor only"),
    (["--executor", "serial", "--gpus", "0.5"],
     "--gpus 0.5 applies to the Ray executor only (GPUs per evaluation): add --executor ray"),
    (["--workers", "0"], "--workers 0: at least one evaluation must be in flight; use "
                         "--workers 1"),
    (["--executor", "process", "--workers", "0"], "--workers 0: at least one evaluation"),
    (["--executor", "ray", "--gpus", "-1"], "--gpus must be 0 or more"),
    (["--threads", "0"], "--threads must be at least 1, got 0"),
])
def test_a_rejected_search_leaves_no_folder_behind(tmp_path, capsys, arguments, message):
    out = tmp_path / "run"
    assert main(["search", "--budget", "3", *arguments, "--quiet", "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # so the corrected command needs no --resume


def test_help_and_readme_say_asynchronous_pools_do_not_repeat(capsys):
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "asynchronous evolution (the default) is not reproducible" in text
    assert "--synchronous --cycle-size N repeats exactly with any --workers" in text
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "with several workers it is **not reproducible**, faults or not" in readme
    assert "for a search that repeats, use `--synchronous --cycle-size N`" in readme


def test_held_only_and_anywhere_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["search", "--space", "nasbench101", "--held-only", "--anywhere",
              "--out", str(tmp_path / "x")])
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_folder_in_use_by_a_running_search_is_refused(tmp_path, capsys):
    from nord.execution.runs import RunLock
    code, out = search(tmp_path, "busy", "--budget", "10")
    with RunLock(out):
        assert main(["search", "--out", str(out), "--resume", "--budget", "20", "--quiet"]) == 2
    assert "is in use by a search running now" in capsys.readouterr().err
    assert len(rows(out)) == 10 and not (out / "run.lock").exists()
    assert main(["search", "--out", str(out), "--resume", "--budget", "20", "--quiet"]) == 0
    assert len(rows(out)) == 20


@pytest.mark.parametrize("strategy", ["evolution", "random", "rl"])
def test_nasbench101_strategies_stay_inside_the_subset(tmp_path, strategy):
    out = tmp_path / strategy
    assert main(["search", "--space", "nasbench101", "--strategy", strategy, "--budget", "40",
                 "--seed", "0", "--quiet", "--out", str(out)]) == 0
    statuses = {r[2] for r in rows(out)}
    assert statuses <= {"ok", "cached"}
    assert all(0.0 < r[3] < 1.0 for r in rows(out))


@pytest.mark.slow
def test_killed_cli_run_resumes_to_the_uninterrupted_result(tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "nord", "search", "--space", "nasbench201", "--budget",
               "2500", "--seed", "3", "--quiet", "--no-cache"]
    env = dict(os.environ, NORD_DATA=str(DATA))
    process = subprocess.Popen(command + ["--out", str(out)], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL)
    store_path = out / "run.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline:
        if store_path.exists():
            try:
                with RunStore(store_path) as store:
                    if store.count() >= 300:
                        break
            except Exception:
                pass
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done = len(rows(out))
    assert 0 < done < 2500, "the run should have been killed mid-way"
    subprocess.run(command + ["--out", str(out), "--resume"], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(command + ["--out", str(tmp_path / "straight")], env=env, cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)
    assert rows(out) == rows(tmp_path / "straight")


def test_search_with_two_process_workers(tmp_path, capsys):
    out = tmp_path / "pool"
    assert main(["search", "--space", "nasbench201", "--budget", "40", "--workers", "2",
                 "--seed", "0", "--quiet", "--out", str(out)]) == 0
    with RunStore(out / "run.sqlite", create=False) as store:
        records = store.records()
        assert [r.id for r in records] == list(range(40))
        assert {r.status for r in records} <= {"ok", "cached"}
        assert store.meta()["settings"]["executor"] == "process"


def test_an_interrupted_search_says_how_to_resume(tmp_path, capsys, monkeypatch):
    import nord.execution.runs as runs

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(runs, "run_search", interrupted)
    out = tmp_path / "r"
    assert main(["search", "--out", str(out), "--quiet"]) == 130
    assert f"continue with nord search --out {out} --resume" in capsys.readouterr().err


def test_missing_files_are_errors_not_tracebacks(tmp_path, capsys):
    assert main(["describe", str(tmp_path / "missing.json")]) == 1
    assert "missing.json" in capsys.readouterr().err
