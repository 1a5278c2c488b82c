"""``DistributedEvaluator``: one network trained data-parallel over many ranks (§3.2.1, §8.2).

Every rank of the process group calls ``descriptor_evaluate`` with the same
arguments (the :class:`~nord.neural_nets.distributed.environment.Environment`
does that for its workers). Each rank compiles the same network, starts from
rank 0's initial weights and trains on its own shard of the training split:
sample ``i`` belongs to rank ``i % world_size``, a disjoint, deterministic
partition. Two modes:

``mode='allreduce'`` (thesis Algorithm 2)
    After every step's backward pass the gradients are summed over the ranks,
    each weighted by its share of the step's samples, so one step equals a
    step on the union of the ranks' batches (a global batch of
    ``world_size * batch_size``). All ranks take the same number of steps; a
    rank whose shard runs out first contributes nothing to the last step.
    BatchNorm running statistics are averaged at the end of each epoch.
``mode='average'`` (thesis Algorithm 1)
    Each rank trains on its shard alone for an epoch with its own optimizer;
    then weights and BatchNorm buffers are averaged once: one communication
    per epoch instead of one per step.

Either way every rank ends with the same weights; rank 0 scores the network
on the validation (or test) split and every rank returns the same
:class:`~nord.neural_nets.evaluators.EvaluationResult`. ``batch_size`` is per
rank. With a single rank (or no process group) training is exactly
``LocalEvaluator``'s: same batches, same random numbers, same result.

Example (launched with ``torchrun --nproc-per-node 2 script.py``)::

    torch.distributed.init_process_group("gloo")
    evaluator = DistributedEvaluator("adam", {}, mode="average")
    loss, metrics, total_time = evaluator.descriptor_evaluate(d, epochs=2, dataset="fashion-mnist")
    nord.neural_nets.distributed.destroy_process_group()   # torch's, then a clean-up
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn

from nord.configurations.all import DatasetConfig
from nord.data_curators.splits import TensorData
from nord.errors import EvaluationError
from nord.neural_nets.distributed.collectives import RankGroup
from nord.neural_nets.evaluators import EvaluationResult, LocalEvaluator
from nord.neural_nets.training import (NonFiniteLossError, TrainingSettings, make_scheduler,
                                       prepare_targets, score)

__all__ = ["DistributedEvaluator", "MODES", "shard_indices", "shard_batches",
           "global_batch_sizes", "rank_seed", "rank_device", "average_model", "average_buffers",
           "average_tensors_"]

logger = logging.getLogger(__name__)

MODES = ("allreduce", "average")
_SEED_STRIDE = 0x9E3779B97F4A7C15  # spreads the ranks' seeds apart


def shard_indices(n: int, rank: int, world_size: int) -> torch.Tensor:
    """The training-sample indices of ``rank``: every ``world_size``-th from ``rank``."""
    return torch.arange(rank, n, world_size)


def shard_batches(shard: torch.Tensor, batch_size: int,
                  generator: torch.Generator) -> List[torch.Tensor]:
    """One epoch's batches of sample indices: the shard shuffled by ``generator``."""
    order = torch.randperm(len(shard), generator=generator)
    return [shard[order[start:start + batch_size]] for start in range(0, len(order), batch_size)]


def global_batch_sizes(n: int, world_size: int, batch_size: int) -> List[int]:
    """Samples in each synchronous step, summed over the ranks (one epoch)."""
    shards = [len(range(rank, n, world_size)) for rank in range(world_size)]
    steps = math.ceil(max(shards) / batch_size)
    return [sum(min(batch_size, max(0, size - step * batch_size)) for size in shards)
            for step in range(steps)]


def rank_seed(seed: int, rank: int) -> int:
    """The seed of ``rank``'s shuffling, augmentation and dropout (rank 0 keeps ``seed``)."""
    return int(seed) if rank == 0 else (int(seed) + _SEED_STRIDE * rank) % 2 ** 63


