"""``Environment``: the thesis's master/worker context manager (§3.2.1, listing 3.4).

::

    from nord.neural_nets.distributed.environment import Environment, DistributedConfig

    config = DistributedConfig('127.0.0.1', '1234', world_size=4, world_rank=0)
    with Environment(config) as e:       # or Environment() under torchrun / mpirun / srun
        loss, metrics, total_time = e.descriptor_evaluate(
            descriptor=descriptor, epochs=2, dataset='cifar10')

Every rank runs the same program. ``__enter__`` sets the process group up
(gloo on CPU, NCCL on CUDA). On the master (rank 0) it returns the
environment and the block runs: each ``descriptor_evaluate`` sends the
descriptor, the dataset and the master's training settings to the workers,
and all ranks train the network together with a
:class:`~nord.neural_nets.distributed.data_parallel.DistributedEvaluator`;
the master gets the :class:`~nord.neural_nets.evaluators.EvaluationResult`.

**Workers never run the block.** On a worker ``__enter__`` does not return:
it serves evaluations until the master leaves the block, shuts the process
group down and ends the process with ``SystemExit(0)``, so neither the block
nor anything after the ``with`` statement runs on workers. Put what every
rank needs (dataset registration, custom layers) before the ``with``
statement, at import time. :meth:`Environment.run` is the alternative that
returns on every rank: ``e.run(search)`` calls ``search(e)`` on the master and
returns ``None`` on the workers once the master is done.

Leaving the block, normally or by an exception, sends the workers a shutdown
message; every rank then destroys the process group (the exception goes on
up on the master). Nothing waits without bound:

- ``timeout`` (default 60 s) bounds forming the process group: a wrong
  address or port, or a ``world_size`` larger than the number of processes
  launched, is a :class:`~nord.neural_nets.distributed.errors.DistributedError`
  after about that long.
- ``collective_timeout`` (default 600 s) bounds each collective during an
  evaluation. A rank that dies closes its connections, and the others raise
  ``DistributedError`` at once; the timeout catches ranks that hang.
- ``idle_timeout`` (default 30 days) is how long a worker waits for the
  master's next request while the master runs search code. If the master
  dies, the workers notice at once and exit with an error.

After a ``DistributedError`` (or any other error that leaves the ranks out of
step) the environment refuses further evaluations: leave the block.
"""

from __future__ import annotations

import datetime
import logging
import pickle
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Union

import torch
import torch.distributed as dist

from nord.errors import EvaluationError
from nord.neural_nets.distributed.collectives import (RankGroup, destroy_process_group,
                                                      first_line, release_frames)
from nord.neural_nets.distributed.config import DistributedConfig
from nord.neural_nets.distributed.data_parallel import DistributedEvaluator, rank_device
from nord.neural_nets.distributed.errors import DistributedConfigError, DistributedError
from nord.neural_nets.evaluators import EvaluationResult

__all__ = ["Environment", "DistributedConfig"]

logger = logging.getLogger(__name__)

Seconds = Union[float, int, datetime.timedelta]

_EVALUATE, _SHUTDOWN = "evaluate", "shutdown"


@dataclass(frozen=True)
class _Request:
    """What the master sends the workers for one evaluation."""

    number: int
    descriptor: Any
    epochs: int
    dataset: str
    data_percentage: float
    settings: Dict[str, Any]


