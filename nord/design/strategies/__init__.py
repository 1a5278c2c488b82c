"""Search strategies (ask/tell): ``make_strategy(name, space, rng, **settings)``.

Add a strategy with :func:`register_strategy` (a :class:`Strategy` subclass
taking ``(space, rng=..., **settings)``, or a ``"module:Class"`` string);
``nord search --strategy`` then accepts it and lists it in ``--help``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nord import lazy_exports
from nord.registry import Registry

# The base classes (and numpy with them) load on first use, so `nord --help` stays light.
__getattr__, __dir__ = lazy_exports(__name__, {".base": ["Candidate", "Strategy", "StrategyError"]})
if TYPE_CHECKING:
    from nord.design.strategies.base import Candidate, Strategy, StrategyError

__all__ = ["Candidate", "Strategy", "StrategyError", "make_strategy", "register_strategy",
           "STRATEGIES"]

#: strategy name -> strategy class (``"module:Class"`` entries import on first use)
STRATEGIES = Registry("strategy", how_to_add="register one with "
                      "nord.design.strategies.register_strategy()")


def register_strategy(name: str, strategy_class=None, *, summary: str = "",
                      replace: bool = False):
    """Register a :class:`Strategy` subclass (or a ``"module:Class"`` string) as
    ``name``; without ``strategy_class``, a class decorator."""
    return STRATEGIES.register(name, strategy_class, summary=summary, replace=replace)


register_strategy("evolution", "nord.design.strategies.evolution:RegularizedEvolution",
                  summary="regularized (aging) evolution, listing 3.6")
register_strategy("random", "nord.design.strategies.random_search:RandomSearch",
                  summary="uniform random sampling of the space")
register_strategy("local-search", "nord.design.strategies.local_search:LocalSearch",
                  summary="best-improvement local search with random restarts")
register_strategy("guided-evolution",
                  "nord.design.strategies.guided_evolution:GuidedEvolution",
                  summary="regularized evolution whose children a predictor picks (chapter 7)")
register_strategy("rl", "nord.design.strategies.reinforcement:DQNAgent",
                  summary="double DQN agent building cells (nasbench101 only)")


def make_strategy(name: str, space, rng=None, **settings) -> Strategy:
    """The strategy registered as ``name`` over ``space``."""
    return STRATEGIES[name](space, rng=rng, **settings)
