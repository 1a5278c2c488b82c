"""``DistributedConfig``: where the master listens, how many ranks, which one this is.

Thesis listing 3.4 builds it by hand::

    config = DistributedConfig('127.0.0.1', '1234', world_size=4, world_rank=0)

:meth:`DistributedConfig.from_environment` reads it from the variables a
launcher sets: ``torchrun`` (``MASTER_ADDR``, ``MASTER_PORT``, ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``), or an MPI / Slurm launcher, whose world size and
rank are copied (thesis §3.2.1) from ``OMPI_COMM_WORLD_SIZE`` /
``OMPI_COMM_WORLD_RANK`` (Open MPI), ``PMI_SIZE`` / ``PMI_RANK`` (MPICH, Intel
MPI) or ``SLURM_NTASKS`` / ``SLURM_PROCID`` (``srun``). MPI launchers do not
say where rank 0 is: set ``MASTER_ADDR`` and ``MASTER_PORT`` too, or pass
``master_ip`` and ``port``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional, Tuple, Union

from nord.neural_nets.distributed.errors import DistributedConfigError

__all__ = ["DistributedConfig", "LAUNCHERS"]

# (launcher, world-size variable, rank variable, local-rank variables), in order of precedence.
LAUNCHERS: Tuple[Tuple[str, str, str, Tuple[str, ...]], ...] = (
    ("torchrun", "WORLD_SIZE", "RANK", ("LOCAL_RANK",)),
    ("Open MPI", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", ("OMPI_COMM_WORLD_LOCAL_RANK",)),
    ("MPICH/PMI", "PMI_SIZE", "PMI_RANK", ("MPI_LOCALRANKID", "PMI_LOCAL_RANK")),
    ("Slurm", "SLURM_NTASKS", "SLURM_PROCID", ("SLURM_LOCALID",)),
)


@dataclass(frozen=True)
class DistributedConfig:
    """The process group of an :class:`~nord.neural_nets.distributed.environment.Environment`.

    ``port`` may be given as a string, as in the thesis; ``local_rank`` (this
    process's index on its machine) picks the CUDA device and defaults to
    ``world_rank``.
    """

    master_ip: str
    port: Union[int, str]
    world_size: int
    world_rank: int
    local_rank: Optional[int] = None

    def __post_init__(self):
        if not isinstance(self.master_ip, str) or not self.master_ip.strip():
            raise DistributedConfigError(
                f"master_ip must be the host name or IP address of rank 0, got {self.master_ip!r}")
        object.__setattr__(self, "master_ip", self.master_ip.strip())
        object.__setattr__(self, "port", _integer(self.port, "port"))
        object.__setattr__(self, "world_size", _integer(self.world_size, "world_size"))
        object.__setattr__(self, "world_rank", _integer(self.world_rank, "world_rank"))
        if self.local_rank is not None:
            object.__setattr__(self, "local_rank", _integer(self.local_rank, "local_rank"))
        if not 1 <= self.port <= 65535:
            raise DistributedConfigError(f"port must be in 1..65535, got {self.port}")
        if self.world_size < 1:
            raise DistributedConfigError(
                f"world_size must be the number of processes (>= 1), got {self.world_size}")
        if not 0 <= self.world_rank < self.world_size:
            raise DistributedConfigError(
                f"world_rank must be in 0..{self.world_size - 1} for world_size "
                f"{self.world_size}, got {self.world_rank}")
        if self.local_rank is not None and self.local_rank < 0:
            raise DistributedConfigError(f"local_rank must be >= 0, got {self.local_rank}")

    @property
    def is_master(self) -> bool:
        """Rank 0 runs the search; the others serve evaluations."""
        return self.world_rank == 0

    @property
    def device_index(self) -> int:
        """This process's index on its machine (the CUDA device it uses)."""
        return self.world_rank if self.local_rank is None else self.local_rank

    @classmethod
    def from_environment(cls, environ: Optional[Mapping[str, str]] = None, *,
                         master_ip: Optional[str] = None,
                         port: Union[int, str, None] = None) -> "DistributedConfig":
        """The configuration a launcher (torchrun, MPI, Slurm) put in the environment.

        ``master_ip`` and ``port`` override ``MASTER_ADDR`` and ``MASTER_PORT``.
        """
        env = os.environ if environ is None else environ
        for launcher, size_name, rank_name, local_names in LAUNCHERS:
            if size_name not in env and rank_name not in env:
                continue
            missing = [name for name in (size_name, rank_name) if name not in env]
            if missing:
                raise DistributedConfigError(
                    f"{launcher} variables are incomplete: {', '.join(missing)} is not set")
            local = next((env[name] for name in local_names if name in env), None)
            master_ip = master_ip if master_ip is not None else env.get("MASTER_ADDR")
            port = port if port is not None else env.get("MASTER_PORT")
            if master_ip is None or port is None:
                raise DistributedConfigError(
                    f"{launcher} gives the world size and rank but not where rank 0 listens: "
                    f"set MASTER_ADDR (rank 0's host) and MASTER_PORT (a free port) on every "
                    f"process, or pass master_ip= and port=")
            return cls(master_ip, port, _integer(env[size_name], size_name),
                       _integer(env[rank_name], rank_name),
                       None if local is None else _integer(local, "local rank"))
        raise DistributedConfigError(
            "no distributed configuration: pass DistributedConfig(master_ip, port, world_size, "
            "world_rank), or launch with torchrun (torchrun --nproc-per-node N script.py), "
            "mpirun or srun (with MASTER_ADDR and MASTER_PORT set)")


def _integer(value, name: str) -> int:
    if isinstance(value, bool):
        raise DistributedConfigError(f"{name} must be an integer, got {value!r}")
    try:
        number = int(str(value).strip()) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise DistributedConfigError(f"{name} must be an integer, got {value!r}") from None
    if isinstance(value, float) and value != number:
        raise DistributedConfigError(f"{name} must be an integer, got {value!r}")
    return number
