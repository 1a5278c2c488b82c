"""A DARTS search's settings (no torch needed: the command line reads them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Mapping

from nord.errors import SettingsError

__all__ = ["DartsSettings", "THESIS_SEARCH"]

#: table 8.1's search phase
THESIS_SEARCH = {"share": 1.0, "channels": 16, "cells": 8, "epochs": 50, "batch_size": 64}


@dataclass(frozen=True)
class DartsSettings:
    """A DARTS search's settings (CPU defaults; the thesis's in :data:`THESIS_SEARCH`)."""

    dataset: str = "fashion-mnist"
    share: float = 0.05
    channels: int = 8
    cells: int = 5
    steps: int = 4
    multiplier: int = 4
    epochs: int = 2
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3
    grad_clip: float = 5.0
    #: epochs that train the weights only (the architecture weights keep still), so
    #: that convolutions are trained before they compete with the parameter-free
    #: operations (PC-DARTS's remedy for the collapse onto pooling; thesis: 0)
    warmup_epochs: int = 0
    augment: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("channels", "cells", "steps", "multiplier", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SettingsError(f"{name} must be a whole number >= 1, got {value!r}")
        if not 0.0 < float(self.share) <= 1.0:
            raise SettingsError(f"share (of the training set the search uses) must be in "
                                f"(0, 1], got {self.share!r}")
        for name in ("lr", "arch_lr"):
            if not float(getattr(self, name)) > 0:
                raise SettingsError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0 <= float(self.lr_min) <= float(self.lr):
            raise SettingsError(f"lr_min must be in [0, lr={self.lr}], got {self.lr_min!r}")
        for name in ("momentum", "weight_decay", "arch_weight_decay", "grad_clip"):
            if float(getattr(self, name)) < 0:
                raise SettingsError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        warmup = self.warmup_epochs
        if isinstance(warmup, bool) or not isinstance(warmup, int) \
                or not 0 <= warmup < self.epochs:
            raise SettingsError(f"warmup_epochs must be a whole number in 0..{self.epochs - 1} "
                                f"(the architecture weights need at least one of the "
                                f"{self.epochs} epochs), got {warmup!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise SettingsError(f"seed must be a whole number >= 0, got {self.seed!r}")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "DartsSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(f"unknown DARTS settings {unknown}; known: {sorted(known)}")
        return cls(**dict(values))
