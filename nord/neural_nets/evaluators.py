"""``LocalEvaluator``: train and score a descriptor on one device (thesis §3.2.1).

Example (thesis listing 3.2)::

    evaluator = LocalEvaluator(torch.optim.Adam, {})
    loss, metrics, total_time = evaluator.descriptor_evaluate(d, epochs=2, dataset='fashion-mnist')

The result is an :class:`EvaluationResult`: it unpacks into the thesis's
``(loss, metrics, total_time)`` and also says whether the evaluation failed
(a loss that became NaN, memory exhausted) and why, so a search can record
the failure instead of dying.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from nord.configurations.all import Configs, DatasetConfig
from nord.data_curators.splits import DatasetSplits, TensorData, check_percentage
from nord.errors import EvaluationError
from nord.neural_nets.neural_builder import NeuralNet
from nord.neural_nets.optimizers import resolve_optimizer
from nord.neural_nets.training import NonFiniteLossError, TrainingSettings, score, train

__all__ = ["LocalEvaluator", "EvaluationResult", "default_device"]

logger = logging.getLogger(__name__)

SPLITS = ("validation", "test", "train")


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class EvaluationResult:
    """The outcome of one evaluation; unpacks as ``loss, metrics, total_time``.

    ``failed`` evaluations carry ``error`` (the reason), a NaN loss and NaN
    metrics; searches give them the thesis's fitness 0.
    """

    loss: float
    metrics: Dict[str, float]
    total_time: float
    failed: bool = False
    error: Optional[str] = None
    split: str = "validation"              # the split loss and metrics were measured on
    train_losses: Tuple[float, ...] = ()   # mean training loss per completed epoch
    parameters: int = 0
    train_seconds: float = 0.0             # time spent in the training loop alone
    #: epoch -> {"loss", the metrics..., "train_seconds"} scored after that epoch, for
    #: the epochs asked for with ``score_at`` (training seconds exclude the scoring)
    checkpoints: Dict[int, Dict[str, float]] = field(default_factory=dict)
    #: with ``monitor``: one row per epoch, {"epoch", "train_loss", "train_accuracy"
    #: (classification), "<split>_loss", "<split>_<metric>"...} (training curves)
    curve: Tuple[Dict[str, float], ...] = ()

    def __iter__(self):
        return iter((self.loss, self.metrics, self.total_time))

    def __len__(self) -> int:
        return 3

    def __getitem__(self, index):
        return (self.loss, self.metrics, self.total_time)[index]


class LocalEvaluator:
    """Compiles descriptors and trains them on one device.

    Parameters
    ----------
    optimizer_class : torch.optim.Optimizer subclass or str
        E.g. ``torch.optim.Adam`` or a name: ``'adadelta'``, ``'adam'``,
        ``'adamax'``, ``'rmsprop'``, ``'sgd'``, ``'sgd_momentum'``,
        ``'sgd_nesterov'`` (the seven optimizers of chapter 4), ``'adamw'``.
    optimizer_params : dict
        Keyword arguments of the optimizer (``{}`` for its defaults).
    verbose : bool
        Log each epoch's training loss at INFO level.
    batch_size : int
        Training batch size (default 64).
    lr_schedule : None, 'cosine' or 'one_cycle'
        Per-batch learning-rate schedule.
    seed : int
        Seeds weight initialisation, shuffling, dropout and augmentation; the
        same seed gives the same result on CPU. The global RNG state is restored.
    device : str or torch.device
        Default: CUDA when present, else CPU.
    split : 'validation', 'test' or 'train'
        Where loss and metrics are measured. The default validation split is
        carved from the training set; ``'test'`` reproduces the thesis.
    augment : bool
        Apply the dataset's standard augmentation to training batches.
    channels_last : bool
        Train and score image networks in the channels-last memory format:
        faster convolutions on CPUs (about 1.6x for DARTS cells, measured) and
        on GPUs with tensor cores; the numbers differ from the default format's
        in the last bits only.
    monitor : None or 'validation', 'test', 'train'
        A split scored after every epoch, besides ``split`` at the end: the
        result's ``curve`` then holds each epoch's training loss and accuracy
        and that split's loss and metrics (the final training's curves,
        Figures 8.6/8.7). Scoring changes nothing in the training.
    configs : Configs
        The dataset registry; ``Configs()`` (the shared default) when omitted.
    data_options : dict
        Extra keyword arguments for the datasets' ``data_load`` (e.g. ``root``).
    policy, channels, interpolation
        Passed to :class:`~nord.neural_nets.NeuralNet`; a dataset with
        dimension keeping uses ``policy='fixed_channels'`` with its channel count.
    """

    def __init__(self, optimizer_class: Union[str, type] = torch.optim.Adam,
                 optimizer_params: Optional[Dict[str, Any]] = None, verbose: bool = False, *,
                 batch_size: int = 64, lr_schedule: Optional[str] = None, seed: int = 0,
                 device: Union[str, torch.device, None] = None, split: str = "validation",
                 augment: bool = False, monitor: Optional[str] = None,
                 channels_last: bool = False,
                 eval_batch_size: int = 1024,
                 configs: Optional[Configs] = None, data_options: Optional[dict] = None,
                 policy: str = "minimum_viable_size", channels: Optional[int] = None,
                 interpolation: str = "linear"):
        self.optimizer_class, self.optimizer_params = resolve_optimizer(
            optimizer_class, optimizer_params)
        if split not in SPLITS:
            raise EvaluationError(f"split must be one of {SPLITS}, got {split!r}")
        if monitor is not None and monitor not in SPLITS:
            raise EvaluationError(f"monitor must be None or one of {SPLITS}, got {monitor!r}")
        if int(batch_size) < 1 or int(eval_batch_size) < 1:
            raise EvaluationError("batch sizes must be positive")
        if lr_schedule not in (None, "cosine", "one_cycle"):
            raise EvaluationError(f"lr_schedule must be None, 'cosine' or 'one_cycle', "
                                  f"got {lr_schedule!r}")
        self.verbose = verbose
        if verbose:
            _show_progress_logs()
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size)
        self.lr_schedule = lr_schedule
        self.seed = int(seed)
        self.device = torch.device(device) if device is not None else default_device()
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise EvaluationError(
                f"device {str(device)!r} asked for, but no CUDA GPU is usable here (torch "
                f"{torch.__version__}{'' if torch.version.cuda else ', a CPU-only build'}); "
                f"use device='cpu' (--device cpu) or leave the device out")
        self.split = split
        self.monitor = monitor
        self.channels_last = bool(channels_last)
        self.augment = augment
        self.configs = configs if configs is not None else Configs()
        self.data_options = dict(data_options or {})
        self.net_options = {"policy": policy, "channels": channels, "interpolation": interpolation}
        self._data: Dict[Tuple[str, float], Any] = {}

    # ---------------------------------------------------------------- public API
    def descriptor_evaluate(self, descriptor, epochs: int, dataset: str = "fashion-mnist",
                            data_percentage: float = 1.0, *,
                            score_at: Sequence[int] = ()) -> EvaluationResult:
        """Compile ``descriptor`` for ``dataset``, train ``epochs`` epochs, score it.

        ``score_at``: also score after these epochs (``result.checkpoints``), so
        that one training run answers several budgets. Scoring changes nothing
        in the training: without a learning-rate schedule (which depends on the
        total), the score after epoch ``e`` is that of an ``e``-epoch training.
        An invalid descriptor raises its typed error (see ``validate()``).
        """
        return self.train_network(descriptor, epochs, dataset, data_percentage,
                                  score_at=score_at)[1]

    def train_network(self, descriptor, epochs: int, dataset: str = "fashion-mnist",
                      data_percentage: float = 1.0, *, score_at: Sequence[int] = ()
                      ) -> Tuple[nn.Module, EvaluationResult]:
        """As :meth:`descriptor_evaluate`, and the trained network too (for export)."""
        config = self.configs[dataset]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)  # initial weights, then dropout: one stream
            net = self.build_network(descriptor, config)
            return net, self._evaluate(net, epochs, config, data_percentage, score_at)

    def net_evaluate(self, net: nn.Module, epochs: int, dataset: str = "fashion-mnist",
                     data_percentage: float = 1.0) -> EvaluationResult:
        """Train and score an already built network (trained in place)."""
        config = self.configs[dataset]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self._evaluate(net, epochs, config, data_percentage)

    def build_network(self, descriptor, config: Union[str, DatasetConfig]) -> NeuralNet:
        """The network ``descriptor`` compiles to for a dataset (not trained)."""
        if isinstance(config, str):
            config = self.configs[config]
        options = dict(self.net_options)
        if config.dimension_keeping:
            options.update(policy="fixed_channels", channels=config.dimension_keeping)
        return NeuralNet(descriptor, config.num_outputs, config.input_shape, config.channels,
                         head=config.dense_head, **options)

    def load_data(self, dataset: str, data_percentage: float = 1.0):
        """The dataset's splits (cached per dataset and percentage)."""
        percentage = check_percentage(data_percentage)
        key = (dataset, percentage)
        if key not in self._data:
            config = self.configs[dataset]
            logger.info("loading %s (asking its loader for %.3g%% of the training set)",
                        dataset, 100 * percentage)
            self._data[key] = config.data_load(percentage, **self.data_options)
        return self._data[key]

    def share_data_with(self, other: "LocalEvaluator") -> None:
        """Let ``other`` use the datasets this evaluator has loaded (and loads
        from now on), instead of loading its own copies."""
        other._data = self._data

    # ---------------------------------------------------------------- internals
    def _evaluate(self, net: nn.Module, epochs: int, config: DatasetConfig,
                  data_percentage: float, score_at: Sequence[int] = ()) -> EvaluationResult:
        if int(epochs) < 0:
            raise EvaluationError(f"epochs must be >= 0, got {epochs!r}")
        score_at = sorted({int(e) for e in score_at})
        if score_at and not 1 <= score_at[0] <= score_at[-1] <= int(epochs):
            raise EvaluationError(f"score_at epochs must lie in 1..{epochs} (the epochs "
                                  f"trained), got {score_at}")
        if score_at and self.lr_schedule is not None:
            raise EvaluationError(f"score_at reads shorter budgets off one training, but the "
                                  f"{self.lr_schedule!r} schedule depends on the total epochs "
                                  f"(an epoch-e score would not be an e-epoch training's); "
                                  f"train each budget separately or use lr_schedule=None")
        start = time.perf_counter()
        train_data, eval_data, split, augmentation = self._splits(config, data_percentage)
        monitored = (None if self.monitor is None else
                     _on_device(self._monitored(config, data_percentage), self.device))
        net = net.to(self.device)
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
        train_data, eval_data = _on_device(train_data, self.device), _on_device(eval_data, self.device)
        generator = torch.Generator().manual_seed(self.seed)
        criterion = config.criterion().to(self.device)
        optimizer = self.optimizer_class(net.parameters(), **self.optimizer_params)
        settings = TrainingSettings(int(epochs), self.batch_size, self.lr_schedule, self.augment)
        regression = config.task == "regression"
        parameters = sum(p.numel() for p in net.parameters())
        history = []
        accuracies: Optional[List[float]] = [] if monitored is not None and not regression else None
        curve: List[Dict[str, float]] = []
        checkpoints: Dict[int, Dict[str, float]] = {}
        scoring = [0.0]  # seconds spent scoring checkpoints and curves, not training

        def on_epoch(epoch: int, loss: float) -> None:
            history.append(loss)
            if monitored is not None:
                t0 = time.perf_counter()
                row = {"epoch": epoch + 1, "train_loss": loss}
                if accuracies is not None:
                    row["train_accuracy"] = accuracies[-1]
                at_loss, at_metrics = score(net, monitored, criterion, config.metrics,
                                            self.device, batch_size=self.eval_batch_size,
                                            regression=regression,
                                            channels_last=self.channels_last)
                row[f"{self.monitor}_loss"] = at_loss
                row.update({f"{self.monitor}_{k}": v for k, v in at_metrics.items()})
                curve.append(row)
                scoring[0] += time.perf_counter() - t0
            if epoch + 1 in score_at:
                t0 = time.perf_counter()
                at_loss, at_metrics = score(net, eval_data, criterion, config.metrics,
                                            self.device, batch_size=self.eval_batch_size,
                                            regression=regression,
                                            channels_last=self.channels_last)
                checkpoints[epoch + 1] = {"loss": at_loss, **at_metrics,
                                          "train_seconds": t0 - train_start - scoring[0]}
                scoring[0] += time.perf_counter() - t0
            if self.verbose:
                elapsed = time.perf_counter() - train_start
                left = elapsed / (epoch + 1) * (settings.epochs - epoch - 1)
                shown = curve[-1] if monitored is not None else {}
                scores = "".join(f", {k.replace('_', ' ')} {v:.4f}" for k, v in shown.items()
                                 if k not in ("epoch", "train_loss"))
                logger.info("%s epoch %d/%d: training loss %.4f%s (%s%s)", config.name,
                            epoch + 1, settings.epochs, loss, scores, _duration(elapsed),
                            f", about {_duration(left)} to go" if left else "")

        train_start = time.perf_counter()
        try:
            train(net, train_data, criterion, optimizer, settings, generator, self.device,
                  regression=regression, augmentation=augmentation, on_epoch=on_epoch,
                  accuracies=accuracies, channels_last=self.channels_last)
            train_seconds = time.perf_counter() - train_start - scoring[0]
            if int(epochs) in checkpoints:  # scored after the last epoch already
                last = dict(checkpoints[int(epochs)])
                loss = last.pop("loss")
                last.pop("train_seconds")
                metrics = last
            else:
                loss, metrics = score(net, eval_data, criterion, config.metrics, self.device,
                                      batch_size=self.eval_batch_size, regression=regression,
                                      channels_last=self.channels_last)
        except (NonFiniteLossError, torch.OutOfMemoryError) as error:
            logger.warning("evaluation failed on %s: %s", config.name, error)
            return EvaluationResult(float("nan"), {m: float("nan") for m in config.metrics},
                                    time.perf_counter() - start, failed=True,
                                    error=f"{type(error).__name__}: {error}", split=split,
                                    train_losses=tuple(history), parameters=parameters,
                                    checkpoints=checkpoints, curve=tuple(curve))
        if self.verbose:
            logger.info("%s %s loss %.4f, %s", config.name, split, loss,
                        ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        return EvaluationResult(loss, metrics, time.perf_counter() - start, split=split,
                                train_losses=tuple(history), parameters=parameters,
                                train_seconds=train_seconds, checkpoints=checkpoints,
                                curve=tuple(curve))

    def _monitored(self, config: DatasetConfig, data_percentage: float):
        """The split scored after every epoch (``monitor``)."""
        data = self.load_data(config.name, data_percentage)
        if not isinstance(data, DatasetSplits):
            raise EvaluationError(f"monitor={self.monitor!r} needs a dataset that returns "
                                  f"DatasetSplits; {config.name!r} returns loaders")
        if self.monitor == "validation" and data.validation is None:
            raise EvaluationError(
                f"monitor='validation', but dataset {config.name!r} was loaded without a "
                f"validation split; load it with validation_fraction > 0 (data_options)")
        return data.split(self.monitor)

    def _splits(self, config: DatasetConfig, data_percentage: float):
        """(training data, scoring data, scoring split name, augmentation)."""
        data = self.load_data(config.name, data_percentage)
        if isinstance(data, DatasetSplits):
            split = self.split
            if split == "validation" and data.validation is None:
                raise EvaluationError(
                    f"dataset {config.name!r} was loaded without a validation split; "
                    f"pass split='test' to LocalEvaluator, or load it with validation_fraction > 0")
            return data.train, data.split(split), split, data.augmentation
        if isinstance(data, (tuple, list)) and len(data) >= 2:
            # The thesis's loader format: (train_loader, test_loader[, classes]).
            if self.split == "validation":
                logger.warning("dataset %r provides only train and test loaders: scoring "
                               "on its test split", config.name)
            scored = data[0] if self.split == "train" else data[1]
            return data[0], scored, "train" if self.split == "train" else "test", None
        raise EvaluationError(
            f"data_load of dataset {config.name!r} returned {type(data).__name__}; it must "
            f"return nord.data_curators.DatasetSplits or (train_loader, test_loader[, classes])")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _show_progress_logs() -> None:
    """Make this module's INFO records visible unless the program set up logging."""
    logger.setLevel(logging.INFO)
    package = logging.getLogger("nord")
    if not package.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        package.addHandler(handler)


def _on_device(data, device):
    return data.to(device) if isinstance(data, TensorData) else data
