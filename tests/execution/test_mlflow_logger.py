"""`nord search --log mlflow` with the real package: a run MLflow reads back.

Skipped where mlflow is not installed (pip install mlflow, the ``mlflow``
extra); the conftest summary line says whether it ran.
"""

from __future__ import annotations

import pytest

from nord.execution.store import RunStore
from tests.execution.logger_fakes import DATA, NB201, small_search

pytest.importorskip("mlflow", reason="pip install mlflow to run it")
pytestmark = pytest.mark.skipif(not NB201.exists(), reason="NAS-Bench-201 table not present")


def test_mlflow_reads_back_the_run(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient
    monkeypatch.setenv("NORD_DATA", str(DATA))
    out = tmp_path / "run"
    assert small_search(out, "--log", "mlflow") == 0
    client = MlflowClient(tracking_uri=f"sqlite:///{(out / 'mlflow.db').resolve()}")
    experiment = client.get_experiment_by_name("nord")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.data.params["space"] == "nasbench201"
    history = client.get_metric_history(run.info.run_id, "evaluation_fitness")
    with RunStore(out / "run.sqlite", create=False) as store:
        fitness = [r.fitness for r in store.finished()]
    assert sorted((m.step, m.value) for m in history) == list(enumerate(fitness, start=1))
