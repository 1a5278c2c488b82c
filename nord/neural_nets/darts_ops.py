"""The eight DARTS operations (thesis §2.2.3 and chapter 8) and the cell preprocessing.

Every operation maps ``[B, C, H, W]`` to ``[B, C, H / s, W / s]`` for stride
``s`` in {1, 2} (the edges leaving a reduction cell's inputs have stride 2):

=================  ================================================================
``none``           zeros (the "no edge" choice; strided: zeros of the reduced size)
``skip_connect``   identity; strided, a factorized reduction (two 1×1 convolutions
                   of stride 2, the second shifted by one pixel, concatenated, BN)
``max_pool_3x3``   3×3 max pooling, padding 1
``avg_pool_3x3``   3×3 average pooling, padding 1, padding not counted
``sep_conv_3x3``   separable convolution applied twice (ReLU, depthwise k×k,
``sep_conv_5x5``   pointwise 1×1, BN; the first one carries the stride)
``dil_conv_3x3``   ReLU, depthwise k×k with dilation 2, pointwise 1×1, BN
``dil_conv_5x5``
=================  ================================================================

``affine`` is False in the supernet (its BN layers carry no weights, as in
DARTS, so the architecture weights alone scale the operations) and True in a
final network.
"""

from __future__ import annotations

from typing import Callable, Dict

import torch
import torch.nn as nn

from nord.darts.genotype import PRIMITIVES
from nord.errors import GenotypeError, SettingsError, ShapeError
from nord.neural_nets.tensor_shape import Shape

__all__ = ["PRIMITIVES", "OPERATIONS", "make_operation", "ReLUConvBN", "SepConv", "DilConv",
           "FactorizedReduce", "Zero", "Identity", "CELL_OPS", "register_darts_ops",
           "check_stride", "strided_shape"]


class ReLUConvBN(nn.Sequential):
    """ReLU, a k×k convolution, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool = True) -> None:
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding,
                                   bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


class DilConv(nn.Sequential):
    """ReLU, a depthwise k×k convolution with dilation, a pointwise 1×1, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 dilation: int, affine: bool = True) -> None:
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_in, kernel, stride=stride, padding=padding,
                                   dilation=dilation, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False),
                         nn.BatchNorm2d(c_out, affine=affine))


