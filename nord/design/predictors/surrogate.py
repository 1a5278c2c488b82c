"""Surrogates: cheap predictors that rank candidates inside a search (§7.1).

A :class:`Surrogate` learns from the architectures a search has evaluated and
scores the ones it might evaluate next; only the order of the scores matters.
Its contract is three calls:

* ``fit(graphs, targets)``: (re)train on everything evaluated so far. A fit
  continues from the last one (warm start), so refitting after each new
  result costs a few optimisation steps, not a training from scratch;
* ``score(graphs)``: a numpy array, higher meaning more promising;
* ``state_dict()`` / ``load_state_dict(state)``: plain data (numpy arrays,
  numbers, strings), so a search that holds a surrogate saves and resumes it
  with the rest of its state, and a resumed surrogate answers as the original.

Graphs are :class:`~nord.design.predictors.graphs.ArchitectureGraph` objects
(a space's ``to_graph``), their node labels from the space's
``graph_vocabulary``. Three surrogates:

* :class:`GraphSurrogate`: a small graph network in plain torch (no
  torch-geometric): one-hot node labels, ``layers`` rounds of messages along
  the edges in both directions (separate weights for predecessors,
  successors and the node itself), a masked mean and sum of the nodes, a
  two-layer head. ``ensemble`` independently initialised members are trained
  side by side as one batched network and their scores averaged. The loss
  is ``"regression"`` (mean squared error on targets standardised by the
  training set's mean and deviation) or ``"ranking"`` (logistic loss on the
  score difference of every ordered pair of training targets). Each graph's
  one-hot codes and adjacency are computed once and kept (building a
  :class:`~nord.design.predictors.graphs.GraphBatch` costs about 0.3 ms a
  graph, far more than the network), and the network runs on one thread:
  at this size torch's intra-op threads cost more than they give;
* :class:`OracleSurrogate`: wraps a function giving each graph's true value
  (tests, and the upper bound of what a predictor can do for a search);
* :class:`RandomSurrogate`: seeded uniform scores (the lower bound: a search
  guided by it is the unguided search).

All randomness is seeded by the caller: ``seed`` sets the initial weights
(a torch generator of its own, the global one untouched) and the random
scores.
"""

from __future__ import annotations

import abc
import math
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from nord.errors import PredictorError
from nord.neural_nets.torch_threads import torch_threads

__all__ = ["Surrogate", "GraphSurrogate", "OracleSurrogate", "RandomSurrogate",
           "make_surrogate", "SURROGATES"]

LOSSES = ("regression", "ranking")


class Surrogate(abc.ABC):
    """What a guided search needs of a predictor (see the module docstring)."""

    name = ""

    @abc.abstractmethod
    def fit(self, graphs: Sequence[Any], targets: Sequence[float]) -> None:
        """Train on ``graphs`` and their ``targets`` (warm-started from the last fit)."""

    @abc.abstractmethod
    def score(self, graphs: Sequence[Any]) -> np.ndarray:
        """One score per graph, higher meaning more promising."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def _check_targets(graphs, targets) -> np.ndarray:
    targets = np.asarray(targets, dtype=np.float64)
    if targets.ndim != 1 or len(targets) != len(graphs):
        raise PredictorError(f"fit needs one target per graph; got {len(graphs)} graphs and "
                             f"targets of shape {targets.shape}")
    if not np.all(np.isfinite(targets)):
        raise PredictorError("fit targets must be finite numbers; report failed "
                             "evaluations with a finite value (0)")
    return targets


class OracleSurrogate(Surrogate):
    """Scores each graph by ``function(graph)``, its true value; ``fit`` learns nothing."""

    name = "oracle"

    def __init__(self, function: Callable[[Any], float]) -> None:
        if not callable(function):
            raise PredictorError(f"the oracle needs a function graph -> value, got "
                                 f"{function!r}")
        self.function = function

    def fit(self, graphs, targets) -> None:
        _check_targets(graphs, targets)

    def score(self, graphs) -> np.ndarray:
        return np.array([float(self.function(g)) for g in graphs], dtype=np.float64)


class RandomSurrogate(Surrogate):
    """Uniform random scores from a seeded generator (its state saved and restored)."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(int(seed))

    def fit(self, graphs, targets) -> None:
        _check_targets(graphs, targets)

    def score(self, graphs) -> np.ndarray:
        return self.rng.random(len(graphs))

    def state_dict(self) -> dict:
        import copy
        return {"rng": copy.deepcopy(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict) -> None:
        import copy
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])


