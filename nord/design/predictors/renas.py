"""ReNAS, the baseline predictor of thesis §7.4.3 (table 7.4).

ReNAS (Xu et al., "ReNAS: Relativistic evaluation of neural architecture
search") encodes a cell as a fixed-size feature tensor and scores it with a
small LeNet-5-like convolutional network trained to *rank*: a margin ranking
loss on pairs of architectures. The thesis uses its reduced form, the
``1 x 7 x 7`` tensor of adjacency and layer type only (the information a GCN
gets), trained with Adam (learning rate 1e-3, weight decay 5e-4) for 200
epochs, with batches of 32 or 1024.

* :func:`renas_tensor`: ReNAS' *type matrix*: the adjacency matrix with each
  edge ``i -> j`` carrying the type code of its target,
  ``T[i, j] = A[i, j] * code(j)``; a label's code is its position in the
  vocabulary plus one (0 is "no node"). Smaller graphs are zero-padded as
  ReNAS pads NAS-Bench-101 cells: the padding goes before the last node, so
  the output node always sits in the last row and column.
* :class:`ReNAS`: the network, one score per architecture (higher: better).
* :func:`train_renas`, :func:`renas_scores`, :func:`renas_quality`.

The network follows the ReNAS authors' code; their code trains it with a
logistic pair loss, the thesis with PyTorch's margin ranking loss, used here
(``margin`` 0.1: with PyTorch's default of 0 an order that is right by any
amount costs nothing and the loss stops pulling architectures apart).

>>> from nord.design.predictors.graphs import ArchitectureGraph
>>> g = ArchitectureGraph(("input", "conv3x3-bn-relu", "output"), ((0, 1), (0, 2), (1, 2)))
>>> renas_tensor(g, ("input", "conv3x3-bn-relu", "output"), size=4)[0].astype(int).tolist()
[[0, 2, 0, 3], [0, 0, 0, 3], [0, 0, 0, 0], [0, 0, 0, 0]]
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from nord.errors import GraphDatasetError, GraphTooLargeError, PredictorError

__all__ = ["ReNAS", "renas_tensor", "renas_tensors", "train_renas", "renas_scores",
           "renas_quality", "batch_ranking_loss", "RENAS_SIZE"]

log = logging.getLogger(__name__)

#: ReNAS' input side: a NAS-Bench-101 cell has at most 7 nodes
RENAS_SIZE = 7


def renas_tensor(graph, vocabulary: Sequence[str], size: int = RENAS_SIZE) -> np.ndarray:
    """The ``[1, size, size]`` float32 type matrix of ``graph`` (see the module text).

    A graph of more than ``size`` nodes raises :class:`GraphTooLargeError`.
    """
    size = int(size)
    if size < 2:
        raise PredictorError(f"the ReNAS tensor needs a size of at least 2 (input and "
                             f"output), got {size}")
    n = graph.num_nodes
    if n > size:
        raise GraphTooLargeError(f"a graph of {n} nodes does not fit ReNAS' {size} x {size} "
                                 f"tensor (at most {size} nodes); use a larger size or a "
                                 f"space whose cells have at most {size} nodes")
    codes = graph.label_indices(vocabulary) + 1
    # node k of the graph goes to row/column position[k]: the last node to size - 1
    position = np.arange(n)
    position[-1] = size - 1
    out = np.zeros((1, size, size), dtype=np.float32)
    for source, target in graph.edges:
        out[0, position[source], position[target]] = codes[target]
    return out


def renas_tensors(dataset, size: int = RENAS_SIZE) -> torch.Tensor:
    """``[len(dataset), 1, size, size]`` tensors of every graph of ``dataset``."""
    if len(dataset) == 0:
        raise GraphDatasetError(f"the dataset {dataset.name!r} holds no architectures; "
                                f"there is nothing to encode")
    return torch.from_numpy(np.stack([renas_tensor(g, dataset.vocabulary, size)
                                      for g in dataset.graphs]))


class ReNAS(nn.Module):
    """The LeNet-5-like ReNAS network, as its authors' code builds it: two 3x3
    convolutions (38 and 128 channels, no bias), each followed by batch
    normalisation and ReLU, then LeNet's dense layers (120, 84) down to one
    score. (The authors' first convolution has ``2 x channels`` outputs for
    their 19 channels; 38 is kept for any input.)

    ``seed`` sets the initial weights (a :class:`torch.Generator`; the global
    torch generator is left as it was).

    >>> ReNAS(seed=0)(torch.zeros(5, 1, 7, 7)).shape
    torch.Size([5])
    """

    def __init__(self, channels: int = 1, size: int = RENAS_SIZE, seed: int = 0) -> None:
        super().__init__()
        if int(channels) < 1 or int(size) < 1:
            raise PredictorError(f"ReNAS needs channels >= 1 and size >= 1, got {channels} "
                                 f"and {size}")
        self.channels, self.size = int(channels), int(size)
        with torch.random.fork_rng(devices=[]):  # torch's default init draws from it
            self.features = nn.Sequential(
                nn.Conv2d(self.channels, 38, 3, padding=1, bias=False),
                nn.BatchNorm2d(38), nn.ReLU(),
                nn.Conv2d(38, 128, 3, padding=1, bias=False),
                nn.BatchNorm2d(128), nn.ReLU())
            self.head = nn.Sequential(
                nn.Flatten(), nn.Linear(128 * self.size * self.size, 120), nn.ReLU(),
                nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 1))
        generator = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_uniform_(module.weight, nonlinearity="relu",
                                             generator=generator)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, channels, size, size]`` tensors -> ``[B]`` scores."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.channels, self.size, self.size):
            raise PredictorError(f"ReNAS takes [B, {self.channels}, {self.size}, {self.size}] "
                                 f"tensors (renas_tensors gives them), got "
                                 f"{list(x.shape)}")
        return self.head(self.features(x)).squeeze(1)


def batch_ranking_loss(scores: torch.Tensor, targets: torch.Tensor,
                       margin: float) -> Optional[torch.Tensor]:
    """Margin ranking loss over every pair ``i < j`` of a batch whose targets differ:
    ``max(0, margin - sign(y_i - y_j) * (s_i - s_j))``, averaged; ``None`` when the
    batch holds no such pair."""
    first, second = torch.triu_indices(len(scores), len(scores), offset=1)
    sign = torch.sign(targets[first] - targets[second])
    keep = sign != 0
    if not bool(keep.any()):
        return None
    return F.margin_ranking_loss(scores[first[keep]], scores[second[keep]], sign[keep],
                                 margin=margin)


def train_renas(dataset, *, epochs: int = 200, lr: float = 1e-3, weight_decay: float = 5e-4,
                batch_size: int = 32, margin: float = 0.1, seed: int = 0,
                size: int = RENAS_SIZE) -> ReNAS:
    """A :class:`ReNAS` trained on ``dataset`` (§7.4.3's setup by default): Adam and
    the margin ranking loss on the pairs within each shuffled batch. ``seed``
    sets the initial weights and the batch order; the same seed gives the same
    model. Returns the model in evaluation mode.
    """
    dataset.check_trainable()
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if int(value) < 1:
            raise PredictorError(f"{name} must be at least 1, got {value}")
    if int(batch_size) < 2:
        raise PredictorError("batch_size must be at least 2: the loss compares pairs "
                             "within a batch")
    if not (lr > 0 and weight_decay >= 0 and margin >= 0):
        raise PredictorError(f"lr must be positive and weight_decay and margin 0 or more, "
                             f"got {lr}, {weight_decay} and {margin}")
    targets = torch.tensor(np.array(dataset.targets, dtype=np.float32))
    if float(targets.max() - targets.min()) == 0:
        raise GraphDatasetError(f"every architecture of {dataset.name!r} has the same target; "
                                f"a ranking needs architectures that score differently")
    inputs = renas_tensors(dataset, size)
    model = ReNAS(channels=inputs.shape[1], size=size, seed=seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(int(seed) + 1)
    n, batch_size = len(dataset), int(batch_size)
    model.train()
    for epoch in range(int(epochs)):
        order = torch.randperm(n, generator=generator)
        total, steps = 0.0, 0
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            if len(index) < 2:
                continue
            loss = batch_ranking_loss(model(inputs[index]), targets[index], margin)
            if loss is None:
                continue
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total, steps = total + loss.item(), steps + 1
        log.debug("ReNAS epoch %d: mean loss %.4f", epoch, total / max(steps, 1))
    return model.eval()


def renas_scores(model: ReNAS, dataset, batch_size: int = 4096) -> np.ndarray:
    """The model's score of every architecture of ``dataset`` (higher: better)."""
    inputs = renas_tensors(dataset, model.size)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            scores = [model(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(scores).numpy().astype(np.float64)


def renas_quality(model: ReNAS, dataset):
    """:class:`~nord.design.predictors.metrics.RankingQuality` (tau, top-50 % tau) of
    the model's scores against the dataset's targets."""
    from nord.design.predictors.metrics import ranking_quality
    return ranking_quality(renas_scores(model, dataset), dataset.targets)
