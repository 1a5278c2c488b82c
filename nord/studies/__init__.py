"""Studies of chapters 4-5 (``nord study ...``): enumerated trials run as runs.

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
