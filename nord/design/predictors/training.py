"""Training and evaluating a :class:`~nord.design.predictors.egraph.SiameseGCN` ranker
(§7.3.3, §7.4.1).

* :func:`train_ranker`: AdamW (Table 7.2: learning rate 1e-3, weight decay
  1e-2, 2 epochs, batches of 256 pairs; §7.4.2's fine-tuning uses batches of
  32 and up to 5 epochs). An epoch visits every unordered pair of training
  architectures once, in a random order (the ``N(N-1)/2`` comparisons of
  §7.5; the model is exactly antisymmetric, so one order of each pair says
  everything), or ``pairs_per_epoch`` pairs drawn at random. The ternary head
  learns the classes of :func:`~nord.design.predictors.datasets.pair_labels`
  with margin ``epsilon`` by cross-entropy; the regression head learns a
  margin ranking loss on score differences, pairs closer than ``epsilon``
  left out.
* :func:`predict_scores`: one score per architecture. Regression: the
  model's score. Ternary: the thesis compares architectures in pairs and
  ranks them from the comparisons; the score of architecture ``i`` is its
  expected wins minus expected losses against every architecture of a
  reference set (default: the dataset itself, so each one is compared with
  all others), ``mean_j P(i BETTER j) - P(i WORSE j)``: a Borda count that
  needs no consistent (transitive) comparator.
* :func:`evaluate_ranker`: Kendall's tau and top-50 % tau of those scores
  against the true targets
  (:func:`~nord.design.predictors.metrics.ranking_quality`).

Everything random (pair order, the LSTM aggregators' neighbour order) comes
from ``seed``; the same model, data and seed give identical weights.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import torch

from nord.design.predictors.datasets import ArchitectureDataset, pair_labels, ranking_pairs
from nord.design.predictors.metrics import RankingQuality, ranking_quality
from nord.errors import GraphDatasetError, NonFiniteLossError, PredictorError

__all__ = ["train_ranker", "predict_scores", "evaluate_ranker", "TrainingHistory",
           "PackedGraphs"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingHistory:
    """What :func:`train_ranker` did: mean loss per epoch, steps, seconds."""

    losses: Tuple[float, ...]
    steps: int
    pairs: int
    seconds: float


class PackedGraphs:
    """A dataset's graphs as arrays, so a batch of any of them is packed with a few
    numpy operations (a :class:`~nord.design.predictors.graphs.GraphBatch`
    builds each graph's arrays again, which costs more than the network)."""

    def __init__(self, graphs: Sequence, vocabulary: Sequence[str]) -> None:
        self.sizes = np.array([g.num_nodes for g in graphs], dtype=np.int64)
        self.node_start = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.codes = (np.concatenate([g.label_indices(vocabulary) for g in graphs])
                      if len(graphs) else np.zeros(0, np.int64))
        edge_lists = [np.asarray(g.edges, dtype=np.int64).reshape(-1, 2) for g in graphs]
        self.edge_counts = np.array([len(e) for e in edge_lists], dtype=np.int64)
        self.edge_start = np.concatenate([[0], np.cumsum(self.edge_counts)]).astype(np.int64)
        self.edges = (np.concatenate(edge_lists) if edge_lists
                      else np.zeros((0, 2), np.int64))
        self.num_features = len(vocabulary)

    def __len__(self) -> int:
        return len(self.sizes)

    def tensors(self, indices: np.ndarray, device=None):
        """``(x, edge_index, graph_of_node, num_graphs)`` of graphs ``indices`` (in
        that order), for :meth:`SiameseGCN.embed_tensors`."""
        indices = np.asarray(indices, dtype=np.int64)
        sizes = self.sizes[indices]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        nodes = _ranges(self.node_start[indices], sizes)
        counts = self.edge_counts[indices]
        edge_rows = _ranges(self.edge_start[indices], counts)
        shift = np.repeat(offsets, counts)
        edges = (self.edges[edge_rows] + shift[:, None]).T
        x = torch.zeros(len(nodes), self.num_features, device=device)
        x[torch.arange(len(nodes), device=device),
          torch.as_tensor(self.codes[nodes], device=device)] = 1.0
        edge_index = torch.as_tensor(np.ascontiguousarray(edges), dtype=torch.long,
                                     device=device)
        graph_of_node = torch.as_tensor(np.repeat(np.arange(len(indices)), sizes),
                                        dtype=torch.long, device=device)
        return x, edge_index, graph_of_node, len(indices)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``concat(arange(s, s + n) for s, n in zip(starts, lengths))``."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(lengths)
    return np.arange(total) - np.repeat(ends - lengths, lengths) + np.repeat(starts, lengths)


def _check_model(model, dataset: ArchitectureDataset) -> None:
    from nord.design.predictors.egraph import SiameseGCN
    if not isinstance(model, SiameseGCN):
        raise PredictorError(f"expected a SiameseGCN, got {type(model).__name__}")
    if not isinstance(dataset, ArchitectureDataset):
        raise PredictorError(f"expected an ArchitectureDataset, got {type(dataset).__name__}")
    if len(dataset.vocabulary) != model.num_features:
        raise PredictorError(f"the dataset's vocabulary has {len(dataset.vocabulary)} labels "
                             f"but the model was built for {model.num_features} node "
                             f"features; build it with num_features=len(dataset.vocabulary)")


def _positive(name: str, value, integer: bool = False, zero: bool = False) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        ok = math.isfinite(value) and (value >= 0 if zero else value > 0)
        if integer:
            ok = ok and float(value).is_integer()
    if not ok:
        what = "a whole number" if integer else "a number"
        raise PredictorError(f"{name} must be {what} {'>= 0' if zero else '> 0'}, got {value!r}")


def train_ranker(model, dataset: ArchitectureDataset, *, epochs: int = 2, lr: float = 1e-3,
                 weight_decay: float = 1e-2, batch_size: int = 256, epsilon: float = 0.01,
                 seed: int = 0, pairs_per_epoch: Optional[int] = None,
                 margin: float = 0.1,
                 on_epoch: Optional[Callable[[int, float], None]] = None) -> TrainingHistory:
    """Train ``model`` on the pairs of ``dataset`` (see the module docstring);
    the model is left in eval mode. ``margin`` is the regression head's margin
    ranking loss margin; ``on_epoch(epoch, mean loss)`` is called after each
    epoch (1-based). Returns a :class:`TrainingHistory`."""
    _check_model(model, dataset)
    dataset.check_trainable()
    _positive("epochs", epochs, integer=True)
    _positive("lr", lr)
    _positive("weight_decay", weight_decay, zero=True)
    _positive("batch_size", batch_size, integer=True)
    _positive("epsilon", epsilon, zero=True)
    _positive("margin", margin, zero=True)
    if pairs_per_epoch is not None:
        _positive("pairs_per_epoch", pairs_per_epoch, integer=True)
    rng = np.random.default_rng(int(seed))
    generator = torch.Generator().manual_seed(int(seed))
    device = model.device
    packed = PackedGraphs(dataset.graphs, dataset.vocabulary)
    first, second = ranking_pairs(len(dataset), ordered=False)
    targets = dataset.targets
    labels = pair_labels(targets[first], targets[second], epsilon)
    if not model.ternary:  # margin ranking: ordered pairs only, +1 when the first is better
        keep = np.abs(targets[first] - targets[second]) >= max(epsilon, 1e-12)
        first, second, labels = first[keep], second[keep], labels[keep]
        if len(first) == 0:
            raise GraphDatasetError(f"every pair of the {len(dataset)} architectures is within "
                                    f"epsilon={epsilon}; a ranking needs different targets")
    sign = np.where(targets[first] > targets[second], 1.0, -1.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(lr),
                                  weight_decay=float(weight_decay))
    cross_entropy = torch.nn.CrossEntropyLoss()
    ranking_loss = torch.nn.MarginRankingLoss(margin=float(margin))
    batch_size = int(batch_size)
    losses, steps, seen = [], 0, 0
    start = time.perf_counter()
    model.train()
    try:
        for epoch in range(int(epochs)):
            if pairs_per_epoch is None:
                order = rng.permutation(len(first))
            else:
                order = rng.integers(len(first), size=int(pairs_per_epoch))
            total, count = 0.0, 0
            for begin in range(0, len(order), batch_size):
                rows = order[begin:begin + batch_size]
                graphs, position = np.unique(np.concatenate([first[rows], second[rows]]),
                                             return_inverse=True)
                embeddings = model.embed_tensors(*packed.tensors(graphs, device),
                                                 generator=generator)
                e1 = embeddings[torch.as_tensor(position[:len(rows)], device=device)]
                e2 = embeddings[torch.as_tensor(position[len(rows):], device=device)]
                if model.ternary:
                    loss = cross_entropy(model.pair_logits(e1, e2),
                                         torch.as_tensor(labels[rows], device=device))
                else:
                    loss = ranking_loss(model.score(e1), model.score(e2),
                                        torch.as_tensor(sign[rows], dtype=torch.float32,
                                                        device=device))
                if not torch.isfinite(loss):
                    raise NonFiniteLossError(f"the ranking loss became {loss.item()} in epoch "
                                             f"{epoch + 1}, step {steps + 1}; lower lr")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(rows)
                count += len(rows)
                steps += 1
            seen += count
            losses.append(total / max(count, 1))
            logger.info("epoch %d/%d: loss %.4f (%d pairs)", epoch + 1, epochs, losses[-1],
                        count)
            if on_epoch is not None:
                on_epoch(epoch + 1, losses[-1])
    finally:
        model.eval()
    return TrainingHistory(tuple(losses), steps, seen, time.perf_counter() - start)


@torch.no_grad()
def _embeddings(model, graphs, vocabulary, chunk: int = 1024):
    packed = PackedGraphs(graphs, vocabulary)
    parts = [model.embed_tensors(*packed.tensors(np.arange(i, min(i + chunk, len(packed))),
                                                 model.device))
             for i in range(0, len(packed), chunk)]
    return torch.cat(parts)


@torch.no_grad()
def predict_scores(model, dataset: ArchitectureDataset,
                   reference: Optional[ArchitectureDataset] = None) -> np.ndarray:
    """One score per architecture of ``dataset``, higher meaning better (see the
    module docstring). A ternary model compares each architecture with every
    one of ``reference`` (default: ``dataset``)."""
    _check_model(model, dataset)
    if len(dataset) == 0:
        raise GraphDatasetError(f"the dataset {dataset.name!r} holds no architectures; "
                                f"there is nothing to score")
    was_training = model.training
    model.eval()
    try:
        embeddings = _embeddings(model, dataset.graphs, dataset.vocabulary)
        if not model.ternary:
            return model.score(embeddings).double().cpu().numpy()
        if reference is None:
            others = embeddings
        else:
            _check_model(model, reference)
            if len(reference) == 0:
                raise GraphDatasetError("the reference set holds no architectures")
            others = _embeddings(model, reference.graphs, reference.vocabulary)
        rows = max(1, int(2 ** 22 // max(1, len(others) * model.embedding_size)))
        scores = []
        for begin in range(0, len(embeddings), rows):
            logits = model.comparison_logits(embeddings[begin:begin + rows], others)
            p = torch.softmax(logits, dim=-1)
            scores.append((p[..., 0] - p[..., 2]).double().mean(dim=1))
        return torch.cat(scores).cpu().numpy()
    finally:
        model.train(was_training)


def evaluate_ranker(model, dataset: ArchitectureDataset,
                    reference: Optional[ArchitectureDataset] = None) -> RankingQuality:
    """Kendall's tau and top-50 % tau of :func:`predict_scores` on ``dataset``."""
    return ranking_quality(predict_scores(model, dataset, reference), dataset.targets)
