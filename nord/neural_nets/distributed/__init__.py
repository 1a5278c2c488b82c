"""Data-parallel evaluation on ``torch.distributed`` (thesis §3.2.1, §8.2).

- :class:`DistributedEvaluator` trains one network over the ranks of a process
  group (gradients every step, or weights once per epoch).
- :class:`~nord.neural_nets.distributed.environment.Environment` (with
  :class:`DistributedConfig`) is the thesis's master/worker context manager:
  the block runs on rank 0, whose ``descriptor_evaluate`` calls train on every rank.
- :func:`destroy_process_group` ends a process group you formed yourself for
  ``DistributedEvaluator`` without the rare abort at exit that gloo can cause.

``from nord.neural_nets.distributed.environment import Environment, DistributedConfig``

Names are loaded on first use (the evaluator and environment bring in torch).
"""

from typing import TYPE_CHECKING

from nord import lazy_exports

__all__ = ["DistributedEvaluator", "Environment", "DistributedConfig", "DistributedError",
           "DistributedConfigError", "MODES", "destroy_process_group"]

__getattr__, __dir__ = lazy_exports(__name__, {
    ".collectives": ["destroy_process_group"],
    ".config": ["DistributedConfig"],
    ".data_parallel": ["MODES", "DistributedEvaluator"],
    ".environment": ["Environment"],
    ".errors": ["DistributedConfigError", "DistributedError"],
})

if TYPE_CHECKING:
    from nord.neural_nets.distributed.collectives import destroy_process_group
    from nord.neural_nets.distributed.config import DistributedConfig
    from nord.neural_nets.distributed.data_parallel import MODES, DistributedEvaluator
    from nord.neural_nets.distributed.environment import Environment
    from nord.neural_nets.distributed.errors import DistributedConfigError, DistributedError
