"""Search spaces: ``get_space(name, **settings)``; see :class:`SearchSpace`.

Add a space with :func:`register_space` (a class or a ``"module:Class"``
string); ``nord search --space`` then accepts it and lists it in ``--help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nord import lazy_exports
from nord.errors import SettingsError
from nord.registry import Registry

# SearchSpace (and numpy with it) loads on first use, so `nord --help` stays light.
__getattr__, __dir__ = lazy_exports(__name__, {".base": ["SearchSpace"]})
if TYPE_CHECKING:
    from nord.design.spaces.base import SearchSpace

__all__ = ["SearchSpace", "get_space", "register_space", "SPACES"]

#: search space name -> space class (``"module:Class"`` entries import on first use)
SPACES = Registry("search space", how_to_add="register one with "
                  "nord.design.spaces.register_space()")


def register_space(name: str, space_class=None, *, summary: str = "", replace: bool = False):
    """Register a :class:`SearchSpace` subclass (or a ``"module:Class"`` string)
    as ``name``; without ``space_class``, a class decorator."""
    return SPACES.register(name, space_class, summary=summary, replace=replace)


register_space("nasbench201", "nord.design.spaces.nasbench201:NASBench201Space",
               summary="NAS-Bench-201 cells, scored from the benchmark table")
register_space("nasbench101", "nord.design.spaces.nasbench101:NASBench101Space",
               summary="NAS-Bench-101 cells, scored from the benchmark table")
register_space("remnet", "nord.design.spaces.remnet:RemNetSpace",
               summary="chapter-6 REMNet cells (table 6.1), trained")
register_space("deepneat", "nord.design.spaces.deepneat:DeepNEATSpace",
               summary="DeepNEAT block genomes (section 4.2.1), trained")
register_space("gcn", "nord.design.spaces.gcn:GCNSpace",
               summary="chapter-7 GraphSAGE ranker genomes (table 7.1), trained as predictors")


def get_space(name: str, **settings) -> SearchSpace:
    """The search space registered as ``name``, built with ``settings``; an
    option the space does not take raises :class:`~nord.errors.SettingsError`."""
    import inspect
    space_class = SPACES[name]
    parameters = inspect.signature(space_class).parameters
    accepted = [p for p in parameters if p != "self"]
    open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    unknown = [] if open_ended else sorted(set(settings) - set(accepted))
    if unknown:
        flags = ", ".join("--" + key.replace("_", "-") for key in unknown)
        raise SettingsError(f"the {name} space has no {', '.join(unknown)} option ({flags}); "
                            f"it takes: {', '.join(accepted) or 'no options'}")
    return space_class(**settings)
