"""Performance predictors (chapter 7): architectures as graphs, datasets of evaluated
architectures, and the models that rank them.

* :mod:`~nord.design.predictors.graphs`: :class:`ArchitectureGraph`, batching;
* :mod:`~nord.design.predictors.datasets`: :class:`ArchitectureDataset`, the
  isomorphism-disjoint train/test split, the ternary pair labels of §7.3.3;
* :mod:`~nord.design.predictors.egraph`: the siamese GraphSAGE rankers of table 7.1
  (:class:`GCNArchitecture`, :class:`SiameseGCN`; needs ``nord[gcn]``);
* :mod:`~nord.design.predictors.training`: training and scoring a ranker;
* :mod:`~nord.design.predictors.metrics`: tau and top-50 % tau of a ranking;
* :mod:`~nord.design.predictors.renas`: ReNAS, the baseline of table 7.4;
* :mod:`~nord.design.predictors.surrogate`: the cheap surrogates a guided search uses;
* :mod:`~nord.design.predictors.export`: saving a trained ranker and loading it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nord import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    ".graphs": ["ArchitectureGraph", "GraphBatch", "graph_from_descriptor"],
    ".datasets": ["ArchitectureDataset", "pair_labels", "ranking_pairs", "BETTER", "EQUAL",
                  "WORSE"],
    ".egraph": ["GCNArchitecture", "SAGELayer", "SiameseGCN", "egraph_architecture"],
    ".training": ["train_ranker", "predict_scores", "evaluate_ranker", "TrainingHistory"],
    ".metrics": ["RankingQuality", "ranking_quality"],
    ".surrogate": ["Surrogate", "GraphSurrogate", "OracleSurrogate", "RandomSurrogate",
                   "make_surrogate"],
    ".renas": ["ReNAS", "renas_tensor", "train_renas", "renas_scores", "renas_quality"],
    ".export": ["export_ranker", "load_ranker"],
})
if TYPE_CHECKING:
    from nord.design.predictors.datasets import (BETTER, EQUAL, WORSE, ArchitectureDataset,
                                                 pair_labels, ranking_pairs)
    from nord.design.predictors.egraph import (GCNArchitecture, SAGELayer, SiameseGCN,
                                               egraph_architecture)
    from nord.design.predictors.metrics import RankingQuality, ranking_quality
    from nord.design.predictors.surrogate import (GraphSurrogate, OracleSurrogate,
                                                  RandomSurrogate, Surrogate, make_surrogate)
    from nord.design.predictors.training import (TrainingHistory, evaluate_ranker,
                                                 predict_scores, train_ranker)
    from nord.design.predictors.graphs import (ArchitectureGraph, GraphBatch,
                                               graph_from_descriptor)
    from nord.design.predictors.renas import (ReNAS, renas_quality, renas_scores,
                                              renas_tensor, train_renas)
    from nord.design.predictors.export import export_ranker, load_ranker

__all__ = ["ArchitectureGraph", "GraphBatch", "graph_from_descriptor", "ArchitectureDataset",
           "pair_labels", "ranking_pairs", "BETTER", "EQUAL", "WORSE", "ReNAS", "renas_tensor",
           "train_renas", "renas_scores", "renas_quality", "GCNArchitecture", "SAGELayer",
           "SiameseGCN", "egraph_architecture", "train_ranker", "predict_scores",
           "evaluate_ranker", "TrainingHistory", "RankingQuality", "ranking_quality",
           "Surrogate", "GraphSurrogate", "OracleSurrogate", "RandomSurrogate", "make_surrogate",
           "export_ranker", "load_ranker"]
