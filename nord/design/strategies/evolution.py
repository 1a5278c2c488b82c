"""Regularized evolution (Real et al., 2019; thesis §2.2.1, listing 3.6).

The population holds the ``population_size`` most recent results. Until it is
full, candidates are random samples of the space. Then each candidate is a
mutated copy of the best of ``sample_size`` members drawn at random (with
replacement, as listing 3.6 draws them), and each new result pushes the oldest
member out: age, not fitness, decides who leaves. ``sample_size=1`` picks the
parent at random, the random-search baseline of thesis §6.4.1.

With several evaluations in flight (thesis §6.3.2), ``synchronous=False``
(default) proposes a child whenever asked, from the population as it stands;
``synchronous=True`` works in cycles of ``cycle_size`` children all bred from
the same population, and proposes nothing more until the whole cycle returned;
the cycle then joins the population in the order it was asked (the ``W``
oldest leave), so the search does not depend on the order results arrive in:
the same seed gives the same search with any number of workers. With one
evaluation at a time the two modes are the same algorithm.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Optional

import numpy as np

from nord.design.strategies.base import Strategy
from nord.errors import StrategySettingsError

__all__ = ["RegularizedEvolution", "Individual"]


@dataclass(frozen=True)
class Individual:
    id: int
    architecture: Any
    fitness: float


class RegularizedEvolution(Strategy):
    """Aging evolution over a search space with ``sample``/``mutate``.

    >>> from nord.design.spaces import get_space
    >>> rea = RegularizedEvolution(get_space('nasbench201'), population_size=10,
    ...                            sample_size=3, rng=0)
    >>> c = rea.ask(); rea.tell(c.id, 85.0)
    """

    name = "evolution"

    def __init__(self, space, population_size: int = 10, sample_size: int = 3, rng: Any = None,
                 synchronous: bool = False, cycle_size: int = 1) -> None:
        super().__init__(space, rng)
        if int(population_size) < 1:
            raise StrategySettingsError(f"population_size must be at least 1, got "
                                        f"{population_size}")
        if not 1 <= int(sample_size) <= int(population_size):
            raise StrategySettingsError(f"sample_size must be between 1 and the population size "
                                        f"({population_size}), got {sample_size}")
        if int(cycle_size) < 1:
            raise StrategySettingsError(f"cycle_size must be at least 1, got {cycle_size}")
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.synchronous = bool(synchronous)
        self.cycle_size = int(cycle_size)
        self.population: Deque[Individual] = deque()
        self.random_asked = 0
        self.cycle_asked = 0
        self.arrived: list = []  # synchronous mode: results of the cycle in flight
        self.cycle_target = self.population_size  # the first cycle: the initial population

    # ---------------------------------------------------------------- asking
    def _propose(self) -> Optional[Any]:
        if self.synchronous:
            return self._propose_in_cycles()
        if self.random_asked < self.population_size:
            self.random_asked += 1
            return self.space.sample(self.rng)
        if not self.population:  # every initial result still in flight
            return self.space.sample(self.rng)
        return self.space.mutate(self.select_parent().architecture, self.rng)

    def _propose_in_cycles(self) -> Optional[Any]:
        """The first cycle is the random initial population, then cycles of children."""
        if self.cycle_asked >= self.cycle_target:
            if self.pending or self.arrived:
                return None  # the cycle is out: wait for all of it
            self.cycle_asked, self.cycle_target = 0, self.cycle_size
        self.cycle_asked += 1
        if self.random_asked < self.population_size:
            self.random_asked += 1
            return self.space.sample(self.rng)
        return self.space.mutate(self.select_parent().architecture, self.rng)

    def select_parent(self) -> Individual:
        """Best of ``sample_size`` members drawn with replacement (first wins ties)."""
        drawn = self.rng.choice(len(self.population), size=self.sample_size)
        sample = [self.population[i] for i in drawn]
        return sample[int(np.argmax([member.fitness for member in sample]))]

    # --------------------------------------------------------------- telling
    def _learn(self, candidate_id: int, architecture: Any, fitness: float) -> None:
        arrived = Individual(candidate_id, architecture, fitness)
        if not self.synchronous:
            self._join(arrived)
            return
        # a cycle joins the population all at once, in the order it was asked, so
        # the order results happen to arrive in cannot change the search
        self.arrived.append(arrived)
        if not self.pending and self.cycle_asked >= self.cycle_target:
            for member in sorted(self.arrived, key=lambda m: m.id):
                self._join(member)
            self.arrived = []

    def _join(self, member: Individual) -> None:
        self.population.append(member)
        while len(self.population) > self.population_size:
            self.population.popleft()

    @property
    def best(self) -> Optional[Individual]:
        """The fittest member of the current population."""
        return max(self.population, key=lambda m: m.fitness, default=None)

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(population=[(m.id, self.space.encode(m.architecture), m.fitness)
                                 for m in self.population],
                     random_asked=self.random_asked, cycle_asked=self.cycle_asked,
                     cycle_target=self.cycle_target,
                     arrived=[(m.id, self.space.encode(m.architecture), m.fitness)
                              for m in self.arrived])
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.population = deque(Individual(int(i), self.space.decode(a), float(f))
                                for i, a, f in state["population"])
        self.random_asked = int(state["random_asked"])
        self.arrived = [Individual(int(i), self.space.decode(a), float(f))
                        for i, a, f in state.get("arrived", [])]
        self.cycle_target = int(state.get("cycle_target", self.population_size))
        self.cycle_asked = int(state["cycle_asked"])
