"""The ask/tell contract every search strategy follows.

A strategy proposes :class:`Candidate` objects with :meth:`Strategy.ask` and
learns from their fitness with :meth:`Strategy.tell`. Results may return in
any order and several candidates may be in flight at once, so a strategy
keeps its own record of what it has asked and not yet heard back about.
``state_dict()`` / ``load_state_dict()`` capture everything, random generator
included, so a run resumes exactly where it stopped.

A run saves the state only every so many steps and, on resume, replays the
asks and tells since: a strategy must therefore answer the same calls the same
way given its state (all its randomness from ``self.rng`` or from the state),
and an ``ask`` that returns ``None`` must change nothing.
"""

from __future__ import annotations

import abc
import copy
from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from nord.errors import StrategyError

__all__ = ["Candidate", "Strategy", "StrategyError", "make_rng", "rng_state", "set_rng_state",
           "unseen_sample"]


@dataclass(frozen=True)
class Candidate:
    """An architecture a strategy wants evaluated; ``id`` is unique per run."""

    id: int
    architecture: Any


def make_rng(rng: Any = None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator, a seed or ``None`` (seed 0)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        rng = 0
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise StrategyError(f"rng must be a numpy Generator or an integer seed, got {rng!r}")


def rng_state(rng: np.random.Generator) -> dict:
    return copy.deepcopy(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = copy.deepcopy(state)


def unseen_sample(space, rng: np.random.Generator, seen, key, max_tries: int):
    """A sample of ``space`` whose ``key(architecture)`` is not in ``seen``, drawing up
    to ``max_tries`` more times; the last draw when the space seems exhausted."""
    architecture = space.sample(rng)
    for _ in range(max_tries):
        if key(architecture) not in seen:
            break
        architecture = space.sample(rng)
    return architecture


class Strategy(abc.ABC):
    """Base class: subclasses implement :meth:`_propose` and :meth:`_learn`.

    The base class numbers candidates, remembers the ones in flight and checks
    that every ``tell`` answers an ``ask``.
    """

    #: how many candidates may usefully be in flight at once (None: unlimited)
    max_in_flight: Optional[int] = None

    def __init__(self, space, rng: Any = None) -> None:
        self.space = space
        self.rng = make_rng(rng)
        self.next_id = 0
        self.pending: Dict[int, Any] = {}
        self.told = 0

    # ------------------------------------------------------------- contract
    def ask(self) -> Optional[Candidate]:
        """The next candidate, or ``None`` if results must come back first."""
        if self.max_in_flight is not None and len(self.pending) >= self.max_in_flight:
            return None
        architecture = self._propose()
        if architecture is None:
            return None
        candidate = Candidate(self.next_id, architecture)
        self.pending[candidate.id] = architecture
        self.next_id += 1
        return candidate

    def tell(self, candidate_id: int, fitness: float) -> None:
        """Report ``fitness`` (higher is better; failures as 0) of an asked candidate."""
        if candidate_id not in self.pending:
            raise StrategyError(
                f"candidate {candidate_id} is not awaiting a result (in flight: "
                f"{sorted(self.pending)[:10]}); tell each asked candidate exactly once")
        fitness = float(fitness)
        if not np.isfinite(fitness):
            raise StrategyError(f"fitness of candidate {candidate_id} is {fitness}; "
                                f"report failed evaluations as 0")
        architecture = self.pending.pop(candidate_id)
        self._learn(candidate_id, architecture, fitness)
        self.told += 1

    @abc.abstractmethod
    def _propose(self) -> Any:
        """A new architecture (or ``None`` to wait for results)."""

    @abc.abstractmethod
    def _learn(self, candidate_id: int, architecture: Any, fitness: float) -> None:
        """Take in one result."""

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """Everything needed to continue: counters, pending candidates, RNG."""
        return {"next_id": self.next_id, "told": self.told,
                "pending": [(i, self.space.encode(a)) for i, a in self.pending.items()],
                "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict) -> None:
        self.next_id = int(state["next_id"])
        self.told = int(state["told"])
        self.pending = {int(i): self.space.decode(a) for i, a in state["pending"]}
        set_rng_state(self.rng, state["rng"])
