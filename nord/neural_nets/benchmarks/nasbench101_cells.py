"""NAS-Bench-101 cells: descriptors and ``(matrix, ops)`` pairs to cell keys and hashes.

A cell is at most 7 vertices and 9 edges, the inner ops ``conv3x3-bn-relu``,
``conv1x1-bn-relu`` and ``maxpool3x3`` between an ``input`` and an ``output``
vertex. A descriptor is turned into a cell by *role*: the input is the layer
whose type is ``'input'`` and the output the one whose type is ``'output'`` (an
untyped ``first_layer``/``last_layer`` stands in when there is none), never by
names or insertion order. Layers off every input→output path are pruned, as
NAS-Bench-101 prunes, and the rest are put in topological order (ties by
insertion order). A descriptor that is no NAS-Bench-101 cell raises
:class:`~nord.errors.OutOfSearchSpaceError` saying why.

A cell's *key* is ``(ops joined by ',', mask)``, ``mask`` holding the row-major
adjacency bits of the pruned, ordered cell (``int(flat_string, 2)``); its hash is
NAS-Bench-101's own (:func:`~nord.neural_nets.graph_hash.nasbench101_hash`), so
isomorphic cells share it.
"""

from __future__ import annotations

import difflib
import heapq
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from nord.errors import OutOfSearchSpaceError
from nord.neural_nets.graph_hash import NASBENCH101_OPS, wl_hash

__all__ = ["INPUT", "OUTPUT", "MAX_VERTICES", "MAX_EDGES", "matrix_to_descriptor", "OPS",
           "OP_LABEL", "hash_of_key", "lower_mask", "mask_to_matrix", "matrix_key",
           "descriptor_key", "Matrix"]

INPUT = "input"
OUTPUT = "output"
MAX_VERTICES = 7
MAX_EDGES = 9

OPS = tuple(NASBENCH101_OPS)                      # official order (hash labels 0, 1, 2)
OP_LABEL = {op: i for i, op in enumerate(OPS)}

Matrix = Any


def matrix_to_descriptor(matrix: Matrix, ops: Sequence[str]):
    """A descriptor of the cell ``(matrix, ops)``; vertex ``i`` becomes layer
    ``'in'`` (op ``'input'``), ``'out'`` (op ``'output'``) or ``'layer_<i>'``."""
    from nord.neural_nets.neural_descriptor import NeuralDescriptor

    rows, ops = _square(matrix, ops)
    names = []
    for i, op in enumerate(ops):
        name = {INPUT: "in", OUTPUT: "out"}.get(op, f"layer_{i}")
        names.append(name if name not in names else f"layer_{i}")
    d = NeuralDescriptor()
    for name, op in zip(names, ops):
        d.add_layer(op, None, name)
    for i, row in enumerate(rows):
        for j, x in enumerate(row):
            if x:
                d.connect_layers(names[i], names[j])
    return d


def hash_of_key(key: Tuple[str, int]) -> str:
    """NAS-Bench-101's hash of a cell key (computed, never looked up)."""
    ops_text, mask = key
    ops = ops_text.split(",")
    n = len(ops)
    labels = [-1] + [OP_LABEL[op] for op in ops[1:-1]] + [-2]
    top = n * n - 1
    edges = [(i, j) for i in range(n) for j in range(i + 1, n)
             if mask >> (top - i * n - j) & 1]
    return wl_hash(labels, edges)


_LOWER_MASKS: Dict[int, int] = {}


def lower_mask(n: int) -> int:
    """Bits of the diagonal and below in a row-major ``n x n`` mask."""
    mask = _LOWER_MASKS.get(n)
    if mask is None:
        top = n * n - 1
        mask = 0
        for i in range(n):
            for j in range(i + 1):
                mask |= 1 << (top - i * n - j)
        _LOWER_MASKS[n] = mask
    return mask


def mask_to_matrix(mask: int, n: int) -> np.ndarray:
    bits = format(mask, f"0{n * n}b") if n else ""
    return (np.frombuffer(bits.encode("ascii"), dtype=np.uint8).reshape(n, n)
            - ord("0")).astype(int)


