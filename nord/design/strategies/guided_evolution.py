"""Predictor-guided regularized evolution (chapter 7's purpose: predictors inside a search).

Regularized evolution (listing 3.6) with one change: each selected parent
proposes ``candidates`` distinct mutated children, a predictor trained on
everything evaluated so far scores them, and only the most promising child is
evaluated for real. After each result the predictor is refitted, warm-started
from its last fit, so a refit costs a few optimisation steps.

* The first ``population_size`` candidates are random samples, as in plain
  evolution (a predictor needs data before it can guide).
* No architecture is proposed twice (compared by the space's encoding): a
  child already evaluated or in flight is not a candidate; children are drawn
  until ``candidates`` distinct new ones are found or ``max_tries`` draws
  were made.
* ``predictor``: ``"gcn"`` (the plain-torch :class:`~nord.design.predictors.
  surrogate.GraphSurrogate`, the default), ``"random"`` (the unguided
  baseline: the chosen child is then a uniformly random one of them, which is
  plain evolution in distribution), or a
  :class:`~nord.design.predictors.surrogate.Surrogate` object (an oracle, a
  user's model). ``predictor_options`` go to the named surrogate.
* Works on every space with a graph form (``space.to_graph``): NAS-Bench-101,
  NAS-Bench-201, the chapter-6 space.

The state (population, every evaluated architecture and its fitness, the
predictor's weights and optimiser moments) is saved with the run, so a resumed
search continues exactly. ``predictor_seconds`` counts the time spent fitting
and scoring (reported per query by the benchmark).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

import numpy as np

from nord.design.strategies.base import unseen_sample
from nord.design.strategies.evolution import Individual, RegularizedEvolution
from nord.errors import GraphDatasetError, StrategySettingsError

__all__ = ["GuidedEvolution"]


class GuidedEvolution(RegularizedEvolution):
    """Regularized evolution whose children are picked by a predictor.

    >>> from nord.design.spaces import get_space
    >>> search = GuidedEvolution(get_space('nasbench201'), population_size=5, rng=0)
    >>> c = search.ask(); search.tell(c.id, 85.0)
    """

    name = "guided-evolution"

    def __init__(self, space, population_size: int = 20, sample_size: int = 5,
                 candidates: int = 16, predictor: Any = "gcn",
                 predictor_options: Optional[dict] = None, refit_every: int = 1,
                 max_tries: int = 200, rng: Any = None) -> None:
        super().__init__(space, population_size=population_size, sample_size=sample_size,
                         rng=rng)
        if int(candidates) < 1:
            raise StrategySettingsError(f"candidates (children scored per parent) must be at "
                                        f"least 1, got {candidates}")
        if int(refit_every) < 1:
            raise StrategySettingsError(f"refit_every must be at least 1, got {refit_every}")
        if int(max_tries) < int(candidates):
            raise StrategySettingsError(f"max_tries ({max_tries}) must be at least candidates "
                                        f"({candidates})")
        try:
            space.to_graph(space.sample(np.random.default_rng(0)))
        except GraphDatasetError as error:
            raise StrategySettingsError(f"guided-evolution ranks candidates by their graphs, "
                                        f"and this space has no graph form: {error}") from error
        self.candidates = int(candidates)
        self.refit_every = int(refit_every)
        self.max_tries = int(max_tries)
        self.predictor = self._make_predictor(predictor, dict(predictor_options or {}))
        self.evaluated: List[tuple] = []   # (architecture, fitness), in the order told
        self.seen: set = set()             # keys of everything asked
        self.graphs: Dict[str, Any] = {}   # key -> graph (a cache, rebuilt on resume)
        self.predictor_seconds = 0.0
        self.unfitted = 0                  # results told since the last fit

    def _make_predictor(self, predictor, options: dict):
        from nord.design.predictors.surrogate import Surrogate, make_surrogate
        if isinstance(predictor, Surrogate):
            if options:
                raise StrategySettingsError("predictor_options apply to a named predictor; "
                                            "configure a Surrogate object before passing it")
            return predictor
        if not isinstance(predictor, str):
            raise StrategySettingsError(f"predictor is 'gcn', 'random' or a Surrogate object, "
                                        f"got {predictor!r}")
        seed = int(self.rng.integers(2 ** 31))
        try:
            return make_surrogate(predictor, self.space.graph_vocabulary, seed=seed,
                                  options=options)
        except TypeError as error:
            raise StrategySettingsError(f"predictor_options {sorted(options)} do not fit the "
                                        f"{predictor!r} predictor: {error}") from error

    def _key(self, architecture) -> str:
        return self.space.identity(architecture)

    def _graph(self, architecture, key: Optional[str] = None):
        key = self._key(architecture) if key is None else key
        graph = self.graphs.get(key)
        if graph is None:
            graph = self.graphs[key] = self.space.to_graph(architecture)
        return graph

    # ---------------------------------------------------------------- asking
    def _propose(self) -> Optional[Any]:
        if self.random_asked < self.population_size or not self.population:
            if self.random_asked < self.population_size:
                self.random_asked += 1
            return self._remember(self._unseen_sample())
        parent = self.select_parent().architecture
        children, keys = [], []
        for _ in range(self.max_tries):
            if len(children) >= self.candidates:
                break
            child = self.space.mutate(parent, self.rng)
            key = self._key(child)
            if key not in self.seen and key not in keys:
                children.append(child)
                keys.append(key)
        if not children:  # every child of this parent was seen: explore elsewhere
            return self._remember(self._unseen_sample())
        if len(children) == 1:
            return self._remember(children[0], keys[0])
        start = time.perf_counter()
        scores = np.asarray(self.predictor.score([self._graph(c, k)
                                                  for c, k in zip(children, keys)]))
        self.predictor_seconds += time.perf_counter() - start
        best = int(np.argmax(scores))  # the first of equal scores
        return self._remember(children[best], keys[best])

    def _unseen_sample(self):
        return unseen_sample(self.space, self.rng, self.seen, self._key, self.max_tries)

    def _remember(self, architecture, key: Optional[str] = None):
        self.seen.add(self._key(architecture) if key is None else key)
        return architecture

    # --------------------------------------------------------------- telling
    def _learn(self, candidate_id: int, architecture: Any, fitness: float) -> None:
        super()._learn(candidate_id, architecture, fitness)
        self.evaluated.append((architecture, fitness))
        self.unfitted += 1
        if self.unfitted >= self.refit_every:
            self._fit()

    def _fit(self) -> None:
        start = time.perf_counter()
        self.predictor.fit([self._graph(a) for a, _ in self.evaluated],
                           [f for _, f in self.evaluated])
        self.predictor_seconds += time.perf_counter() - start
        self.unfitted = 0

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        state = super().state_dict()
        encode = self.space.encode
        state.update(evaluated=[(encode(a), f) for a, f in self.evaluated],
                     seen=sorted(self.seen), unfitted=self.unfitted,
                     predictor=self.predictor.state_dict(),
                     predictor_seconds=self.predictor_seconds)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        decode = self.space.decode
        self.evaluated = [(decode(a), float(f)) for a, f in state["evaluated"]]
        self.seen = set(state["seen"])
        self.unfitted = int(state["unfitted"])
        self.predictor.load_state_dict(state["predictor"])
        self.predictor_seconds = float(state.get("predictor_seconds", 0.0))

    @property
    def history(self) -> List[Individual]:
        """Every evaluated architecture, in the order the results came back."""
        return [Individual(i, a, f) for i, (a, f) in enumerate(self.evaluated)]