class Environment:
    """A process group whose master searches and whose ranks all train (thesis listing 3.4).

    Parameters
    ----------
    config : DistributedConfig, optional
        Where rank 0 listens, the world size and this process's rank; read
        from torchrun's or an MPI launcher's variables when omitted
        (:meth:`DistributedConfig.from_environment`).
    optimizer_class, optimizer_params, **evaluator_options
        Training settings of the :class:`DistributedEvaluator` (``batch_size``
        per rank, ``seed``, ``split``, ``configs``, ...). Workers train with
        the master's settings, which travel with each request.
    mode : 'allreduce' or 'average'
        Average gradients every step (thesis Algorithm 2) or weights once per
        epoch (Algorithm 1).
    backend : 'gloo' or 'nccl', optional
        Default: NCCL when this rank trains on CUDA, else gloo.
    timeout, collective_timeout, idle_timeout : seconds or timedelta
        See the module documentation.
    """

    def __init__(self, config: Optional[DistributedConfig] = None,
                 optimizer_class: Union[str, type] = torch.optim.Adam,
                 optimizer_params: Optional[Dict[str, Any]] = None, *,
                 mode: str = "allreduce", backend: Optional[str] = None,
                 timeout: Seconds = 60.0, collective_timeout: Seconds = 600.0,
                 idle_timeout: Seconds = datetime.timedelta(days=30), **evaluator_options):
        if config is None:
            config = DistributedConfig.from_environment()
        if not isinstance(config, DistributedConfig):
            raise DistributedConfigError(
                f"config must be a DistributedConfig(master_ip, port, world_size, world_rank) "
                f"or None, got {type(config).__name__}")
        self.config = config
        self.timeout = _duration(timeout, "timeout")
        self.collective_timeout = _duration(collective_timeout, "collective_timeout")
        self.idle_timeout = _duration(idle_timeout, "idle_timeout")
        device = evaluator_options.pop("device", None)
        device = torch.device(device) if device is not None else rank_device(config.device_index)
        if backend not in (None, "gloo", "nccl", "mpi"):
            raise DistributedConfigError(
                f"backend must be 'gloo', 'nccl' or 'mpi', got {backend!r}")
        self.backend = backend or ("nccl" if device.type == "cuda" else "gloo")
        self.evaluator = DistributedEvaluator(optimizer_class, optimizer_params, mode=mode,
                                              device=device, **evaluator_options)
        self._work = self._control = None
        self._started = self._closed = False
        self._broken: Optional[str] = None
        self._requests = 0

    # ---------------------------------------------------------------- identity
    @property
    def rank(self) -> int:
        return self.config.world_rank

    @property
    def world_size(self) -> int:
        return self.config.world_size

    @property
    def is_master(self) -> bool:
        """True on rank 0, the only rank that runs the ``with`` block."""
        return self.config.is_master

    def __repr__(self) -> str:
        c = self.config
        return (f"Environment(rank {c.world_rank} of {c.world_size}, master "
                f"{c.master_ip}:{c.port}, {self.backend}, mode={self.evaluator.mode!r})")

    # ---------------------------------------------------------------- context manager
    def __enter__(self) -> "Environment":
        self.start()
        if self.is_master:
            return self
        try:
            self.serve()
        finally:
            self.close()
        logger.info("rank %d: the master is done; worker exits", self.rank)
        raise SystemExit(0)  # skips the with block: it runs on the master only

    def __exit__(self, exc_type, exc, traceback) -> bool:
        self.close()
        return False

    def run(self, fn: Callable[..., Any], *args, **kwargs) -> Any:
        """``fn(self, *args, **kwargs)`` on the master; workers serve until it returns.

        Returns ``fn``'s result on the master and ``None`` on the workers; the
        process group is shut down on every rank either way.
        """
        self.start()
        if not self.is_master:
            try:
                self.serve()
            finally:
                self.close()
            return None
        try:
            return fn(self, *args, **kwargs)
        finally:
            self.close()

    # ---------------------------------------------------------------- master
    def descriptor_evaluate(self, descriptor, epochs: int, dataset: str = "fashion-mnist",
                            data_percentage: float = 1.0) -> EvaluationResult:
        """Train ``descriptor`` on every rank and score it; the master's result.

        Unpacks as ``loss, metrics, total_time``, like
        :meth:`~nord.neural_nets.LocalEvaluator.descriptor_evaluate`.
        """
        self._check_usable()
        self._requests += 1
        request = _Request(self._requests, descriptor, int(epochs), dataset,
                           float(data_percentage), self.evaluator.settings())
        try:
            payload = pickle.dumps(request)
        except Exception as error:
            raise EvaluationError(
                f"the request cannot be sent to the workers ({type(error).__name__}: {error}); "
                f"descriptors and optimizer classes must be picklable: define custom layers "
                f"and classes at module level") from error
        logger.debug("rank 0: evaluation %d on %s, %d epochs", request.number, dataset, epochs)
        try:
            self._broadcast((_EVALUATE, payload))
            return self.evaluator.descriptor_evaluate(descriptor, epochs, dataset, data_percentage)
        except BaseException as error:
            if isinstance(error, DistributedError) or not self.evaluator.in_lockstep:
                self._broken = f"{type(error).__name__}: {error}"
            release_frames(error)
            raise

    def _check_usable(self) -> None:
        if not self.is_master:
            raise DistributedError(f"descriptor_evaluate runs on the master only; this is rank "
                                   f"{self.rank} (workers evaluate inside `with Environment()`)")
        if not self._started or self._closed:
            raise DistributedError("the environment is not running: call descriptor_evaluate "
                                   "inside `with Environment(config) as e:`")
        if self._broken is not None:
            raise DistributedError(f"the environment can no longer evaluate: an earlier "
                                   f"evaluation left the ranks out of step ({self._broken}); "
                                   f"leave the with block and start again")

    # ---------------------------------------------------------------- workers
    def serve(self) -> None:
        """On a worker: take part in the master's evaluations until it shuts down."""
        if self.is_master:
            raise DistributedError("serve() runs on workers; the master evaluates")
        while True:
            kind, payload = self._broadcast(None)
            if kind == _SHUTDOWN:
                logger.info("rank %d: shutdown received", self.rank)
                return
            try:
                request = pickle.loads(payload)
                evaluator = self._evaluator_for(request.settings)
            except Exception as error:
                logger.warning("rank %d could not read a request: %s", self.rank, error)
                release_frames(error)
                self._join_failed_setup(error)
                continue
            self._serve_request(evaluator, request)

    def _serve_request(self, evaluator: DistributedEvaluator, request: _Request) -> None:
        logger.debug("rank %d: evaluation %d on %s", self.rank, request.number, request.dataset)
        try:
            evaluator.descriptor_evaluate(request.descriptor, request.epochs, request.dataset,
                                          request.data_percentage)
        except Exception as error:
            release_frames(error)
            if evaluator.in_lockstep and not isinstance(error, DistributedError):
                logger.warning("rank %d: evaluation %d failed on every rank: %s", self.rank,
                               request.number, error)
                return
            self._broken = f"{type(error).__name__}: {error}"
            if isinstance(error, DistributedError):
                raise
            raise DistributedError(
                f"rank {self.rank} failed during evaluation {request.number} "
                f"({type(error).__name__}: {error}); the ranks are out of step") from error

    def _join_failed_setup(self, error: Exception) -> None:
        """Take part in the evaluation this rank cannot set up, so every rank raises."""
        try:
            self.evaluator.report_setup_failure(error)
        except DistributedError as lost:
            self._broken = f"{type(lost).__name__}: {lost}"
            release_frames(lost)
            raise
        except Exception as same:
            release_frames(same)  # the master reports it

    def _evaluator_for(self, settings: Dict[str, Any]) -> DistributedEvaluator:
        if settings != self.evaluator.settings():
            logger.info("rank %d: training with the master's settings %s", self.rank, settings)
            self.evaluator = self.evaluator.with_settings(settings)
        return self.evaluator

    # ---------------------------------------------------------------- process group
    def start(self) -> None:
        """Form the process group (bounded by ``timeout``); every rank calls it."""
        if self._started:
            raise DistributedError("this Environment has already been started; create a new one")
        if dist.is_initialized():
            raise DistributedError(
                "torch.distributed is already initialised in this process; an Environment "
                "forms and destroys its own process group: call "
                "torch.distributed.destroy_process_group() first, or use DistributedEvaluator "
                "directly on the existing group")
        c = self.config
        host = f"[{c.master_ip}]" if ":" in c.master_ip else c.master_ip
        if self.evaluator.device.type == "cuda":
            torch.cuda.set_device(self.evaluator.device)
        began = time.perf_counter()
        try:
            dist.init_process_group(self.backend, init_method=f"tcp://{host}:{c.port}",
                                    world_size=c.world_size, rank=c.world_rank,
                                    timeout=self.timeout)
            self._work = dist.new_group(timeout=self.collective_timeout)
            self._control = dist.new_group(backend="gloo", timeout=self.idle_timeout)
        except (RuntimeError, ValueError) as error:
            self._work = self._control = None
            if dist.is_initialized():
                destroy_process_group()
            raise DistributedError(
                f"rank {c.world_rank}: the process group of {c.world_size} ranks did not form "
                f"at {c.master_ip}:{c.port} within {self.timeout.total_seconds():g} s "
                f"({type(error).__name__}: {first_line(error)}). Check that rank 0 runs at "
                f"master_ip:port and every rank can reach it, that world_size equals the number "
                f"of processes launched and every rank number is used once; raise timeout= if "
                f"the ranks start far apart") from error
        self._started = True
        self.evaluator.group = self._work
        logger.info("rank %d of %d joined the process group at %s:%d (%s) in %.1f s",
                    c.world_rank, c.world_size, c.master_ip, c.port, self.backend,
                    time.perf_counter() - began)

    def close(self) -> None:
        """Shut down: the master tells the workers; every rank destroys the process group."""
        if not self._started or self._closed:
            return
        self._closed = True
        try:
            if self._broken is None:
                if self.is_master:
                    self._broadcast((_SHUTDOWN, None))
                RankGroup(self._work).barrier()
        except DistributedError as error:
            logger.warning("rank %d: no clean shutdown (%s); destroying the process group",
                           self.rank, error)
        finally:
            self._work = self._control = self.evaluator.group = None
            destroy_process_group()
            logger.info("rank %d: process group destroyed", self.rank)

    def _broadcast(self, message):
        """The master's ``message`` on every rank, over the control group."""
        try:
            return RankGroup(self._control).broadcast_object(message)
        except DistributedError as error:
            self._broken = f"{type(error).__name__}: {error}"
            release_frames(error)
            if self.is_master:
                raise
            raise DistributedError(f"rank {self.rank} lost the master (rank 0) while waiting "
                                   f"for its next request: {error}") from error


def _duration(value: Seconds, name: str) -> datetime.timedelta:
    if isinstance(value, datetime.timedelta):
        duration = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        duration = datetime.timedelta(seconds=float(value))
    else:
        raise DistributedConfigError(f"{name} must be seconds or a datetime.timedelta, "
                                     f"got {value!r}")
    if duration.total_seconds() <= 0:
        raise DistributedConfigError(f"{name} must be positive, got {value!r}")
    return duration