def _square(matrix: Matrix, ops: Sequence[str]) -> Tuple[List[List[int]], List[str]]:
    rows = matrix.tolist() if hasattr(matrix, "tolist") else matrix
    try:
        rows = [[int(x) for x in row] for row in rows]
    except (TypeError, ValueError) as error:
        raise OutOfSearchSpaceError(f"the adjacency matrix must be a square 0/1 matrix "
                                    f"({error})") from None
    n = len(rows)
    if any(len(row) != n for row in rows):
        raise OutOfSearchSpaceError(f"the adjacency matrix must be square, got row lengths "
                                    f"{[len(r) for r in rows]}")
    if any(x not in (0, 1) for row in rows for x in row):
        raise OutOfSearchSpaceError("adjacency matrix entries must be 0 or 1")
    ops = list(ops)
    if len(ops) != n:
        raise OutOfSearchSpaceError(f"{len(ops)} ops for a {n}x{n} matrix; give one op per "
                                    f"vertex")
    return rows, ops


def matrix_key(matrix: Matrix, ops: Sequence[str]) -> Tuple[str, int]:
    rows, ops = _square(matrix, ops)
    n = len(rows)
    if n < 2 or ops[0] != INPUT or ops[-1] != OUTPUT:
        raise OutOfSearchSpaceError(f"ops must start with 'input' and end with 'output', "
                                    f"got {ops}")
    succ = [[j for j, x in enumerate(row) if x] for row in rows]
    return _cell_key(ops, succ, 0, n - 1, [f"vertex {i}" for i in range(n)], [False] * n)


def descriptor_key(d) -> Tuple[str, int]:
    layers = d.layers
    names = list(layers)
    count = len(names)
    if count == 0:
        raise OutOfSearchSpaceError("the descriptor has no layers; a NAS-Bench-101 cell "
                                    "needs an 'input' and an 'output' layer")
    index = {name: i for i, name in enumerate(names)}
    specs = list(layers.values())
    ops = [spec.layer for spec in specs]
    connections = d.connections
    succ = []
    try:
        for name in names:
            succ.append([index[dst] for dst in connections.get(name, ())])
    except KeyError as error:
        raise OutOfSearchSpaceError(f"layer {name!r} connects to unknown layer "
                                    f"{error.args[0]!r}") from None
    if len(connections) != count:
        unknown = [n for n in connections if n not in index and connections[n]]
        if unknown:
            raise OutOfSearchSpaceError(f"connections come from unknown layer(s) {unknown}")
    src = _role(ops, names, INPUT, d.first_layer, index, "first_layer")
    dst = _role(ops, names, OUTPUT, d.last_layer, index, "last_layer")
    return _cell_key(ops, succ, src, dst, names, [bool(spec.params) for spec in specs])


def _role(ops: list, names: list, role: str, fallback, index, attribute: str) -> int:
    found = [i for i, op in enumerate(ops) if isinstance(op, str) and op == role]
    if len(found) == 1:
        return found[0]
    if found:
        raise OutOfSearchSpaceError(
            f"the descriptor has {len(found)} layers of type {role!r} "
            f"({[names[i] for i in found]}); a NAS-Bench-101 cell has exactly one")
    if fallback in index and ops[index[fallback]] is None:
        return index[fallback]
    where = (f"{attribute} {fallback!r} has type {_label(ops[index[fallback]])!r}"
             if fallback in index else f"{attribute} is {fallback!r}")
    raise OutOfSearchSpaceError(f"the descriptor has no layer of type {role!r} ({where}); "
                                f"add one: d.add_layer({role!r}, None, name)")


def _label(op) -> str:
    return op if isinstance(op, str) else getattr(op, "__name__", repr(op))


def _cell_key(ops: list, succ: List[List[int]], src: int, dst: int, names: list,
              has_params: List[bool]) -> Tuple[str, int]:
    """Prune, order and check a cell; return its key ``(ops joined by ',', mask)``.

    ``mask`` holds the row-major adjacency bits of the pruned, ordered cell
    (``int(flat_string, 2)``).
    """
    if src == dst:
        raise OutOfSearchSpaceError(f"layer {names[src]!r} cannot be both the input and "
                                    f"the output of the cell")
    order = _pruned_order(succ, src, dst, names)
    n = len(order)
    if n > MAX_VERTICES:
        raise OutOfSearchSpaceError(
            f"the pruned cell has {n} vertices; NAS-Bench-101 allows at most "
            f"{MAX_VERTICES} (input and output included): {[names[i] for i in order]}")
    mask = _adjacency_mask(succ, order, len(ops))
    edges = mask.bit_count() if hasattr(mask, "bit_count") else bin(mask).count("1")
    if edges > MAX_EDGES:
        raise OutOfSearchSpaceError(
            f"the pruned cell has {edges} edges; NAS-Bench-101 allows at most {MAX_EDGES}")
    return ",".join(_cell_ops(ops, order, names, has_params)), mask


