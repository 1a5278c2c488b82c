"""Layer blocks of the genome search spaces (thesis chapters 4–6).

Each genome node compiles to one of these modules, so a descriptor keeps one
node per gene and stays JSON-ready (the classes are found again by their
import path, and importing this module registers their shape rules):

* :class:`RemNetConv`: a chapter-6 convolution, ``Conv2d`` (no padding,
  stride 1) → ``ReLU6`` → ``BatchNorm2d`` → ``Dropout(0.1)`` (§6.3.3);
* :class:`RemNetDenseHead`: FC1 (a quarter of the input features) → ReLU →
  FC2 (half of FC1) → ReLU; the compiler's default head adds the third,
  class-sized layer (§6.3.3). :func:`remnet_head` is the whole three-layer
  head as a dataset ``dense_head`` factory;
* :class:`DeepNEATBlock`: a chapter-4/5 block, ``Conv2d`` (same padding) →
  ReLU → ``Dropout(d)`` → :class:`~nord.neural_nets.layers.WeightScaling`
  ``(S)`` → optional 2×2 max-pool (§4.2.1, Figure 5.1).

Pooling nodes of chapter 6 are plain ``nn.MaxPool2d`` / ``nn.AvgPool2d``
(stride = kernel, no padding).
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

import torch.nn as nn

from nord.errors import SettingsError
from nord.neural_nets.layers import WeightScaling, register_layer
from nord.neural_nets.tensor_shape import Shape

__all__ = ["RemNetConv", "RemNetDenseHead", "remnet_head", "remnet_head_sizes",
           "DeepNEATBlock"]


# ---------------------------------------------------------------- chapter 6
def _valid_conv_shape(params: Dict[str, Any], in_shape: Shape) -> Shape:
    k = int(params["kernel_size"])
    return Shape(int(params["out_channels"]), tuple(n - k + 1 for n in in_shape.spatial))


def _kernel_min_spatial(params: Dict[str, Any], rank: int) -> Tuple[int, ...]:
    return (int(params["kernel_size"]),) * rank


@register_layer(output_shape=_valid_conv_shape, input_param="in_channels",
                channel_param="out_channels", min_spatial=_kernel_min_spatial, ranks=[2])
class RemNetConv(nn.Sequential):
    """Chapter-6 convolution node: Conv2d (no padding) → ReLU6 → BatchNorm → Dropout.

    No padding, stride 1: a ``k×k`` kernel shrinks each side by ``k - 1``
    (this reproduces REMNet-128's 791,338 parameters, thesis §6.4.2).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 dropout: float = 0.1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)
        self.act = nn.ReLU6()
        self.norm = nn.BatchNorm2d(out_channels)
        self.drop = nn.Dropout(dropout)


def remnet_head_sizes(in_features: int) -> Tuple[int, int]:
    """(FC1, FC2) of the §6.3.3 head: a quarter of the input, then half of that (at least 1)."""
    fc1 = max(1, int(in_features) // 4)
    return fc1, max(1, fc1 // 2)


def _dense_head_shape(params: Dict[str, Any], in_shape: Shape) -> Shape:
    return Shape(remnet_head_sizes(params["in_features"])[1], ())


@register_layer(output_shape=_dense_head_shape, input_param="in_features", ranks=[0])
class RemNetDenseHead(nn.Sequential):
    """FC1 (in/4) → ReLU → FC2 (FC1/2) → ReLU: the §6.3.3 head before its class layer."""

    def __init__(self, in_features: int):
        super().__init__()
        fc1, fc2 = remnet_head_sizes(in_features)
        self.fc1 = nn.Linear(in_features, fc1)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(fc1, fc2)
        self.act2 = nn.ReLU()


def remnet_head(in_features: int, num_classes: int) -> nn.Module:
    """The complete §6.3.3 head (FC1, FC2, classes), usable as a dataset's ``dense_head``.

    Needed only for descriptors built with ``RemNetSpace(head=False)``; by
    default the first two layers are part of the descriptor.
    """
    return nn.Sequential(RemNetDenseHead(in_features),
                         nn.Linear(remnet_head_sizes(in_features)[1], num_classes))


# ---------------------------------------------------------------- chapters 4-5
def _block_shape(params: Dict[str, Any], in_shape: Shape) -> Shape:
    spatial = in_shape.spatial
    if params.get("max_pool"):
        spatial = tuple(n // 2 for n in spatial)
    return Shape(int(params["out_channels"]), spatial)


def _block_min_spatial(params: Dict[str, Any], rank: int) -> Tuple[int, ...]:
    return (2 if params.get("max_pool") else 1,) * rank


@register_layer(output_shape=_block_shape, input_param="in_channels",
                channel_param="out_channels", min_spatial=_block_min_spatial, ranks=[2])
class DeepNEATBlock(nn.Sequential):
    """DeepNEAT block: Conv2d (same padding) → ReLU → Dropout(d) → scale S → [MaxPool 2×2]."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 dropout: float = 0.0, scale: float = 1.0, max_pool: bool = False):
        if int(kernel_size) % 2 != 1:
            raise SettingsError(f"DeepNEATBlock keeps the spatial size, so its kernel must be "
                                f"odd (DeepNEAT uses 1 or 3), got kernel_size={kernel_size}")
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                              padding=int(kernel_size) // 2)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout)
        self.scale = WeightScaling(scale)
        if max_pool:
            self.pool = nn.MaxPool2d(2)
