"""DARTS (chapter 8): the supernet, genotypes and their extraction.

* :mod:`~nord.neural_nets.darts_ops`: the eight operations and the cell preprocessing;
* :mod:`~nord.darts.supernet`: :class:`MixedOp`, :class:`SearchCell`, :class:`SuperNet`;
* :mod:`~nord.darts.genotype`: :class:`Genotype` (JSON, untrusted input checked) and
  :func:`extract_genotype` (pure, numpy only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nord import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".genotype": ["Genotype", "extract_genotype", "random_genotype", "PRIMITIVES"],
    ".supernet": ["MixedOp", "SearchCell", "SuperNet"],
    "nord.neural_nets.darts_ops": ["make_operation"],
})
if TYPE_CHECKING:
    from nord.darts.genotype import PRIMITIVES, Genotype, extract_genotype, random_genotype
    from nord.neural_nets.darts_ops import make_operation
    from nord.darts.supernet import MixedOp, SearchCell, SuperNet

__all__ = ["Genotype", "extract_genotype", "random_genotype", "PRIMITIVES", "MixedOp",
           "SearchCell", "SuperNet", "make_operation"]
