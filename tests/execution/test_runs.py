"""SearchSettings: how a run's settings become its objective, strategy and executor."""

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
