"""The NAS-Bench-101 cell space, searched with the mutation rules of listing 3.6.

Architectures are :class:`~nord.neural_nets.NeuralDescriptor` objects whose
layers are NAS-Bench-101 op strings, named with a numeric prefix
(``"0_Layer"`` the input, ``"9999"`` the output) so that connections can only
run from a smaller to a larger prefix: the graph stays acyclic.

Mutations (``mutation=``):

* ``"listing_3_6"`` (default): thesis listing 3.6. With probability
  ``add_connection_prob`` (or always, once the cell has ``max_layers`` inner
  layers) add a random forward connection; otherwise, with probability
  ``add_node_prob``, replace a random connection ``a → b`` by ``a → new → b``
  with a random op. The listing's defects are fixed: the new layer's prefix is
  the midpoint of ``a``'s and ``b``'s (compared as numbers, so ``"2.5_Layer"``
  works), and names never collide. Cells only grow; those beyond the space
  (more than 7 vertices or 9 edges) are rejected at evaluation, as in the
  thesis's Figure 3.5.
* ``"nasbench"``: the NAS-Bench-101 paper's mutation on the cell matrix: each
  possible edge flips with probability 1/(number of possible edges) and each
  inner op changes with probability 1/(number of inner ops), retried until
  the child is a different valid cell.

``held_only=True`` keeps the search inside the loaded table
(:class:`~nord.neural_nets.NASBench_101Evaluator`'s subset): samples are drawn
from the held cells and a mutation is retried (up to ``max_tries``) until the
child is held; if none is found, a held cell is sampled instead and counted in
``fallbacks``. In both modes a mutation that changes nothing (a connection
that already exists) is retried.
"""

from __future__ import annotations

from typing import List

import numpy as np

from nord.design.spaces.base import SearchSpace
from nord.errors import NordError, OutOfSearchSpaceError, SettingsError
from nord.neural_nets.graph_hash import NASBENCH101_OPS, prune_nasbench101
from nord.neural_nets.neural_descriptor import NeuralDescriptor

__all__ = ["NASBench101Space", "INPUT", "OUTPUT", "OUTPUT_LAYER_NAME"]

INPUT, OUTPUT = "input", "output"
OUTPUT_LAYER_NAME = "9999"
MAX_VERTICES, MAX_EDGES = 7, 9
MUTATIONS = ("listing_3_6", "nasbench")


def _prefix(name: str) -> float:
    return float(name.split("_")[0])


def _name(prefix: float) -> str:
    text = f"{prefix:.10g}"
    return text if prefix == 9999 else f"{text}_Layer"


