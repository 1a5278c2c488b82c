"""Stand-ins for tensorboard's SummaryWriter and MLflow's client, and a small search."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import List, NamedTuple

from nord.cli import main

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("NORD_DATA") or ROOT.parent / "shared" / "data")
NB201 = DATA / "nasbench201" / "nb201_tables.csv"


class FakeWriter:
    """Records what a SummaryWriter is asked to write."""

    made: List["FakeWriter"] = []

    def __init__(self, log_dir):
        self.log_dir, self.scalars, self.closed = log_dir, [], False
        FakeWriter.made.append(self)

    def add_scalar(self, tag, value, global_step):
        self.scalars.append((tag, value, global_step))

    def flush(self):
        pass

    def close(self):
        self.closed = True


class FakeClient:
    """Records what an MlflowClient is asked to log."""

    made: List["FakeClient"] = []

    def __init__(self, tracking_uri):
        self.tracking_uri, self.params, self.metrics = tracking_uri, {}, []
        self.runs, self.child_metrics, self.statuses = [], [], {}
        FakeClient.made.append(self)

    def get_experiment_by_name(self, name):
        return None

    def create_experiment(self, name, artifact_location):
        self.artifact_location = artifact_location
        return "1"

    def create_run(self, experiment_id, run_name, tags=None):
        self.runs.append((run_name, tags))
        return types.SimpleNamespace(info=types.SimpleNamespace(run_id=f"r{len(self.runs)}"))

    def log_param(self, run_id, key, value):
        self.params[key] = value

    def log_batch(self, run_id, metrics):
        self.metrics += [(m.key, m.value, m.step) for m in metrics if run_id == "r1"]
        self.child_metrics += [(run_id, m.key, m.value, m.step) for m in metrics
                               if run_id != "r1"]

    def set_terminated(self, run_id, status):
        self.statuses[run_id] = status

    @property
    def status(self):
        return self.statuses.get("r1")

    @property
    def run_name(self):
        return self.runs[0][0]


def install_fake_tensorboard(monkeypatch):
    import torch.utils  # the parent package of torch.utils.tensorboard
    module = types.ModuleType("torch.utils.tensorboard")
    module.SummaryWriter = FakeWriter
    FakeWriter.made = []
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", module)
    monkeypatch.setattr(torch.utils, "tensorboard", module, raising=False)


class FakeMetric(NamedTuple):
    key: str
    value: float
    timestamp: int
    step: int


def install_fake_mlflow(monkeypatch):
    mlflow, tracking = types.ModuleType("mlflow"), types.ModuleType("mlflow.tracking")
    entities = types.ModuleType("mlflow.entities")
    tracking.MlflowClient, entities.Metric = FakeClient, FakeMetric
    mlflow.tracking, mlflow.entities = tracking, entities
    FakeClient.made = []
    for name, module in (("mlflow", mlflow), ("mlflow.tracking", tracking),
                         ("mlflow.entities", entities)):
        monkeypatch.setitem(sys.modules, name, module)


def small_search(out, *extra) -> int:
    return main(["search", "--space", "nasbench201", "--budget", "6", "--population", "3",
                 "--sample", "2", "--seed", "0", "--quiet", "--out", str(out), *extra])