class GraphSurrogate(Surrogate):
    """A small ensemble of graph networks trained on the evaluated graphs.

    ``initial_steps`` full-batch Adam steps train the first fit, ``steps`` each
    later (warm-started) one. ``max_nodes`` (default: the largest graph seen)
    only matters for padding.

    >>> from nord.design.spaces import get_space
    >>> space = get_space('nasbench201'); rng = np.random.default_rng(0)
    >>> graphs = [space.to_graph(space.sample(rng)) for _ in range(20)]
    >>> model = GraphSurrogate(space.graph_vocabulary, seed=0)
    >>> model.fit(graphs, np.arange(20.0)); model.score(graphs[:3]).shape
    (3,)
    """

    name = "gcn"

    def __init__(self, vocabulary: Sequence[str], hidden: int = 16, layers: int = 2,
                 ensemble: int = 2, loss: str = "regression", lr: float = 0.01,
                 weight_decay: float = 1e-4, initial_steps: int = 100, steps: int = 5,
                 seed: int = 0) -> None:
        import torch
        vocabulary = tuple(str(v) for v in vocabulary)
        if not vocabulary or len(set(vocabulary)) != len(vocabulary):
            raise PredictorError(f"the vocabulary must list distinct node labels, got "
                                 f"{list(vocabulary)}")
        for name, value in (("hidden", hidden), ("ensemble", ensemble),
                            ("initial_steps", initial_steps)):
            if int(value) < 1:
                raise PredictorError(f"{name} must be at least 1, got {value}")
        if int(layers) < 0 or int(steps) < 0:
            raise PredictorError(f"layers and steps must be 0 or more, got {layers}, {steps}")
        if loss not in LOSSES:
            raise PredictorError(f"unknown loss {loss!r}; choose one of {LOSSES}")
        if not (float(lr) > 0 and float(weight_decay) >= 0):
            raise PredictorError(f"lr must be positive and weight_decay 0 or more, got "
                                 f"{lr}, {weight_decay}")
        self.vocabulary = vocabulary
        self.index = {label: i for i, label in enumerate(vocabulary)}
        self.hidden, self.layers, self.ensemble = int(hidden), int(layers), int(ensemble)
        self.loss, self.lr, self.weight_decay = loss, float(lr), float(weight_decay)
        self.initial_steps, self.steps = int(initial_steps), int(steps)
        self.fits = 0
        self.mean, self.std = 0.0, 1.0
        self.encoded: Dict[Any, tuple] = {}
        generator = torch.Generator().manual_seed(int(seed))
        m, h, f = self.ensemble, self.hidden, len(vocabulary)

        def weight(*shape):
            fan_in = shape[-2]
            return torch.nn.Parameter(torch.randn(m, *shape, generator=generator)
                                      / math.sqrt(fan_in))

        self.parameters = {"embed": weight(f, h)}
        for i in range(self.layers):
            for part in ("self", "pred", "succ"):
                self.parameters[f"{part}{i}"] = weight(h, h)
            self.parameters[f"bias{i}"] = torch.nn.Parameter(torch.zeros(m, 1, 1, h))
        self.parameters["head"] = weight(2 * h, h)
        self.parameters["head_bias"] = torch.nn.Parameter(torch.zeros(m, 1, h))
        self.parameters["out"] = weight(h, 1)
        self.optimizer = torch.optim.AdamW(list(self.parameters.values()), lr=self.lr,
                                           weight_decay=self.weight_decay, foreach=True)

    # ------------------------------------------------------------- encoding
    def _encode(self, graph) -> tuple:
        cached = self.encoded.get(graph)
        if cached is None:
            unknown = sorted({label for label in graph.labels if label not in self.index})
            if unknown:
                raise PredictorError(f"node labels {unknown} are not in the predictor's "
                                     f"vocabulary {list(self.vocabulary)}; build the graphs "
                                     f"and the predictor from the same search space")
            codes = np.array([self.index[label] for label in graph.labels], dtype=np.int64)
            cached = (codes, np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2))
            self.encoded[graph] = cached
        return cached

    def _tensors(self, graphs):
        """``(x [B, N, F], adjacency [B, N, N], mask [B, N, 1])`` of the graphs."""
        import torch
        if not len(graphs):
            raise PredictorError("a predictor needs at least one graph")
        encoded = [self._encode(g) for g in graphs]
        n = max(len(codes) for codes, _ in encoded)
        b = len(encoded)
        x = np.zeros((b, n, len(self.vocabulary)), dtype=np.float32)
        adjacency = np.zeros((b, n, n), dtype=np.float32)
        mask = np.zeros((b, n, 1), dtype=np.float32)
        for i, (codes, edges) in enumerate(encoded):
            x[i, np.arange(len(codes)), codes] = 1.0
            mask[i, :len(codes)] = 1.0
            if len(edges):
                adjacency[i, edges[:, 0], edges[:, 1]] = 1.0
        return torch.from_numpy(x), torch.from_numpy(adjacency), torch.from_numpy(mask)

    def _forward(self, x, adjacency, mask):
        """``[ensemble, B]`` outputs (standardised units)."""
        import torch
        p = self.parameters
        h = torch.relu(torch.einsum("bnf,mfh->mbnh", x, p["embed"])) * mask
        incoming = adjacency.transpose(1, 2)  # row j: j's predecessors
        for i in range(self.layers):
            from_pred = torch.einsum("bjk,mbkh->mbjh", incoming, h)
            from_succ = torch.einsum("bjk,mbkh->mbjh", adjacency, h)
            h = torch.relu(h @ p[f"self{i}"][:, None] + from_pred @ p[f"pred{i}"][:, None]
                           + from_succ @ p[f"succ{i}"][:, None] + p[f"bias{i}"]) * mask
        total = h.sum(2)
        pooled = torch.cat([total / mask.sum(1), total / mask.shape[1]], -1)
        hidden = torch.relu(pooled @ p["head"] + p["head_bias"])
        return (hidden @ p["out"]).squeeze(-1)

    # -------------------------------------------------------------- training
    def fit(self, graphs, targets) -> None:
        import torch
        targets = _check_targets(graphs, targets)
        if len(graphs) < 2:
            return  # nothing to learn an order from yet
        self.mean = float(targets.mean())
        self.std = float(targets.std()) or 1.0
        y = torch.from_numpy(((targets - self.mean) / self.std).astype(np.float32))
        steps = self.initial_steps if self.fits == 0 else self.steps
        with torch_threads(1):
            x, adjacency, mask = self._tensors(graphs)
            if self.loss == "ranking":
                better = (y[:, None] > y[None, :]).float()
                pairs = better.sum().clamp(min=1.0)
            for _ in range(steps):
                out = self._forward(x, adjacency, mask)
                if self.loss == "regression":
                    loss = ((out - y) ** 2).mean()
                else:  # logistic loss on every ordered pair i better than j
                    diff = out[:, :, None] - out[:, None, :]
                    loss = (torch.nn.functional.softplus(-diff) * better).sum() / (
                        pairs * self.ensemble)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
        self.fits += 1

    def score(self, graphs) -> np.ndarray:
        import torch
        with torch_threads(1), torch.no_grad():
            out = self._forward(*self._tensors(graphs)).mean(0)
        return out.double().numpy() * self.std + self.mean

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """The weights and the optimiser's moments as numpy arrays (plain data)."""
        optimizer = self.optimizer.state_dict()
        moments = {int(i): {k: _to_numpy(v) for k, v in s.items()}
                   for i, s in optimizer["state"].items()}
        return {"weights": {k: v.detach().numpy().copy() for k, v in self.parameters.items()},
                "moments": moments, "fits": self.fits, "mean": self.mean, "std": self.std}

    def load_state_dict(self, state: dict) -> None:
        import torch
        weights = state["weights"]
        if set(weights) != set(self.parameters):
            raise PredictorError(f"the saved predictor has the weights {sorted(weights)}, "
                                 f"this one {sorted(self.parameters)}: build it with the "
                                 f"settings it was saved with")
        with torch.no_grad():
            for name, value in weights.items():
                if tuple(value.shape) != tuple(self.parameters[name].shape):
                    raise PredictorError(
                        f"the saved predictor's {name} is {tuple(value.shape)}, this one's "
                        f"{tuple(self.parameters[name].shape)}: build it with the settings "
                        f"it was saved with")
                self.parameters[name].copy_(torch.from_numpy(np.asarray(value)))
        optimizer = self.optimizer.state_dict()
        optimizer["state"] = {int(i): {k: torch.from_numpy(np.array(v)) for k, v in s.items()}
                              for i, s in dict(state["moments"]).items()}
        self.optimizer.load_state_dict(optimizer)
        self.fits = int(state["fits"])
        self.mean, self.std = float(state["mean"]), float(state["std"])


def _to_numpy(value) -> Any:
    return value.detach().numpy().copy() if hasattr(value, "detach") else value


#: surrogate name -> class, for ``make_surrogate`` and the guided search's ``predictor=``
SURROGATES = {"gcn": GraphSurrogate, "random": RandomSurrogate}


def make_surrogate(name: str, vocabulary: Sequence[str], seed: int = 0,
                   options: Optional[dict] = None) -> Surrogate:
    """The surrogate called ``name`` (``gcn``, ``random``) for graphs of ``vocabulary``."""
    options = dict(options or {})
    if name == "gcn":
        return GraphSurrogate(vocabulary, seed=seed, **options)
    if name == "random":
        if options:
            raise PredictorError(f"the random predictor takes no options, got "
                                 f"{sorted(options)}")
        return RandomSurrogate(seed)
    raise PredictorError(f"unknown predictor {name!r}; choose one of {sorted(SURROGATES)} "
                         f"(or pass a Surrogate object)")
