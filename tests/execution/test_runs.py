"""SearchSettings: how a run's settings become its objective, strategy and executor."""

import re

import pytest

from nord.execution.runs import SearchSettings, SettingsError


def test_the_search_seed_seeds_training_unless_the_options_name_one():
    assert SearchSettings(space="remnet", seed=7).build_objective().evaluator.seed == 7
    named = SearchSettings(space="remnet", seed=7, objective_options={"seed": 2})
    assert named.build_objective().evaluator.seed == 2


def test_a_synchronous_cycle_defaults_to_the_workers_and_is_written_out():
    settings = SearchSettings(synchronous=True, workers=3)
    assert settings.cycle_size is None and settings.resolved().cycle_size == 3
    assert SearchSettings(synchronous=True, workers=3, cycle_size=2).resolved().cycle_size == 2
    assert SearchSettings(workers=3).resolved().cycle_size is None
    with pytest.raises(SettingsError, match="applies only to synchronous evolution"):
        SearchSettings(cycle_size=2).build_strategy(None)


def test_threads_reach_every_executor():
    assert SearchSettings().executor_options() == {}
    assert SearchSettings(threads=2).executor_options() == {"threads": 2}
    ray = SearchSettings(executor="ray", threads=2, gpus=0.5).executor_options()
    assert ray == {"threads": 2, "address": None, "gpus": 0.5}


@pytest.mark.parametrize("settings, message", [
    (dict(workers=0), "--workers 0: at least one evaluation must be in flight"),
    (dict(executor="process", workers=-1), "--workers -1: at least one evaluation"),
    (dict(workers=2), "the serial executor runs one evaluation at a time; for --workers 2 "
                      "choose --executor process or ray"),
    (dict(gpus=1.0), "the serial executor trains on the visible GPU"),
    (dict(executor="process", workers=2, gpus=1.0), "gives its workers the visible GPUs"),
    (dict(executor="ray", gpus=-0.5), "--gpus must be 0 or more"),
    (dict(synchronous=True, cycle_size=0), "--cycle-size must be at least 1, got 0"),
])
def test_worker_and_gpu_settings_that_cannot_work_name_the_flag(settings, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        SearchSettings(**settings).check()


def test_a_resumed_budget_may_rise_but_not_fall():
    from nord.execution.runs import _resumed_settings
    stored = SearchSettings(budget=50)
    assert _resumed_settings(stored, {"budget": 80}).budget == 80
    assert _resumed_settings(stored, {}).budget == 50
    with pytest.raises(SettingsError, match="--budget 30 is lower than this run's budget 50 "
                                            r"\(stored in runs/x/run.sqlite\)"):
        _resumed_settings(stored, {"budget": 30}, "runs/x/run.sqlite")


def test_the_demo_refuses_zero_workers_before_loading_data(tmp_path):
    from nord.demo import DemoConfig, run_demo
    with pytest.raises(SettingsError, match="--workers 0: the demo trains at least one"):
        run_demo(DemoConfig(workers=0, out=str(tmp_path / "demo"), data_root=str(tmp_path)))
    assert not (tmp_path / "demo").exists()