class SepConv(nn.Sequential):
    """Two dilation-1 :class:`DilConv` blocks; the first carries the stride."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int,
                 affine: bool = True) -> None:
        super().__init__(DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
                         DilConv(c_in, c_out, kernel, 1, padding, 1, affine))


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Zero(nn.Module):
    """Zeros of the output size (every ``stride``-th pixel of the input, times 0)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = int(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


class FactorizedReduce(nn.Module):
    """Halve height and width: ReLU, two 1×1 stride-2 convolutions (the second
    one offset by a pixel) of ``c_out / 2`` channels each, concatenated, BN."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise SettingsError(f"a factorized reduction needs an even channel count, got "
                                f"{c_out}")
        self.c_in, self.c_out, self.affine = int(c_in), int(c_out), bool(affine)
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))

    def __repr__(self) -> str:  # one line: an export's model.py rebuilds the layer from it
        return f"{type(self).__name__}({self.c_in}, {self.c_out}, affine={self.affine})"


#: name -> factory(channels, stride, affine)
OPERATIONS: Dict[str, Callable[[int, int, bool], nn.Module]] = {
    "none": lambda c, stride, affine: Zero(stride),
    "skip_connect": lambda c, stride, affine: (Identity() if stride == 1
                                               else FactorizedReduce(c, c, affine)),
    "max_pool_3x3": lambda c, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda c, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1,
                                                           count_include_pad=False),
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, c, 3, stride, 1, affine),
    "sep_conv_5x5": lambda c, stride, affine: SepConv(c, c, 5, stride, 2, affine),
    "dil_conv_3x3": lambda c, stride, affine: DilConv(c, c, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine: DilConv(c, c, 5, stride, 4, 2, affine),
}


def make_operation(name: str, channels: int, stride: int = 1, affine: bool = True) -> nn.Module:
    """The operation ``name`` on ``channels`` channels with ``stride`` 1 or 2."""
    if name not in OPERATIONS:
        raise GenotypeError(f"unknown DARTS operation {name!r}; the operations are "
                            f"{', '.join(PRIMITIVES)}")
    if stride not in (1, 2):
        raise SettingsError(f"a DARTS operation has stride 1 or 2, got {stride!r}")
    return OPERATIONS[name](int(channels), int(stride), bool(affine))


# ---------------------------------------------------------------- registry rules
#: the op strings a final DARTS network's descriptor uses beyond NORD's built-in
#: ``none``, ``skip_connect``, ``avg_pool_3x3`` and ``identity`` (which take
#: ``stride`` too): the convolutions, max pooling, the cell preprocessing
#: (``darts_preprocess``: ``out_channels``, ``reduce``) and the cell output
#: (``concat``: its inputs concatenated along channels)
CELL_OPS = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "max_pool_3x3",
            "darts_preprocess", "concat")


def check_stride(params) -> int:
    """``params['stride']`` (default 1), which must be 1 or 2."""
    stride = params.get("stride", 1)
    if isinstance(stride, bool) or stride not in (1, 2):
        raise ShapeError(f"stride must be 1 or 2 (2 halves height and width), got {stride!r}")
    return int(stride)


def strided_shape(params, in_shape: Shape) -> Shape:
    """Shape rule of the strided cell ops: ``out_channels`` (default: the input's) at
    ``1 / stride`` of the extent, rounded up (what padding k // 2 gives)."""
    stride = check_stride(params)
    return Shape(int(params.get("out_channels", in_shape.channels)),
                 tuple((n + stride - 1) // stride for n in in_shape.spatial))


def _preprocess_shape(params, in_shape: Shape) -> Shape:
    out = params["out_channels"]
    if isinstance(out, bool) or not isinstance(out, int) or out < 1:
        raise ShapeError(f"out_channels must be a positive whole number, got {out!r}")
    reduce = bool(params.get("reduce", False))
    spatial = tuple((n + 1) // 2 for n in in_shape.spatial) if reduce else in_shape.spatial
    return Shape(out, spatial)


def _operation_factory(name: str):
    def factory(in_shape: Shape, stride: int = 1, affine: bool = True) -> nn.Module:
        return make_operation(name, in_shape.channels, stride, affine)
    factory.__doc__ = f"DARTS {name} (same channels; stride 1 or 2)"
    return factory


def _preprocess_factory(in_shape: Shape, out_channels: int, reduce: bool = False,
                        affine: bool = True) -> nn.Module:
    """a DARTS cell input: 1x1 ReLU-conv-BN, or a factorized reduction (reduce=True)"""
    if reduce:
        return FactorizedReduce(in_shape.channels, int(out_channels), affine)
    return ReLUConvBN(in_shape.channels, int(out_channels), 1, 1, 0, affine)


def _concat_factory(in_shape: Shape) -> nn.Module:
    """its inputs concatenated along channels (a DARTS cell's output)"""
    return Identity()


def register_darts_ops(registry, register_op) -> None:
    """Register :data:`CELL_OPS` into ``registry`` (``register_op`` is
    :func:`nord.neural_nets.layers.register_op`; the layer registry calls this)."""
    for name in CELL_OPS[:5]:
        register_op(name, _operation_factory(name), output_shape=strided_shape,
                    ranks=[2], channel_param=None, registry=registry)
    register_op("darts_preprocess", _preprocess_factory, output_shape=_preprocess_shape,
                ranks=[2], registry=registry)
    register_op("concat", _concat_factory, output_shape=lambda params, shape: shape,
                channel_param=None, merge="concat", registry=registry)
