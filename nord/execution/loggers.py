"""Search-run callbacks that log each result to TensorBoard or MLflow (optional extras).

Each logger is a ``SearchRun`` callback (see :class:`~nord.execution.run_loop.ProgressEvent`):
after every committed result it logs, at step ``event.done``, the best fitness
so far, the evaluation's fitness, its cost (the table's or the measured
training time) and its numeric metrics; and, when the evaluation's metrics
hold per-epoch curves (``nord search --log-curves``: each candidate's training
loss per epoch), those by epoch, one TensorBoard run or MLflow child run per
evaluation. Both write into the run folder:

* :class:`TensorBoardLogger`: event files in ``<out>/tensorboard``, through
  ``torch.utils.tensorboard`` (``pip install tensorboard``); view them with
  ``tensorboard --logdir <out>/tensorboard``;
* :class:`MLflowLogger`: one MLflow run in a SQLite tracking store,
  ``<out>/mlflow.db`` (``pip install mlflow``); view it with
  ``mlflow ui --backend-store-uri sqlite:///<out>/mlflow.db``.

A logger whose package is missing raises
:class:`~nord.errors.MissingDependencyError` with the install command when it
is made, before the search starts.

>>> with TensorBoardLogger("runs/x") as log:                 # doctest: +SKIP
...     run_search(settings, "runs/x", callbacks=[log])
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from nord.errors import MissingDependencyError, SettingsError

__all__ = ["TensorBoardLogger", "MLflowLogger", "make_logger", "LOGGERS", "scalars_of",
           "curves_of"]

#: ``nord search --log NAME``: the logger, and the folder it writes to in the run folder
LOGGERS = {"tensorboard": "tensorboard", "mlflow": "mlflow.db"}


def scalars_of(event) -> Dict[str, float]:
    """What a logger records of one result: best fitness so far, the evaluation's
    fitness, its cost and seconds (when known) and its finite numeric metrics."""
    record = event.record
    values = {"search/best_fitness": event.best_fitness, "evaluation/fitness": record.fitness}
    if record.cost is not None:
        values["evaluation/cost"] = record.cost
    if record.eval_seconds is not None and record.status != "cached":
        values["evaluation/seconds"] = record.eval_seconds
    for key, value in record.metrics.items():
        if (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value)):
            values[f"metrics/{key}"] = float(value)
    return {key: float(value) for key, value in values.items()}


def curves_of(event) -> Dict[str, List[float]]:
    """The evaluation's per-epoch curves: its metrics that are lists of numbers (the
    ``train_losses`` of a training search run with ``--log-curves``)."""
    return {key: [float(v) for v in value] for key, value in event.record.metrics.items()
            if isinstance(value, list) and value
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)}


class TensorBoardLogger:
    """TensorBoard scalars of every result, in ``<out>/tensorboard``."""

    def __init__(self, out, folder: str = LOGGERS["tensorboard"]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as error:
            raise MissingDependencyError(
                f"--log tensorboard needs the tensorboard package ({error}): pip install "
                f"tensorboard (or pip install 'nord[tensorboard]')") from error
        self.folder = Path(out) / folder
        self._writer_class = SummaryWriter
        self.writer = None  # made at the first result: a search that fails to start leaves none

    def __call__(self, event) -> None:
        if self.writer is None:
            self.writer = self._writer_class(log_dir=str(self.folder))
        for tag, value in scalars_of(event).items():
            self.writer.add_scalar(tag, value, global_step=event.done)
        self.writer.flush()
        curves = curves_of(event)
        if curves:  # one TensorBoard run per evaluation, so that their curves overlay
            writer = self._writer_class(
                log_dir=str(self.folder / "evaluations" / f"{event.record.id:06d}"))
            for key, values in curves.items():
                for epoch, value in enumerate(values, start=1):
                    writer.add_scalar(f"curves/{key}", value, global_step=epoch)
            writer.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def __enter__(self) -> "TensorBoardLogger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class MLflowLogger:
    """One MLflow run per search (or resumed part of one) in a SQLite tracking store
    in the run folder, ``<out>/mlflow.db`` (MLflow 3 no longer writes plain
    ``mlruns`` folders by default); its parameters are the run's settings. Uses
    an ``MlflowClient`` of its own: MLflow's global active run is left alone."""

    def __init__(self, out, settings: Optional[Dict[str, Any]] = None,
                 file: str = LOGGERS["mlflow"], experiment: str = "nord") -> None:
        try:
            from mlflow.entities import Metric
            from mlflow.tracking import MlflowClient
        except ImportError as error:
            raise MissingDependencyError(
                f"--log mlflow needs the mlflow package ({error}): pip install mlflow (or "
                f"pip install 'nord[mlflow]')") from error
        self.out = Path(out)
        self.path = self.out / file
        self.settings, self.experiment = dict(settings or {}), experiment
        self._client_class, self._metric = MlflowClient, Metric
        self.client, self.run_id = None, None  # made at the first result, like the store's rows

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.path.resolve()}"

    def _start(self) -> None:
        self.client = self._client_class(tracking_uri=self.tracking_uri)
        found = self.client.get_experiment_by_name(self.experiment)
        self.experiment_id = (found.experiment_id if found is not None else
                              self.client.create_experiment(
                                  self.experiment,
                                  artifact_location=(self.out / "mlartifacts").resolve().as_uri()))
        self.run_id = self.client.create_run(self.experiment_id,
                                             run_name=self.out.resolve().name).info.run_id
        for key, value in sorted(self.settings.items()):
            if value is not None and value != {} and value != () and value != []:
                self.client.log_param(self.run_id, key, str(value)[:500])

    def __call__(self, event) -> None:
        if self.client is None:
            self._start()
        stamp = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[
            self._metric(key.replace("/", "_"), value, stamp, event.done)
            for key, value in scalars_of(event).items()])
        curves = curves_of(event)
        if curves:  # a child run per evaluation, its curves by epoch
            child = self.client.create_run(
                self.experiment_id, run_name=f"evaluation {event.record.id}",
                tags={"mlflow.parentRunId": self.run_id}).info.run_id
            self.client.log_batch(child, metrics=[
                self._metric(key, value, stamp, epoch) for key, values in curves.items()
                for epoch, value in enumerate(values, start=1)])
            self.client.set_terminated(child, status="FINISHED")

    def close(self, status: str = "FINISHED") -> None:
        if self.client is not None:
            self.client.set_terminated(self.run_id, status=status)

    def __enter__(self) -> "MLflowLogger":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close("FINISHED" if exc_type is None else "FAILED")


def make_logger(name: str, out, settings: Optional[Dict[str, Any]] = None):
    """The logger ``nord search --log NAME`` attaches (a context manager)."""
    if name == "tensorboard":
        return TensorBoardLogger(out)
    if name == "mlflow":
        return MLflowLogger(out, settings)
    raise SettingsError(f"unknown logger {name!r}; one of {', '.join(LOGGERS)}")