def _pruned_order(succ: List[List[int]], src: int, dst: int, names: list) -> List[int]:
    """The vertices on a ``src`` → ``dst`` path, in topological order.

    Raises on a cycle (anywhere in the graph) and when no path leads from
    ``src`` to ``dst``.
    """
    count = len(succ)
    forward = bytearray(count)
    forward[src] = 1
    stack = [src]
    while stack:
        for j in succ[stack.pop()]:
            if not forward[j]:
                forward[j] = 1
                stack.append(j)
    pred: List[List[int]] = [[] for _ in range(count)]
    in_order = True
    for i in range(count):
        for j in succ[i]:
            pred[j].append(i)
            if j <= i:
                in_order = False
    if not in_order:
        order_all = _topological(succ, pred, names)  # raises on a cycle
    if not forward[dst]:
        raise OutOfSearchSpaceError(
            f"no path leads from the input layer {names[src]!r} to the output layer "
            f"{names[dst]!r}; connect them")
    backward = bytearray(count)
    backward[dst] = 1
    stack = [dst]
    while stack:
        for j in pred[stack.pop()]:
            if not backward[j]:
                backward[j] = 1
                stack.append(j)
    if in_order:
        return [i for i in range(count) if forward[i] and backward[i]]
    return [i for i in order_all if forward[i] and backward[i]]


def _adjacency_mask(succ: List[List[int]], order: List[int], count: int) -> int:
    """Row-major adjacency bits of the vertices ``order`` (of ``count``), in that order."""
    n = len(order)
    position = [-1] * count
    for k, i in enumerate(order):
        position[i] = k
    top = n * n - 1
    mask = 0
    for k, i in enumerate(order):
        base = top - k * n
        for j in succ[i]:
            p = position[j]
            if p >= 0:
                mask |= 1 << (base - p)
    return mask


def _cell_ops(ops: list, order: List[int], names: list, has_params: List[bool]) -> List[str]:
    """The ops of the vertices ``order``, ends renamed ``input``/``output``; checks each."""
    n = len(order)
    cell_ops = []
    for k, i in enumerate(order):
        op = ops[i]
        if has_params[i]:
            raise OutOfSearchSpaceError(
                f"layer {names[i]!r} has parameters; NAS-Bench-101 ops take none "
                f"(pass None as params)")
        if k == 0 or k == n - 1:
            cell_ops.append(INPUT if k == 0 else OUTPUT)
            continue
        if not (isinstance(op, str) and op in OP_LABEL):
            close = difflib.get_close_matches(op, OPS, n=1) if isinstance(op, str) else []
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise OutOfSearchSpaceError(
                f"layer {names[i]!r} has type {_label(op)!r}{hint}, which is not a "
                f"NAS-Bench-101 op; available ops: {list(OPS)} (plus 'input' and "
                f"'output' for the cell's ends)")
        cell_ops.append(op)
    return cell_ops


def _topological(succ: List[List[int]], pred: List[List[int]], names: list) -> List[int]:
    """All vertices in topological order, ties by index; raises on a cycle."""
    count = len(succ)
    indegree = [len(p) for p in pred]
    ready = [i for i in range(count) if indegree[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in succ[i]:
            indegree[j] -= 1
            if indegree[j] == 0:
                heapq.heappush(ready, j)
    if len(order) < count:
        cycle = _find_cycle(pred, {i for i in range(count) if indegree[i] > 0})
        arrow = " -> ".join(names[i] for i in cycle + cycle[:1])
        raise OutOfSearchSpaceError(f"the connections form a cycle ({arrow}); a "
                                    f"NAS-Bench-101 cell is acyclic")
    return order


def _find_cycle(pred: List[List[int]], left: set) -> List[int]:
    """One cycle among ``left`` (the vertices Kahn's algorithm could not order).

    Each of them has a predecessor among them, so walking predecessors from any
    of them must come back to a vertex already seen.
    """
    start = min(left)
    path = [start]
    seen = {start: 0}
    while True:
        nxt = next(j for j in pred[path[-1]] if j in left)
        if nxt in seen:
            cycle = path[seen[nxt]:][::-1]
            first = cycle.index(min(cycle))
            return cycle[first:] + cycle[:first]  # from the earliest-added layer
        seen[nxt] = len(path)
        path.append(nxt)
