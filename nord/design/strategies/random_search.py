"""Random search: every candidate an independent uniform sample of the space."""

from __future__ import annotations

from typing import Any

from nord.design.strategies.base import Strategy

__all__ = ["RandomSearch"]


class RandomSearch(Strategy):
    """Samples ``space`` uniformly (as ``space.sample`` defines it), forever.

    >>> from nord.design.spaces import get_space
    >>> search = RandomSearch(get_space('nasbench201'), rng=0)
    >>> candidate = search.ask(); search.tell(candidate.id, 91.2)
    """

    name = "random"

    def _propose(self) -> Any:
        return self.space.sample(self.rng)

    def _learn(self, candidate_id: int, architecture: Any, fitness: float) -> None:
        pass
