"""Errors of distributed evaluation (both derive from :class:`nord.errors.NordError`)."""

from __future__ import annotations

from nord.errors import NordError

__all__ = ["DistributedError", "DistributedConfigError"]


class DistributedError(NordError, RuntimeError):
    """The process group could not form, or a rank was lost or stopped responding.

    After this error during an evaluation the ranks are out of step: leave the
    :class:`~nord.neural_nets.distributed.environment.Environment` block.
    """


class DistributedConfigError(NordError, ValueError):
    """The distributed configuration is missing or invalid; the message says how to fix it."""
