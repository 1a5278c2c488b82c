"""DARTS genotypes: the discrete cells a search's architecture weights select.

A cell has two inputs (node 0: the cell before the previous one, node 1: the
previous cell) and ``steps`` intermediate nodes (DARTS: 4); node ``2 + i``
sums two operations, each applied to an earlier node. A :class:`Genotype`
holds, for the normal and the reduction cell, one ``(operation, input)`` pair
per incoming edge, two per node in node order, and the nodes whose
concatenation is the cell's output (the intermediate ones).

:func:`extract_genotype` is DARTS's rule (§2.2.3): for each intermediate node,
keep the two incoming edges whose strongest operation other than ``none`` has
the largest weight (softmax of the edge's architecture weights), and on each
the strongest operation other than ``none``. Ties go to the lower edge and the
earlier operation. Pure (numpy only), no I/O; a genotype read from a file is
untrusted and checked field by field (:meth:`Genotype.from_json`).
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from nord.errors import GenotypeError

__all__ = ["Genotype", "extract_genotype", "edge_count", "random_genotype", "PRIMITIVES"]

#: the thesis's order (§8.2); kept here too so that genotypes need no torch
PRIMITIVES = ("none", "skip_connect", "max_pool_3x3", "avg_pool_3x3", "sep_conv_3x3",
              "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")
Edge = Tuple[str, int]


def edge_count(steps: int) -> int:
    """Edges of a cell with ``steps`` intermediate nodes (4 -> 14)."""
    return sum(2 + i for i in range(int(steps)))


@dataclass(frozen=True)
class Genotype:
    """Two cells as ``(operation, input node)`` pairs, two per intermediate node.

    >>> g = Genotype(normal=(("sep_conv_3x3", 0), ("skip_connect", 1)),
    ...              reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1)))
    >>> g.steps, g.normal_concat
    (1, (2,))
    >>> Genotype.from_json(g.to_json()) == g
    True
    """

    normal: Tuple[Edge, ...]
    reduce: Tuple[Edge, ...]
    normal_concat: Tuple[int, ...] = ()
    reduce_concat: Tuple[int, ...] = ()

    def __post_init__(self) -> None:
        normal = _cell(self.normal, "normal")
        reduce = _cell(self.reduce, "reduce")
        if len(normal) != len(reduce):
            raise GenotypeError(f"the normal and the reduction cell have {len(normal) // 2} "
                                f"and {len(reduce) // 2} nodes; give both the same number")
        steps = len(normal) // 2
        object.__setattr__(self, "normal", normal)
        object.__setattr__(self, "reduce", reduce)
        for name in ("normal_concat", "reduce_concat"):
            concat = tuple(getattr(self, name)) or tuple(range(2, 2 + steps))
            if (not all(isinstance(n, numbers.Integral) and not isinstance(n, bool)
                        for n in concat) or len(set(concat)) != len(concat)
                    or not all(0 <= n < 2 + steps for n in concat)):
                raise GenotypeError(f"{name} must list distinct nodes 0..{steps + 1}, "
                                    f"got {list(concat)}")
            object.__setattr__(self, name, tuple(int(n) for n in concat))

    @property
    def steps(self) -> int:
        """Intermediate nodes per cell."""
        return len(self.normal) // 2

    def cell(self, reduction: bool) -> Tuple[Edge, ...]:
        return self.reduce if reduction else self.normal

    def concat(self, reduction: bool) -> Tuple[int, ...]:
        return self.reduce_concat if reduction else self.normal_concat

    # ------------------------------------------------------------ JSON
    def to_json(self) -> Dict[str, Any]:
        """A JSON-ready dict (what a run folder keeps as ``genotype.json``)."""
        return {"normal": [list(e) for e in self.normal],
                "normal_concat": list(self.normal_concat),
                "reduce": [list(e) for e in self.reduce],
                "reduce_concat": list(self.reduce_concat)}

    @classmethod
    def from_json(cls, data: Any) -> "Genotype":
        """The genotype :meth:`to_json` wrote (a dict or its JSON text; untrusted)."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except ValueError as error:
                raise GenotypeError(f"a genotype file is JSON; this is not: {error}") from error
        keys = {"normal", "normal_concat", "reduce", "reduce_concat"}
        if not isinstance(data, dict) or set(data) != keys:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise GenotypeError(f"a genotype is a JSON object with keys {sorted(keys)}, "
                                f"got {got}")
        for key in ("normal", "reduce"):
            if not isinstance(data[key], list) or not all(
                    isinstance(e, list) and len(e) == 2 for e in data[key]):
                raise GenotypeError(f"'{key}' must be a list of [operation, input] pairs")
        for key in ("normal_concat", "reduce_concat"):
            if not isinstance(data[key], list):
                raise GenotypeError(f"'{key}' must be a list of node numbers")
        return cls(tuple(tuple(e) for e in data["normal"]),
                   tuple(tuple(e) for e in data["reduce"]),
                   tuple(data["normal_concat"]), tuple(data["reduce_concat"]))

    def describe(self) -> str:
        def text(cell):
            return ", ".join(f"{op}({node})" for op, node in cell)
        return f"normal: {text(self.normal)} | reduce: {text(self.reduce)}"


