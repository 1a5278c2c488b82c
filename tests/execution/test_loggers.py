"""`nord search --log tensorboard|mlflow`: what is logged, and the install hint when missing."""

from __future__ import annotations

import sys
import types

import pytest

from nord.errors import MissingDependencyError
from nord.execution.loggers import MLflowLogger, TensorBoardLogger, make_logger, scalars_of
from nord.execution.store import RunStore
from tests.execution.logger_fakes import (NB201, DATA, FakeClient, FakeWriter,
                                          install_fake_mlflow, install_fake_tensorboard,
                                          small_search)

needs_table = pytest.mark.skipif(not NB201.exists(), reason="NAS-Bench-201 table not present")


@pytest.fixture(autouse=True)
def data_env(monkeypatch):
    monkeypatch.setenv("NORD_DATA", str(DATA))


def event(fitness=0.7, best=0.9, cost=12.0, metrics=None, status="ok"):
    record = types.SimpleNamespace(id=7, fitness=fitness, cost=cost, status=status,
                                   eval_seconds=2.5, metrics=metrics or {})
    return types.SimpleNamespace(record=record, done=4, budget=10, best_fitness=best)


def test_scalars_are_best_fitness_cost_seconds_and_numeric_metrics():
    metrics = {"accuracy": 0.7, "loss": float("nan"), "name": "x", "flag": True, "n": 3}
    assert scalars_of(event(metrics=metrics)) == {
        "search/best_fitness": 0.9, "evaluation/fitness": 0.7, "evaluation/cost": 12.0,
        "evaluation/seconds": 2.5, "metrics/accuracy": 0.7, "metrics/n": 3.0}
    assert scalars_of(event(cost=None, status="cached")) == {
        "search/best_fitness": 0.9, "evaluation/fitness": 0.7}


def test_a_missing_package_names_its_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(MissingDependencyError, match="pip install tensorboard"):
        TensorBoardLogger("runs/x")
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(MissingDependencyError, match="pip install mlflow"):
        make_logger("mlflow", "runs/x")


@needs_table
def test_search_without_the_package_fails_before_making_a_store(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    assert small_search(tmp_path / "run", "--log", "tensorboard") == 1
    assert "pip install tensorboard" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@needs_table
def test_tensorboard_gets_every_result_at_its_step(tmp_path, monkeypatch):
    install_fake_tensorboard(monkeypatch)
    assert small_search(tmp_path / "run", "--log", "tensorboard") == 0
    [writer] = FakeWriter.made
    assert writer.log_dir == str(tmp_path / "run" / "tensorboard") and writer.closed
    with RunStore(tmp_path / "run" / "run.sqlite", create=False) as store:
        records = store.finished()
        best = store.best().fitness
    fitness = [(value, step) for tag, value, step in writer.scalars
               if tag == "evaluation/fitness"]
    assert fitness == [(r.fitness, i) for i, r in enumerate(records, start=1)]
    best_curve = [value for tag, value, _ in writer.scalars if tag == "search/best_fitness"]
    assert best_curve[-1] == best and best_curve == sorted(best_curve)


@needs_table
def test_mlflow_gets_the_settings_and_every_result(tmp_path, monkeypatch):
    install_fake_mlflow(monkeypatch)
    assert small_search(tmp_path / "run", "--log", "mlflow") == 0
    [client] = FakeClient.made
    assert client.tracking_uri == f"sqlite:///{(tmp_path / 'run' / 'mlflow.db').resolve()}"
    assert client.artifact_location == (tmp_path / "run" / "mlartifacts").resolve().as_uri()
    assert client.run_name == "run" and client.status == "FINISHED"
    assert client.params["space"] == "nasbench201" and client.params["budget"] == "6"
    steps = [step for key, _, step in client.metrics if key == "evaluation_fitness"]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_a_failed_search_marks_the_mlflow_run_failed(tmp_path, monkeypatch):
    install_fake_mlflow(monkeypatch)
    with pytest.raises(RuntimeError):
        with MLflowLogger(tmp_path) as logger:
            logger(event())
            raise RuntimeError("the search stopped")
    assert FakeClient.made[0].status == "FAILED"
    assert FakeClient.made[0].metrics[0] == ("search_best_fitness", 0.9, 4)


def test_curves_go_to_one_run_per_evaluation(tmp_path, monkeypatch):
    curve = {"train_losses": [0.9, 0.5, 0.25], "accuracy": 0.7, "labels": ["a", "b"]}
    install_fake_tensorboard(monkeypatch)
    with TensorBoardLogger(tmp_path) as logger:
        logger(event(metrics=curve))
    main_writer, evaluation = FakeWriter.made
    assert not any(tag.startswith("curves") for tag, _, _ in main_writer.scalars)
    assert evaluation.log_dir == str(tmp_path / "tensorboard" / "evaluations" / "000007")
    assert evaluation.scalars == [("curves/train_losses", 0.9, 1), ("curves/train_losses", 0.5, 2),
                                  ("curves/train_losses", 0.25, 3)] and evaluation.closed
    install_fake_mlflow(monkeypatch)
    with MLflowLogger(tmp_path) as logger:
        logger(event(metrics=curve))
    [client] = FakeClient.made
    assert client.runs[1] == ("evaluation 7", {"mlflow.parentRunId": "r1"})
    assert client.child_metrics == [("r2", "train_losses", 0.9, 1), ("r2", "train_losses", 0.5, 2),
                                    ("r2", "train_losses", 0.25, 3)]
    assert client.statuses == {"r1": "FINISHED", "r2": "FINISHED"}


def test_a_training_objective_keeps_its_curve_only_when_asked():
    from nord.execution.objectives import TrainingObjective
    result = types.SimpleNamespace(loss=0.3, metrics={"accuracy": 0.8}, parameters=100,
                                   failed=False, total_time=2.0, train_losses=(0.9, 0.4))
    stub = types.SimpleNamespace(descriptor_evaluate=lambda *args: result)
    plain, curves = TrainingObjective(), TrainingObjective(curves=True)
    for objective in (plain, curves):
        objective._evaluator = stub
    assert "train_losses" not in plain.evaluate(None).metrics and "curves" not in plain.settings()
    assert curves.evaluate(None).metrics["train_losses"] == [0.9, 0.4]
    assert curves.settings()["curves"] is True


def test_log_curves_needs_a_logger_and_a_space_that_trains(tmp_path, capsys, monkeypatch):
    install_fake_mlflow(monkeypatch)
    assert small_search(tmp_path / "a", "--log-curves") == 2
    assert "add --log tensorboard or --log mlflow" in capsys.readouterr().err
    assert small_search(tmp_path / "b", "--log-curves", "--log", "mlflow") == 2
    assert "is scored from its benchmark table" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
