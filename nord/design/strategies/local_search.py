"""Best-improvement local search with random restarts: a strong, cheap baseline.

From a random architecture, the whole neighbourhood is evaluated; the search
moves to the best neighbour if it is better than where it stands, and starts
again from a new random architecture when none is (a local optimum). The
neighbourhood (:func:`neighbourhood`) is the space's
``neighbours(architecture)`` when it has one; for NAS-Bench-201 it is every
cell one edge-op change away (6 edges x 4 other ops: 24); otherwise
``neighbours`` distinct mutations of it.

No architecture is proposed twice (compared by the space's encoding), so every
evaluation is new. The neighbours of one step may all be in flight at once;
a restart waits for its start to come back. All randomness comes from the
strategy's generator, and its state (the point it stands on, the neighbours
still to ask, the results of this step, what it has seen) is saved with the
run, so a resumed search continues exactly.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from nord.design.strategies.base import Strategy, unseen_sample
from nord.errors import StrategySettingsError

__all__ = ["LocalSearch", "neighbourhood"]


def neighbourhood(space, architecture) -> Optional[List[Any]]:
    """Every architecture one step from ``architecture``, or ``None`` when the space
    has no enumerable neighbourhood (then a search draws distinct mutations)."""
    if hasattr(space, "neighbours"):
        return list(space.neighbours(architecture))
    from nord.design.spaces.nasbench201 import NASBench201Space
    if isinstance(space, NASBench201Space):
        from nord.neural_nets.benchmarks.nasbench201 import arch_to_ops, ops_to_arch
        ops = list(arch_to_ops(architecture))
        return [ops_to_arch(ops[:edge] + [other] + ops[edge + 1:])
                for edge, op in enumerate(ops) for other in space.ops if other != op]
    return None


class LocalSearch(Strategy):
    """Best-improvement local search; see the module docstring.

    >>> from nord.design.spaces import get_space
    >>> search = LocalSearch(get_space('nasbench201'), rng=0)
    >>> c = search.ask(); search.tell(c.id, 85.0)
    """

    name = "local-search"

    def __init__(self, space, rng: Any = None, neighbours: int = 24,
                 max_tries: int = 1000) -> None:
        super().__init__(space, rng)
        if int(neighbours) < 1:
            raise StrategySettingsError(f"neighbours must be at least 1, got {neighbours}")
        self.neighbours = int(neighbours)
        self.max_tries = int(max_tries)
        self.current: Optional[tuple] = None      # (architecture, fitness) stood on
        self.queue: List[Any] = []                # neighbours still to ask
        self.step: Dict[int, tuple] = {}          # id -> (architecture, fitness) of this step
        self.start_id: Optional[int] = None       # the restart in flight
        self.seen: set = set()
        self.restarts = 0

    def _key(self, architecture) -> str:
        return self.space.identity(architecture)

    # ---------------------------------------------------------------- asking
    def _propose(self) -> Optional[Any]:
        if self.current is None:
            if self.start_id is not None:
                return None  # the start is out: wait for it
            architecture = self._unseen_sample()
            self.start_id = self.next_id
            self.restarts += 1
        elif self.queue:
            architecture = self.queue.pop(0)
        else:
            return None  # this step's neighbours are out: wait for them
        self.seen.add(self._key(architecture))
        return architecture

    def _unseen_sample(self):
        return unseen_sample(self.space, self.rng, self.seen, self._key, self.max_tries)

    def _neighbourhood(self, architecture) -> List[Any]:
        candidates = neighbourhood(self.space, architecture)
        if candidates is None:
            candidates, keys = [], set()
            for _ in range(self.max_tries):
                if len(candidates) >= self.neighbours:
                    break
                child = self.space.mutate(architecture, self.rng)
                key = self._key(child)
                if key not in keys:
                    keys.add(key)
                    candidates.append(child)
        return [c for c in candidates if self._key(c) not in self.seen]

    # --------------------------------------------------------------- telling
    def _learn(self, candidate_id: int, architecture: Any, fitness: float) -> None:
        if candidate_id == self.start_id:
            self.start_id = None
            self._stand_on(architecture, fitness)
            return
        self.step[candidate_id] = (architecture, fitness)
        if not self.queue and not self.pending:
            self._move()

    def _stand_on(self, architecture, fitness: float) -> None:
        self.current = (architecture, fitness)
        self.step = {}
        self.queue = self._neighbourhood(architecture)
        if not self.queue:
            self.current = None  # nothing new around it: restart

    def _move(self) -> None:
        """The step is complete: move to its best result if it improves, else restart."""
        best = max(sorted(self.step.items()), key=lambda item: item[1][1], default=None)
        if best is not None and best[1][1] > self.current[1]:
            self._stand_on(*best[1])
        else:
            self.current, self.step = None, {}

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        state = super().state_dict()
        encode = self.space.encode
        state.update(
            current=None if self.current is None else [encode(self.current[0]), self.current[1]],
            queue=[encode(a) for a in self.queue],
            step=[(i, encode(a), f) for i, (a, f) in self.step.items()],
            start_id=self.start_id, seen=sorted(self.seen), restarts=self.restarts)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        decode = self.space.decode
        current = state["current"]
        self.current = None if current is None else (decode(current[0]), float(current[1]))
        self.queue = [decode(a) for a in state["queue"]]
        self.step = {int(i): (decode(a), float(f)) for i, a, f in state["step"]}
        self.start_id = None if state["start_id"] is None else int(state["start_id"])
        self.seen = set(state["seen"])
        self.restarts = int(state["restarts"])
