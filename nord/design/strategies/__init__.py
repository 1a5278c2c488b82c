"""Search strategies (ask/tell): ``make_strategy(name, space, rng, **settings)``."""

from __future__ import annotations

from nord.design.strategies.base import Candidate, Strategy, StrategyError
from nord.errors import NordError

__all__ = ["Candidate", "Strategy", "StrategyError", "make_strategy", "STRATEGIES"]

STRATEGIES = {
    "random": "nord.design.strategies.random_search:RandomSearch",
    "evolution": "nord.design.strategies.evolution:RegularizedEvolution",
    "rl": "nord.design.strategies.reinforcement:DQNAgent",
}


def make_strategy(name: str, space, rng=None, **settings) -> Strategy:
    """The strategy registered as ``name`` over ``space``."""
    import importlib
    try:
        module, cls = STRATEGIES[name].split(":")
    except KeyError:
        raise NordError(f"unknown strategy {name!r}; available: {sorted(STRATEGIES)}") from None
    return getattr(importlib.import_module(module), cls)(space, rng=rng, **settings)