def rank_device(local_rank: Optional[int] = None) -> torch.device:
    """CPU, or the CUDA device of this process's local rank when CUDA is present."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if local_rank is None:
        local_rank = int(os.environ.get("LOCAL_RANK", RankGroup().rank))
    return torch.device("cuda", local_rank % torch.cuda.device_count())


@dataclass
class _Job:
    """Everything one rank needs to train and score one network."""

    net: nn.Module
    config: DatasetConfig
    train_data: TensorData
    eval_data: Any
    split: str
    augmentation: Optional[Callable]
    shard: torch.Tensor
    generator: torch.Generator
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    settings: TrainingSettings
    device: torch.device
    start: float

    @property
    def regression(self) -> bool:
        return self.config.task == "regression"


class DistributedEvaluator(LocalEvaluator):
    """Trains one network data-parallel over the ranks of a process group.

    Takes :class:`~nord.neural_nets.LocalEvaluator`'s arguments (optimizer,
    ``batch_size`` per rank, ``seed``, ``lr_schedule``, ``split``, ``augment``,
    ``configs``, ...) plus:

    mode : 'allreduce' or 'average'
        Average gradients every step (Algorithm 2) or weights once per epoch
        (Algorithm 1).
    group : torch.distributed process group
        The ranks that train together; the default (world) group when omitted,
        or this process alone when ``torch.distributed`` is not initialised.
    device : default CPU, or ``cuda:<local rank>`` when CUDA is present.

    Every rank must call :meth:`descriptor_evaluate` with the same arguments.
    If any rank cannot set an evaluation up (the dataset is not registered
    there, the descriptor does not compile) every rank raises: that rank its
    own error, the others an :class:`~nord.errors.EvaluationError` naming it,
    and the ranks stay in step. A non-finite training loss on any rank makes
    a failed result on every rank. ``in_lockstep`` is false after any other
    error: the ranks are then at different points and the group must be
    shut down.
    """

    def __init__(self, optimizer_class: Union[str, type] = torch.optim.Adam,
                 optimizer_params: Optional[Dict[str, Any]] = None, verbose: bool = False, *,
                 mode: str = "allreduce", group: Optional[Any] = None,
                 device: Union[str, torch.device, None] = None, **options):
        if mode not in MODES:
            raise EvaluationError(f"mode must be one of {MODES} (gradients every step or "
                                  f"weights every epoch), got {mode!r}")
        super().__init__(optimizer_class, optimizer_params, verbose,
                         device=device if device is not None else rank_device(), **options)
        self.mode = mode
        self.group = group
        self.in_lockstep = True

    # ---------------------------------------------------------------- settings
    def settings(self) -> Dict[str, Any]:
        """The training settings every rank must share (picklable keyword arguments)."""
        return dict(optimizer_class=self.optimizer_class,
                    optimizer_params=dict(self.optimizer_params), verbose=self.verbose,
                    mode=self.mode, batch_size=self.batch_size, lr_schedule=self.lr_schedule,
                    seed=self.seed, split=self.split, augment=self.augment,
                    eval_batch_size=self.eval_batch_size, **self.net_options)

    def with_settings(self, settings: Dict[str, Any]) -> "DistributedEvaluator":
        """An evaluator with other ``settings`` and this one's group, device, datasets and data."""
        evaluator = DistributedEvaluator(**settings, group=self.group, device=self.device,
                                         configs=self.configs, data_options=self.data_options)
        self.share_data_with(evaluator)
        return evaluator

    # ---------------------------------------------------------------- public API
    def descriptor_evaluate(self, descriptor, epochs: int, dataset: str = "fashion-mnist",
                            data_percentage: float = 1.0) -> EvaluationResult:
        """Compile ``descriptor``, train it ``epochs`` epochs over all ranks, score it."""
        return self._evaluate_on_ranks(lambda config: self.build_network(descriptor, config),
                                       epochs, dataset, data_percentage)

    def net_evaluate(self, net: nn.Module, epochs: int, dataset: str = "fashion-mnist",
                     data_percentage: float = 1.0) -> EvaluationResult:
        """Train and score an already built network (in place; rank 0's weights win)."""
        return self._evaluate_on_ranks(lambda config: net, epochs, dataset, data_percentage)

    def report_setup_failure(self, problem: BaseException) -> None:
        """Join, as a rank that cannot even start it, the evaluation the other ranks start.

        For a rank that could not read the request (e.g. a layer class it cannot
        import): every rank raises, and the ranks stay in step. Raises ``problem``.
        """
        self._agree_on_setup(RankGroup(self.group, self.device), problem)

    # ---------------------------------------------------------------- phases
    def _evaluate_on_ranks(self, make_net, epochs, dataset, data_percentage) -> EvaluationResult:
        ranks = RankGroup(self.group, self.device)
        self.in_lockstep = False
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            job, problem = None, None
            try:
                config = self.configs[dataset]
                job = self._prepare(make_net(config), epochs, config, data_percentage, ranks)
            except Exception as error:  # every rank must hear of it, whatever it is
                problem = error
            self._agree_on_setup(ranks, problem)
            result = self._run(job, ranks)
        self.in_lockstep = True
        return result

    def _prepare(self, net: nn.Module, epochs: int, config: DatasetConfig,
                 data_percentage: float, ranks: RankGroup) -> _Job:
        if int(epochs) < 0:
            raise EvaluationError(f"epochs must be >= 0, got {epochs!r}")
        start = time.perf_counter()
        train_data, eval_data, split, augmentation = self._splits(config, data_percentage)
        if not isinstance(train_data, TensorData):
            raise EvaluationError(
                f"DistributedEvaluator shards in-memory training data, but dataset "
                f"{config.name!r} provides {type(train_data).__name__}; make its data_load "
                f"return nord.data_curators.DatasetSplits")
        if len(train_data) < ranks.size:
            raise EvaluationError(
                f"the training split of {config.name!r} has {len(train_data)} samples, fewer "
                f"than the {ranks.size} ranks; train on a larger share or on fewer ranks")
        net = net.to(self.device)
        train_data = train_data.to(self.device)
        if isinstance(eval_data, TensorData):
            eval_data = eval_data.to(self.device)
        return _Job(net=net, config=config, train_data=train_data, eval_data=eval_data,
                    split=split, augmentation=augmentation,
                    shard=shard_indices(len(train_data), ranks.rank, ranks.size),
                    generator=torch.Generator().manual_seed(rank_seed(self.seed, ranks.rank)),
                    criterion=config.criterion().to(self.device),
                    optimizer=self.optimizer_class(net.parameters(), **self.optimizer_params),
                    settings=TrainingSettings(int(epochs), self.batch_size, self.lr_schedule,
                                              self.augment),
                    device=self.device, start=start)

    def _agree_on_setup(self, ranks: RankGroup, problem: Optional[BaseException]) -> None:
        """Raise on every rank if any rank could not set the evaluation up."""
        report = None if problem is None else f"{type(problem).__name__}: {problem}"
        failures = [(rank, text) for rank, text in enumerate(ranks.all_gather_objects(report))
                    if text is not None]
        if not failures:
            return
        self.in_lockstep = True  # every rank stops here, in step
        if problem is not None:
            raise problem
        rank, text = failures[0]
        raise EvaluationError(
            f"rank {rank} of {ranks.size} could not set up the evaluation: {text}. Every rank "
            f"builds the network and loads the data itself: register datasets and custom "
            f"layers at import time (an Environment block runs on the master only) and make "
            f"the data available on every machine")

    def _run(self, job: _Job, ranks: RankGroup) -> EvaluationResult:
        net = job.net
        ranks.broadcast_(list(net.parameters()) + list(net.buffers()))  # rank 0's initial weights
        if ranks.rank:
            torch.manual_seed(rank_seed(self.seed, ranks.rank))  # this rank's dropout stream
        parameters = sum(p.numel() for p in net.parameters())
        history: List[float] = []

        def on_epoch(epoch: int, loss: float) -> None:
            history.append(loss)
            if self.verbose and ranks.is_master:
                logger.info("%s epoch %d/%d on %d ranks: training loss %.4f", job.config.name,
                            epoch + 1, job.settings.epochs, ranks.size, loss)

        try:
            train_start = time.perf_counter()
            train_epochs = _train_allreduce if self.mode == "allreduce" else _train_average
            train_epochs(job, ranks, on_epoch)
            train_seconds = time.perf_counter() - train_start
            scored = None
            if ranks.is_master:
                scored = score(net, job.eval_data, job.criterion, job.config.metrics,
                               self.device, batch_size=self.eval_batch_size,
                               regression=job.regression)
            loss, metrics = ranks.broadcast_object(scored)
        except (NonFiniteLossError, torch.OutOfMemoryError) as error:
            if isinstance(error, torch.OutOfMemoryError) and ranks.size > 1:
                raise  # the other ranks cannot know: not a result the ranks agree on
            logger.warning("evaluation failed on %s: %s", job.config.name, error)
            return EvaluationResult(float("nan"), {m: float("nan") for m in job.config.metrics},
                                    time.perf_counter() - job.start, failed=True,
                                    error=f"{type(error).__name__}: {error}", split=job.split,
                                    train_losses=tuple(history), parameters=parameters)
        if self.verbose and ranks.is_master:
            logger.info("%s %s loss %.4f, %s", job.config.name, job.split, loss,
                        ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        return EvaluationResult(loss, metrics, time.perf_counter() - job.start, split=job.split,
                                train_losses=tuple(history), parameters=parameters,
                                train_seconds=train_seconds)


# -------------------------------------------------------------------- training loops
def _forward_backward(job: _Job, index: torch.Tensor, epoch: int,
                      batch: int) -> Tuple[float, Optional[str]]:
    """One batch's forward and backward pass: the loss, and a message if it is not finite."""
    x = job.train_data.x[index].to(job.device, non_blocking=True)
    y = job.train_data.y[index].to(job.device, non_blocking=True)
    if job.augmentation is not None and job.settings.augment:
        x = job.augmentation(x, job.generator)
    job.optimizer.zero_grad(set_to_none=True)
    outputs = job.net(x)
    loss = job.criterion(outputs, prepare_targets(outputs, y, job.regression))
    value = loss.item()
    if not math.isfinite(value):
        return value, f"training loss became {value} at epoch {epoch + 1}, batch {batch + 1}"
    loss.backward()
    return value, None


def _train_allreduce(job: _Job, ranks: RankGroup, on_epoch) -> None:
    """Algorithm 2: every step, sum the ranks' gradients weighted by their batch shares."""
    step_sizes = global_batch_sizes(len(job.train_data), ranks.size, job.settings.batch_size)
    scheduler = make_scheduler(job.optimizer, job.settings.lr_schedule,
                               job.settings.epochs * len(step_sizes))
    parameters = list(job.net.parameters())
    for epoch in range(job.settings.epochs):
        job.net.train()
        batches = shard_batches(job.shard, job.settings.batch_size, job.generator)
        total, done = 0.0, 0
        for step, step_size in enumerate(step_sizes):
            problem = None
            if step < len(batches):
                value, problem = _forward_backward(job, batches[step], epoch, done)
                weight = len(batches[step]) / step_size
            else:  # this rank's shard is used up: it adds nothing to the last step
                job.optimizer.zero_grad(set_to_none=True)
                weight = 0.0
            if _sum_gradients(parameters, ranks, weight, problem is not None):
                raise NonFiniteLossError(problem or f"the training loss of another rank became "
                                         f"non-finite at epoch {epoch + 1}, step {step + 1}")
            job.optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if step < len(batches):
                total += value
                done += 1
        on_epoch(epoch, _mean_over_ranks(ranks, total, done))
        average_buffers(job.net, ranks)


def _train_average(job: _Job, ranks: RankGroup, on_epoch) -> None:
    """Algorithm 1: train the shard alone for an epoch, then average the weights."""
    steps = math.ceil(len(job.shard) / job.settings.batch_size)
    scheduler = make_scheduler(job.optimizer, job.settings.lr_schedule,
                               job.settings.epochs * steps)
    for epoch in range(job.settings.epochs):
        job.net.train()
        total, done, problem = 0.0, 0, None
        for index in shard_batches(job.shard, job.settings.batch_size, job.generator):
            value, problem = _forward_backward(job, index, epoch, done)
            if problem is not None:
                break  # stop here, but still meet the other ranks at the epoch's end
            job.optimizer.step()
            if scheduler is not None:
                scheduler.step()
            total += value
            done += 1
        failed, total, batches = ranks.sum_values([problem is not None, total, done])
        if failed:
            raise NonFiniteLossError(problem or f"the training loss of another rank became "
                                     f"non-finite in epoch {epoch + 1}")
        on_epoch(epoch, total / max(1, batches))
        average_model(job.net, ranks)


# -------------------------------------------------------------------- synchronisation
def _sum_gradients(parameters: List[nn.Parameter], ranks: RankGroup, weight: float,
                   nonfinite: bool) -> bool:
    """Replace each gradient by the ranks' weighted sum; whether any rank's loss was non-finite.

    A parameter that got no gradient on any rank keeps ``grad = None``, as in
    single-process training (optimizers skip it).
    """
    if ranks.size == 1:
        return nonfinite
    grads = [p.grad * weight if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flags = torch.tensor([p.grad is not None for p in parameters] + [nonfinite],
                         dtype=torch.float32, device=parameters[0].device if parameters else None)
    *summed, flag_sums = ranks.all_reduce_sum(grads + [flags])
    counts = flag_sums.tolist()
    for parameter, grad, count in zip(parameters, summed, counts):
        parameter.grad = grad if count > 0 else None
    return counts[-1] > 0


def _mean_over_ranks(ranks: RankGroup, total: float, batches: int) -> float:
    """Mean batch loss over every rank's batches of the epoch."""
    total, batches = ranks.sum_values([total, batches])
    return total / max(1, batches)


def average_buffers(net: nn.Module, ranks: RankGroup) -> None:
    """Average floating-point buffers (BatchNorm statistics); counters follow rank 0."""
    if ranks.size > 1:
        average_tensors_(ranks, [b for b in net.buffers() if b.is_floating_point()])
        ranks.broadcast_([b for b in net.buffers() if not b.is_floating_point()])


def average_model(net: nn.Module, ranks: RankGroup) -> None:
    """Average weights and floating-point buffers over the ranks; counters follow rank 0."""
    if ranks.size > 1:
        average_tensors_(ranks, list(net.parameters()) + [b for b in net.buffers()
                                                  if b.is_floating_point()])
        ranks.broadcast_([b for b in net.buffers() if not b.is_floating_point()])


@torch.no_grad()
def average_tensors_(ranks: RankGroup, tensors: List[torch.Tensor]) -> None:
    """Replace each tensor, in place, by its mean over the ranks."""
    for tensor, total in zip(tensors, ranks.all_reduce_sum(tensors)):
        tensor.copy_(total / ranks.size)