class NASBench101Space(SearchSpace):
    """NAS-Bench-101 cells as descriptors; see the module docstring."""

    name = "nasbench101"

    def __init__(self, max_layers: int = 5, add_connection_prob: float = 0.5,
                 add_node_prob: float = 0.5, second_connection_prob: float = 1 / 7,
                 mutation: str = "listing_3_6", held_only: bool = False, evaluator=None,
                 max_tries: int = 200, ops=NASBENCH101_OPS) -> None:
        if mutation not in MUTATIONS:
            raise SettingsError(f"unknown mutation {mutation!r}; choose one of {MUTATIONS}")
        if not 1 <= int(max_layers) <= MAX_VERTICES - 2:
            raise SettingsError(f"max_layers (inner layers) must be 1..{MAX_VERTICES - 2}, "
                                f"got {max_layers}")
        self.max_layers = int(max_layers)
        self.add_connection_prob = float(add_connection_prob)
        self.add_node_prob = float(add_node_prob)
        self.second_connection_prob = float(second_connection_prob)
        self.mutation = mutation
        self.ops = tuple(ops)
        self.held_only = bool(held_only)
        self.max_tries = int(max_tries)
        self._evaluator = evaluator
        self.fallbacks = 0
        #: node labels of :meth:`to_graph` (table 3.1's 5-long feature vector)
        self.graph_vocabulary = (INPUT, *NASBENCH101_OPS, OUTPUT)

    def settings(self) -> dict:
        return {"max_layers": self.max_layers, "add_connection_prob": self.add_connection_prob,
                "add_node_prob": self.add_node_prob,
                "second_connection_prob": self.second_connection_prob,
                "mutation": self.mutation, "held_only": self.held_only,
                "max_tries": self.max_tries}

    @property
    def evaluator(self):
        """The table used by ``held_only`` (loaded on first use)."""
        if self._evaluator is None:
            from nord.neural_nets.benchmarks.nasbench101 import NASBench_101Evaluator
            self._evaluator = NASBench_101Evaluator()
        return self._evaluator

    # ------------------------------------------------------------- sampling
    def sample(self, rng: np.random.Generator) -> NeuralDescriptor:
        if self.held_only:
            return self._held_sample(rng)
        return self._listing_sample(rng)

    def _listing_sample(self, rng: np.random.Generator) -> NeuralDescriptor:
        """Listing 3.6's initial individual: a random chain, some extra connections."""
        d = NeuralDescriptor()
        d.add_layer_sequential(INPUT, {})
        layers = 1 + int(rng.integers(self.max_layers))  # 1..max_layers inner layers
        for _ in range(layers):
            d.add_layer_sequential(self.ops[int(rng.integers(len(self.ops)))], {})
            if rng.random() < self.second_connection_prob:
                self._add_random_connection(d, rng)
        d.add_layer_sequential(OUTPUT, {}, OUTPUT_LAYER_NAME)
        return d

    def _held_sample(self, rng: np.random.Generator) -> NeuralDescriptor:
        held = self.evaluator.sample(rng)[0]
        matrix, ops = self.evaluator.descriptor_to_matrix(held)
        return self.from_matrix(matrix.tolist(), ops)

    # ------------------------------------------------------------- mutation
    def mutate(self, architecture: NeuralDescriptor, rng: np.random.Generator) -> NeuralDescriptor:
        child = architecture
        for _ in range(self.max_tries):
            child = (self._listing_mutation(architecture, rng) if self.mutation == "listing_3_6"
                     else self._nasbench_mutation(architecture, rng))
            if child == architecture:
                continue  # e.g. a connection that was already there: try again
            if not self.held_only or self.is_held(child):
                return child
        if not self.held_only:
            return child
        self.fallbacks += 1
        return self._held_sample(rng)

    def _listing_mutation(self, parent: NeuralDescriptor, rng: np.random.Generator) -> NeuralDescriptor:
        d = parent.copy()
        inner = len(d.layers) - 2
        r = rng.random()
        if r < self.add_connection_prob or inner >= self.max_layers:
            self._add_random_connection(d, rng)
        elif r < self.add_connection_prob + self.add_node_prob:
            self._insert_node(d, rng)
        return d

    def _add_random_connection(self, d: NeuralDescriptor, rng: np.random.Generator) -> None:
        sources = [n for n in d.layers if d.layers[n].layer != OUTPUT and n != d.last_layer]
        if not sources:
            return
        source = sources[int(rng.integers(len(sources)))]
        later = [n for n in d.layers if _prefix(n) > _prefix(source)]
        if later:
            d.connect_layers(source, later[int(rng.integers(len(later)))])

    def _insert_node(self, d: NeuralDescriptor, rng: np.random.Generator) -> None:
        sources = [n for n in d.layers if d.connections[n]]
        source = sources[int(rng.integers(len(sources)))]
        target = d.connections[source][int(rng.integers(len(d.connections[source])))]
        op = self.ops[int(rng.integers(len(self.ops)))]
        low, prefix = _prefix(source), (_prefix(source) + _prefix(target)) / 2
        while _name(prefix) in d.layers:  # bisect towards the source until free
            prefix = (low + prefix) / 2
        output = d.last_layer
        name = d.add_layer(op, {}, _name(prefix))
        d.disconnect_layers(source, target)
        d.connect_layers(source, name)
        d.connect_layers(name, target)
        d.last_layer = output

    def _nasbench_mutation(self, parent: NeuralDescriptor, rng: np.random.Generator) -> NeuralDescriptor:
        """NAS-Bench-101's mutation on the 7-vertex cell (pruned vertices padded back)."""
        matrix, ops = self._padded(*self.to_matrix(parent), rng)
        n = len(ops)
        edge_prob, op_prob = 1.0 / (n * (n - 1) // 2), 1.0 / (n - 2)
        current = self.to_matrix(parent)
        for _ in range(100):
            m = [row[:] for row in matrix]
            new_ops = list(ops)
            for i in range(n):
                for j in range(i + 1, n):
                    if rng.random() < edge_prob:
                        m[i][j] = 1 - m[i][j]
            for i in range(1, n - 1):
                if rng.random() < op_prob:
                    choices = [o for o in self.ops if o != new_ops[i]]
                    new_ops[i] = choices[int(rng.integers(len(choices)))]
            try:
                pruned, pruned_ops = prune_nasbench101(m, new_ops)
            except OutOfSearchSpaceError:
                continue
            if sum(map(sum, pruned)) <= MAX_EDGES and (pruned, pruned_ops) != current:
                return self.from_matrix(pruned, pruned_ops)
        return parent.copy()

    def _padded(self, matrix, ops, rng: np.random.Generator):
        """The cell with unconnected inner vertices added up to 7 (random ops)."""
        missing = MAX_VERTICES - len(ops)
        if missing <= 0:
            return matrix, list(ops)
        n = MAX_VERTICES
        padded = [[0] * n for _ in range(n)]
        for i, row in enumerate(matrix):
            for j, x in enumerate(row):
                padded[i if i < len(ops) - 1 else n - 1][j if j < len(ops) - 1 else n - 1] = x
        extra = [self.ops[int(rng.integers(len(self.ops)))] for _ in range(missing)]
        return padded, list(ops[:-1]) + extra + [ops[-1]]

    # ----------------------------------------------------------- conversion
    def to_descriptor(self, architecture: NeuralDescriptor) -> NeuralDescriptor:
        return architecture

    def encode(self, architecture: NeuralDescriptor) -> str:
        return architecture.to_json()

    def decode(self, value: str) -> NeuralDescriptor:
        return NeuralDescriptor.from_json(value)

    def describe(self, architecture: NeuralDescriptor) -> str:
        try:
            matrix, ops = self.to_matrix(architecture)
        except NordError as error:
            return f"invalid cell ({error})"
        bits = "".join(str(x) for row in matrix for x in row)
        return f"{','.join(ops)} / {bits}"

    def identity(self, architecture: NeuralDescriptor) -> str:
        """The isomorphism-invariant key of the pruned cell (NAS-Bench-101 holds one
        entry per class, so isomorphic cells are one query); the encoding for a
        descriptor that is not a cell."""
        try:
            return self.to_graph(architecture).key()
        except NordError:
            return super().identity(architecture)

    def to_graph(self, architecture: NeuralDescriptor):
        """The pruned cell as a graph (its matrix's vertices, in order)."""
        from nord.design.predictors.datasets import graph_from_matrix
        return graph_from_matrix(*self.to_matrix(architecture))

    def to_matrix(self, d: NeuralDescriptor):
        """(matrix, ops) of the pruned cell; layers ordered by numeric prefix."""
        names = sorted(d.layers, key=_prefix)
        index = {name: i for i, name in enumerate(names)}
        matrix = [[0] * len(names) for _ in names]
        for src, dst in d.edges():
            matrix[index[src]][index[dst]] = 1
        return prune_nasbench101(matrix, [d.layers[n].layer for n in names])

    def from_matrix(self, matrix, ops) -> NeuralDescriptor:
        """A descriptor named as listing 3.6 names layers, from a cell matrix."""
        n = len(ops)
        d = NeuralDescriptor()
        names: List[str] = []
        for i, op in enumerate(ops):
            names.append(d.add_layer(op, {}, OUTPUT_LAYER_NAME if i == n - 1 else _name(i)))
        for i in range(n):
            for j in range(n):
                if matrix[i][j]:
                    d.connect_layers(names[i], names[j])
        return d

    def is_held(self, architecture: NeuralDescriptor) -> bool:
        try:
            return self.evaluator.is_held(architecture)
        except NordError:
            return False
