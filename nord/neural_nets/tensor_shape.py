"""The static shape of one sample as it flows through a network."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Tuple

__all__ = ["Shape"]


@dataclass(frozen=True)
class Shape:
    """Channels and spatial extent of one sample (the batch dimension is left out).

    ``spatial`` is ``()`` for flat feature vectors, ``(length,)`` for 1-D
    signals (time series) and ``(height, width)`` for images.
    """

    channels: int
    spatial: Tuple[int, ...] = ()

    @property
    def rank(self) -> int:
        """Number of spatial dimensions (0, 1 or 2)."""
        return len(self.spatial)

    @property
    def numel(self) -> int:
        """Values per sample: channels times every spatial extent."""
        return self.channels * prod(self.spatial)

    def flattened(self) -> "Shape":
        """The shape after ``torch.flatten(x, 1)``."""
        return Shape(self.numel, ())

    def with_spatial(self, spatial: Tuple[int, ...]) -> "Shape":
        return Shape(self.channels, tuple(spatial))

    def with_channels(self, channels: int) -> "Shape":
        return Shape(channels, self.spatial)

    def __str__(self) -> str:
        return "x".join(str(v) for v in (self.channels, *self.spatial))
