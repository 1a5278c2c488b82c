"""Studies of chapters 4-5 and 7 (``nord study ...``): enumerated trials run as runs.

A study goes through the same run loop, store and executors as a search (see
:mod:`nord.studies.base`), so it resumes after a kill and runs on several
workers; its analysis writes tables and figures into its run folder.
Register another with :func:`register_study`.
"""

from __future__ import annotations

from nord.registry import Registry

__all__ = ["STUDIES", "register_study"]

#: study name -> Study class (``"module:Class"`` entries import on first use)
STUDIES = Registry("study", how_to_add="register one with nord.studies.register_study()")


def register_study(name: str, study_class=None, *, summary: str = "", replace: bool = False):
    """Register a :class:`~nord.studies.base.Study` subclass (or ``"module:Class"``)."""
    return STUDIES.register(name, study_class, summary=summary, replace=replace)


register_study("montecarlo", "nord.studies.montecarlo:MonteCarloStudy",
               summary="a GA on noisy Rastrigin meshes (tables 4.3, 5.4; Figures 4.6, 5.4)")
register_study("ranking", "nord.studies.ranking:RankingStudy",
               summary="DeepNEAT architectures x 7 optimizers x epoch budgets: Kendall-tau "
               "heatmaps (Figures 4.4/4.5, 5.5-5.8; tables 4.2, 5.3)")
register_study("nasbench101-epochs", "nord.studies.nasbench101_epochs:NASBench101EpochsStudy",
               summary="4/12/36-epoch rankings of NAS-Bench-101 cells against 108 epochs "
               "(§5.2.2; Figures 5.9-5.11)")
register_study("fidelity", "nord.studies.fidelity:FidelityStudy",
               summary="recommend the cheapest training budget whose ranking agrees with "
               "the largest (tau >= 0.75); nord search --fidelity-from uses it")
register_study("fmnist-architectures",
               "nord.studies.fmnist_architectures:FashionMNISTArchitecturesStudy",
               summary="train random 8-node NAS-Bench-101-op architectures on Fashion-MNIST: "
               "the graph-f-mnist datasets of chapter 7 (§7.3.4)")
register_study("predictors", "nord.studies.predictors:PredictorsStudy",
               summary="EGraph against ReNAS on NAS-Bench-101 (table 7.4); with --search, a "
               "gcn search's best genomes and Figures 7.3-7.8 (table 7.3)")
