"""Errors of distributed evaluation (defined in :mod:`nord.errors`, re-exported here)."""

from nord.errors import DistributedConfigError, DistributedError

__all__ = ["DistributedError", "DistributedConfigError"]
