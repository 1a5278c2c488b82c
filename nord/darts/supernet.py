"""The DARTS supernet (thesis §2.2.3, equations 2.2–2.3; chapter 8).

A :class:`MixedOp` is one edge of a cell: every operation of
:data:`~nord.darts.genotype.PRIMITIVES` applied to the edge's input and summed,
weighted by the softmax of the edge's architecture weights (equation 2.2). A
:class:`SearchCell` has two inputs (the two previous cells, each brought to
``C`` channels by a 1×1 ReLU-conv-BN, or by a factorized reduction when the
cell before the previous one was larger) and ``steps`` nodes, each the sum of
the MixedOps from every earlier node; its output is the concatenation of the
``multiplier`` last nodes. Reduction cells (at 1/3 and 2/3 of the depth)
apply stride 2 on the edges leaving their inputs and double ``C``.

:class:`SuperNet` shares one architecture-weight matrix ``[edges, operations]``
among all normal cells (``alpha_normal``) and one among the reduction cells
(``alpha_reduce``); :meth:`SuperNet.weights` and
:meth:`SuperNet.arch_parameters` split the parameters for the bilevel
optimisation, and :meth:`SuperNet.genotype` extracts the discrete cells.
Weights and architecture weights are drawn from ``seed`` in a forked
generator, so building a supernet never moves torch's global random state.
"""

from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from nord.darts.genotype import PRIMITIVES, Genotype, edge_count, extract_genotype
from nord.neural_nets.darts_ops import FactorizedReduce, ReLUConvBN, Zero, make_operation
from nord.errors import SettingsError

__all__ = ["MixedOp", "SearchCell", "SuperNet", "reduction_layers"]


def reduction_layers(cells: int) -> tuple:
    """Indices of the reduction cells: at one and two thirds of the depth."""
    return (cells // 3, 2 * cells // 3)


class MixedOp(nn.Module):
    """Every operation on one edge, summed with the edge's weights (equation 2.2).
    Pooling is followed by a weightless BN, as in DARTS."""

    def __init__(self, channels: int, stride: int, primitives: Sequence[str] = PRIMITIVES):
        super().__init__()
        self.primitives = tuple(primitives)
        ops = []
        for name in self.primitives:
            op = make_operation(name, channels, stride, affine=False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
            ops.append(op)
        self.ops = nn.ModuleList(ops)
        # the zero operation adds nothing (its weight's gradient comes through the
        # softmax's normalisation all the same), so it is not computed
        self.computed = tuple(i for i, op in enumerate(ops) if not isinstance(op, Zero))

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if not self.computed:
            return weights[0] * self.ops[0](x)
        first, *rest = self.computed
        out = weights[first] * self.ops[first](x)
        for i in rest:
            out = out + weights[i] * self.ops[i](x)
        return out


class SearchCell(nn.Module):
    """A cell of MixedOps (see the module docstring)."""

    def __init__(self, steps: int, multiplier: int, c_prev_prev: int, c_prev: int,
                 channels: int, reduction: bool, reduction_prev: bool,
                 primitives: Sequence[str] = PRIMITIVES) -> None:
        super().__init__()
        self.reduction, self.steps, self.multiplier = reduction, int(steps), int(multiplier)
        self.preprocess0 = (FactorizedReduce(c_prev_prev, channels, affine=False)
                            if reduction_prev else
                            ReLUConvBN(c_prev_prev, channels, 1, 1, 0, affine=False))
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            MixedOp(channels, 2 if reduction and j < 2 else 1, primitives)
            for i in range(self.steps) for j in range(2 + i))

    def forward(self, s0, s1, weights):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            node = self.edges[offset](states[0], weights[offset])
            for j in range(1, len(states)):
                node = node + self.edges[offset + j](states[j], weights[offset + j])
            offset += len(states)
            states.append(node)
        return torch.cat(states[-self.multiplier:], dim=1)


class SuperNet(nn.Module):
    """The DARTS search network.

    ``channels`` C (table 8.1: 16), ``cells`` (8), ``steps`` nodes per cell
    (4), ``multiplier`` nodes concatenated (4), a stem of ``stem_multiplier * C``
    channels (a 3×3 convolution and BN on ``in_channels`` input channels),
    global average pooling and a linear classifier of ``num_classes`` outputs.
    """

    def __init__(self, channels: int = 16, num_classes: int = 10, cells: int = 8, *,
                 steps: int = 4, multiplier: int = 4, stem_multiplier: int = 3,
                 in_channels: int = 1, primitives: Sequence[str] = PRIMITIVES,
                 seed: int = 0) -> None:
        super().__init__()
        for name, value, least in (("channels", channels, 2), ("num_classes", num_classes, 1),
                                   ("cells", cells, 1), ("steps", steps, 1),
                                   ("in_channels", in_channels, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise SettingsError(f"{name} must be a whole number >= {least}, got {value!r}")
        if channels % 2:
            raise SettingsError(f"channels must be even (reductions halve and concatenate), "
                                f"got {channels}")
        if not 1 <= multiplier <= steps:
            raise SettingsError(f"multiplier (nodes concatenated) must be in 1..steps={steps}, "
                                f"got {multiplier}")
        self.primitives = tuple(primitives)
        if "none" not in self.primitives or len(set(self.primitives)) != len(self.primitives):
            raise SettingsError(f"the primitives must be distinct and include 'none', got "
                                f"{list(self.primitives)}")
        self.settings = {"channels": channels, "num_classes": num_classes, "cells": cells,
                         "steps": steps, "multiplier": multiplier,
                         "stem_multiplier": stem_multiplier, "in_channels": in_channels,
                         "primitives": list(self.primitives)}
        self.steps, self.multiplier = steps, multiplier
        reductions = reduction_layers(cells)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            c_curr = stem_multiplier * channels
            self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(c_curr))
            c_prev_prev, c_prev, c_curr = c_curr, c_curr, channels
            self.cells = nn.ModuleList()
            reduction_prev = False
            for i in range(cells):
                reduction = i in reductions
                if reduction:
                    c_curr *= 2
                self.cells.append(SearchCell(steps, multiplier, c_prev_prev, c_prev, c_curr,
                                             reduction, reduction_prev, self.primitives))
                reduction_prev = reduction
                c_prev_prev, c_prev = c_prev, multiplier * c_curr
            self.global_pooling = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(c_prev, num_classes)
            shape = (edge_count(steps), len(self.primitives))
            self.alpha_normal = nn.Parameter(1e-3 * torch.randn(shape))
            self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(shape))

    def arch_parameters(self) -> List[nn.Parameter]:
        """The architecture weights (the upper level of the bilevel problem)."""
        return [self.alpha_normal, self.alpha_reduce]

    def weights(self) -> List[nn.Parameter]:
        """Every other parameter (the lower level)."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        normal = F.softmax(self.alpha_normal, dim=-1)
        reduce = F.softmax(self.alpha_reduce, dim=-1)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, reduce if cell.reduction else normal)
        return self.classifier(torch.flatten(self.global_pooling(s1), 1))

    def genotype(self) -> Genotype:
        """The discrete cells the architecture weights select (DARTS's rule)."""
        return extract_genotype(self.alpha_normal.detach().cpu().numpy(),
                                self.alpha_reduce.detach().cpu().numpy(), self.steps,
                                self.primitives, multiplier=self.multiplier)