def _cell(edges: Sequence, name: str) -> Tuple[Edge, ...]:
    edges = tuple(edges)
    if not edges or len(edges) % 2:
        raise GenotypeError(f"the {name} cell needs two edges per node (an even, non-zero "
                            f"count), got {len(edges)}")
    out = []
    for k, edge in enumerate(edges):
        if not isinstance(edge, (tuple, list)) or len(edge) != 2:
            raise GenotypeError(f"{name} edge {k} must be (operation, input), got {edge!r}")
        op, node = edge
        if not isinstance(op, str) or op not in PRIMITIVES or op == "none":
            raise GenotypeError(f"{name} edge {k}: unknown operation {op!r}; a genotype's "
                                f"operations are {', '.join(PRIMITIVES[1:])}")
        limit = 2 + k // 2  # node 2 + i reads nodes 0 .. 1 + i
        if isinstance(node, bool) or not isinstance(node, numbers.Integral) \
                or not 0 <= node < limit:
            raise GenotypeError(f"{name} edge {k} (node {limit}) reads node {node!r}; it can "
                                f"read nodes 0..{limit - 1}")
        out.append((op, int(node)))
    return tuple(out)


def _softmax(weights: np.ndarray) -> np.ndarray:
    shifted = weights - weights.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def _parse(weights: np.ndarray, steps: int, primitives: Sequence[str]) -> List[Edge]:
    none = primitives.index("none") if "none" in primitives else None
    usable = [k for k in range(len(primitives)) if k != none]
    cell: List[Edge] = []
    start = 0
    for i in range(steps):
        rows = weights[start:start + 2 + i]
        strength = [max(row[k] for k in usable) for row in rows]
        chosen = sorted(range(2 + i), key=lambda j: -strength[j])[:2]  # stable: ties -> lower
        for j in sorted(chosen):
            best = max(usable, key=lambda k: (rows[j][k], -k))
            cell.append((primitives[best], j))
        start += 2 + i
    return cell


def extract_genotype(alpha_normal, alpha_reduce, steps: int = 4,
                     primitives: Sequence[str] = PRIMITIVES, logits: bool = True,
                     multiplier: Optional[int] = None) -> Genotype:
    """The genotype of architecture weights ``[edges, operations]`` for each cell
    (``logits``: raw weights, softmaxed per edge first; else already weights);
    the cells' output concatenates the last ``multiplier`` nodes (all of them
    by default)."""
    primitives = tuple(primitives)
    unknown = [p for p in primitives if p not in PRIMITIVES]
    if unknown:
        raise GenotypeError(f"unknown operations {unknown}; the operations are "
                            f"{', '.join(PRIMITIVES)}")
    cells = []
    for name, alpha in (("normal", alpha_normal), ("reduce", alpha_reduce)):
        alpha = np.asarray(alpha, dtype=np.float64)
        if alpha.shape != (edge_count(steps), len(primitives)):
            raise GenotypeError(f"alpha_{name} must be [{edge_count(steps)} edges, "
                                f"{len(primitives)} operations] for {steps} nodes, got "
                                f"{list(alpha.shape)}")
        if not np.isfinite(alpha).all():
            raise GenotypeError(f"alpha_{name} holds NaN or infinite values; the search "
                                f"diverged (lower the architecture learning rate)")
        cells.append(_parse(_softmax(alpha) if logits else alpha, int(steps), primitives))
    multiplier = int(steps) if multiplier is None else int(multiplier)
    concat = tuple(range(2 + int(steps) - multiplier, 2 + int(steps)))
    return Genotype(tuple(cells[0]), tuple(cells[1]), concat, concat)


def random_genotype(rng: np.random.Generator, steps: int = 4) -> Genotype:
    """A genotype with two distinct random inputs and random operations per node
    (the baseline a search's genotype is compared with)."""
    cells = []
    for _ in range(2):
        cell: List[Edge] = []
        for i in range(steps):
            inputs = sorted(int(j) for j in rng.choice(2 + i, size=2, replace=False))
            for j in inputs:
                cell.append((PRIMITIVES[1 + int(rng.integers(len(PRIMITIVES) - 1))], j))
        cells.append(tuple(cell))
    return Genotype(cells[0], cells[1])
