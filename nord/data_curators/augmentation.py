"""Batched, reproducible data augmentation on image tensors ``(N, C, H, W)``.

Every function works on a whole batch at once (masks and broadcasting, no loop
over samples) and draws every random number from the ``torch.Generator`` it is
given, so the same generator state gives the same output. The numbers are
drawn on the generator's device and moved to the images' device, so a CPU
generator serves images on a GPU too, and gives the same augmentation there as
on the CPU. Inputs are never modified in place.

Example::

    generator = torch.Generator().manual_seed(0)
    augmented = FASHION_MNIST_AUGMENTATION(images, generator)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple, Union

import torch

from nord.errors import SettingsError

__all__ = ["random_horizontal_flip", "random_erasing", "Augmentation",
           "FASHION_MNIST_AUGMENTATION"]

_ERASING_ATTEMPTS = 10
ErasingValue = Union[float, Sequence[float], str]


def _check_images(images: torch.Tensor, what: str) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise SettingsError(f"{what} needs a batch of images (N, C, H, W), got {shape}")


def _check_probability(p: float, name: str = "p") -> None:
    if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise SettingsError(f"{name} must be a probability in [0, 1], got {p!r}")


def _check_range(bounds: Tuple[float, float], name: str, low: float,
                 high: float = math.inf) -> None:
    if (len(bounds) != 2 or not low <= bounds[0] <= bounds[1] <= high):
        raise SettingsError(f"{name} must be (min, max) with {low} <= min <= max <= {high}, "
                            f"got {tuple(bounds)!r}")


def _uniform(shape, generator: torch.Generator, device) -> torch.Tensor:
    """Uniform draws from ``generator`` (on its own device), placed on ``device``."""
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def random_horizontal_flip(images: torch.Tensor, generator: torch.Generator,
                           p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p`` (a new tensor)."""
    _check_images(images, "random_horizontal_flip")
    _check_probability(p)
    flip = _uniform(images.shape[0], generator, images.device) < p
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)


def _erasing_boxes(n: int, height: int, width: int, generator: torch.Generator,
                   scale, ratio, device):
    """Per-sample ``(top, left, h, w, found)`` like torchvision's RandomErasing.

    Up to ten attempts per sample, all drawn at once; the first attempt whose
    rounded rectangle fits strictly inside the image and covers a fraction of the
    area within ``scale`` is used. ``found`` is False where no attempt fits.
    """
    area = height * width
    draws = _uniform((4, n, _ERASING_ATTEMPTS), generator, device)
    target = area * (scale[0] + (scale[1] - scale[0]) * draws[0])
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_low + (log_high - log_low) * draws[1])
    h = torch.round(torch.sqrt(target * aspect)).long()
    w = torch.round(torch.sqrt(target / aspect)).long()
    covered = (h * w).double()
    fits = ((h < height) & (w < width) & (h > 0) & (w > 0)
            & (covered >= scale[0] * area - 1e-9) & (covered <= scale[1] * area + 1e-9))
    first = fits.long().argmax(dim=1, keepdim=True)
    h, w = h.gather(1, first).squeeze(1), w.gather(1, first).squeeze(1)
    top = (draws[2].gather(1, first).squeeze(1) * (height - h + 1)).long()
    left = (draws[3].gather(1, first).squeeze(1) * (width - w + 1)).long()
    return top, left, h, w, fits.any(dim=1)


def _fill(images: torch.Tensor, value: ErasingValue, generator) -> torch.Tensor:
    if isinstance(value, str):
        if value != "random":
            raise SettingsError(f"value must be a number, one per channel, or 'random', "
                                f"got {value!r}")
        noise = torch.randn(images.shape, generator=generator, device=generator.device,
                            dtype=images.dtype if images.is_floating_point() else torch.float32)
        return noise.to(device=images.device, dtype=images.dtype)
    fill = torch.as_tensor(value, dtype=images.dtype, device=images.device)
    if fill.dim() == 1 and fill.numel() == images.shape[1]:
        return fill.view(1, -1, 1, 1)
    if fill.dim() != 0:
        raise SettingsError(f"value must be one number or {images.shape[1]} (one per "
                            f"channel), got {value!r}")
    return fill


def random_erasing(images: torch.Tensor, generator: torch.Generator, p: float = 0.5,
                   scale: Tuple[float, float] = (0.02, 0.33),
                   ratio: Tuple[float, float] = (0.3, 3.3),
                   value: ErasingValue = 0.0) -> torch.Tensor:
    """With probability ``p`` per image, fill one random rectangle with ``value``.

    The rectangle covers a fraction of the image area drawn uniformly from
    ``scale``, with an aspect ratio (height / width) drawn log-uniformly from
    ``ratio``, and lies inside the image (as torchvision's ``RandomErasing``).
    ``value`` is a number, one number per channel, or ``'random'`` (standard
    normal noise). Returns a new tensor.
    """
    _check_images(images, "random_erasing")
    _check_probability(p)
    _check_range(scale, "scale", 0.0, 1.0)
    _check_range(ratio, "ratio", 1e-12)
    n, _, height, width = images.shape
    apply = _uniform(n, generator, images.device) < p
    top, left, h, w, found = _erasing_boxes(n, height, width, generator, scale, ratio,
                                            images.device)
    rows = torch.arange(height, device=images.device).view(1, -1)
    cols = torch.arange(width, device=images.device).view(1, -1)
    in_rows = (rows >= top.view(-1, 1)) & (rows < (top + h).view(-1, 1))
    in_cols = (cols >= left.view(-1, 1)) & (cols < (left + w).view(-1, 1))
    box = in_rows.unsqueeze(2) & in_cols.unsqueeze(1) & (apply & found).view(-1, 1, 1)
    return torch.where(box.unsqueeze(1), _fill(images, value, generator), images)


@dataclass(frozen=True)
class Augmentation:
    """A flip-then-erase augmentation policy, applied to a batch.

    Example::

        policy = Augmentation(flip_p=0.5, erasing_p=0.5)
        out = policy(images, torch.Generator().manual_seed(1))
    """

    flip_p: float = 0.5
    erasing_p: float = 0.5
    erasing_scale: Tuple[float, float] = (0.02, 0.33)
    erasing_ratio: Tuple[float, float] = (0.3, 3.3)
    erasing_value: ErasingValue = 0.0

    def __post_init__(self):
        _check_probability(self.flip_p, "flip_p")
        _check_probability(self.erasing_p, "erasing_p")
        _check_range(self.erasing_scale, "erasing_scale", 0.0, 1.0)
        _check_range(self.erasing_ratio, "erasing_ratio", 1e-12)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """The augmented batch (a new tensor); ``images`` is left unchanged."""
        _check_images(images, "Augmentation")
        out = images
        if self.flip_p > 0:
            out = random_horizontal_flip(out, generator, self.flip_p)
        if self.erasing_p > 0:
            out = random_erasing(out, generator, self.erasing_p, self.erasing_scale,
                                 self.erasing_ratio, self.erasing_value)
        return out if out is not images else images.clone()


# The thesis's standard Fashion-MNIST augmentation (chapters 6 and 8):
# random horizontal flips and random erasing.
FASHION_MNIST_AUGMENTATION = Augmentation(flip_p=0.5, erasing_p=0.5)
