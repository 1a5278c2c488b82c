"""Performance predictors (chapter 7): architectures as graphs, datasets of evaluated
architectures, and the models that rank them.

* :mod:`~nord.design.predictors.graphs`: :class:`ArchitectureGraph`, batching;
* :mod:`~nord.design.predictors.datasets`: :class:`ArchitectureDataset`, the
  isomorphism-disjoint train/test split, the ternary pair labels of §7.3.3.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nord import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".graphs": ["ArchitectureGraph", "GraphBatch", "graph_from_descriptor"],
    ".datasets": ["ArchitectureDataset", "pair_labels", "ranking_pairs", "BETTER", "EQUAL",
                  "WORSE"],
})
if TYPE_CHECKING:
    from nord.design.predictors.datasets import (BETTER, EQUAL, WORSE, ArchitectureDataset,
                                                 pair_labels, ranking_pairs)
    from nord.design.predictors.graphs import (ArchitectureGraph, GraphBatch,
                                               graph_from_descriptor)

__all__ = ["ArchitectureGraph", "GraphBatch", "graph_from_descriptor", "ArchitectureDataset",
           "pair_labels", "ranking_pairs", "BETTER", "EQUAL", "WORSE"]
