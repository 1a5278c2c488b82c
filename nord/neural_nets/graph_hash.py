"""Isomorphism-invariant graph hashes.

* :func:`nasbench101_hash` reproduces NAS-Bench-101's module hash
  (``graph_util.hash_module`` as ``ModelSpec.hash_spec`` calls it), so a cell
  can be looked up in the benchmark's tables by the same key.
* :func:`descriptor_hash` hashes a
  :class:`~nord.neural_nets.neural_descriptor.NeuralDescriptor` with
  :func:`graph_hash`.

:func:`wl_hash` is NAS-Bench-101's Weisfeiler-Lehman-style colour refinement
with MD5: each vertex starts from a hash of its (out-degree, in-degree, label),
then, once per vertex, takes the hash of its sorted in-neighbour hashes, its
sorted out-neighbour hashes and its own hash; the graph's hash is the MD5 of
the sorted vertex hashes. Its ``n`` rounds cost ``O(n * edges)``, and no
faster way gives the same values (a chain has about ``n**2 / 2`` distinct
vertex hashes along the way), so :func:`graph_hash` uses it only up to
:data:`EXACT_WL_MAX_VERTICES` vertices, which keeps every hash stored so far,
and :func:`refined_hash` above that: colours start from each vertex's
ancestor and descendant hashes (one pass each over the strongly connected
components in topological order) and are refined only until the partition
stops splitting, usually one round. That is
near-linear and tells graphs apart at least as well as :func:`wl_hash`.
Isomorphic graphs always get the same hash; two non-isomorphic graphs can
collide only if WL refinement cannot tell them apart (rare for small DAGs,
and accepted by NAS-Bench-101 itself).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any, List, Sequence, Tuple

from nord.errors import OutOfSearchSpaceError, SerializationError
from nord.neural_nets.graph import strongly_connected_components, active_nodes

__all__ = [
    "NASBENCH101_OPS",
    "EXACT_WL_MAX_VERTICES",
    "wl_hash",
    "refined_hash",
    "graph_hash",
    "prune_nasbench101",
    "nasbench101_hash",
    "descriptor_hash",
]

#: NAS-Bench-101's inner ops, in the order that gives their hash labels.
NASBENCH101_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")

Matrix = List[List[int]]


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _adjacency(n: int, edges: Sequence[Tuple[int, int]]):
    ins: List[List[int]] = [[] for _ in range(n)]
    outs: List[List[int]] = [[] for _ in range(n)]
    for src, dst in edges:
        outs[src].append(dst)
        ins[dst].append(src)
    return ins, outs


def _initial(labels: Sequence[Any], ins, outs) -> List[str]:
    return [_md5(str((len(outs[v]), len(ins[v]), labels[v]))) for v in range(len(labels))]


def wl_hash(labels: Sequence[Any], edges: Sequence[Tuple[int, int]]) -> str:
    """MD5 Weisfeiler-Lehman hash of a directed graph with labelled vertices.

    Vertex ``i`` carries ``labels[i]``; ``edges`` holds distinct ``(src, dst)``
    index pairs. This is NAS-Bench-101's ``hash_module`` for any labels whose
    ``str`` is deterministic; it takes ``O(n * edges)`` time (see module docs).
    """
    n = len(labels)
    ins, outs = _adjacency(n, edges)
    hashes = _initial(labels, ins, outs)
    md5, join = hashlib.md5, "".join
    # Vertices with at most one in- and one out-neighbour need no sorting.
    simple = [(v, ins[v][0] if ins[v] else None, outs[v][0] if outs[v] else None)
              for v in range(n) if len(ins[v]) <= 1 and len(outs[v]) <= 1]
    general = [(v, ins[v], outs[v]) for v in range(n) if len(ins[v]) > 1 or len(outs[v]) > 1]
    for _ in range(n):
        h = hashes
        hashes = [""] * n
        for v, a, b in simple:
            hashes[v] = md5(((h[a] if a is not None else "") + "|"
                             + (h[b] if b is not None else "") + "|" + h[v]
                             ).encode()).hexdigest()
        for v, sources, destinations in general:
            hashes[v] = md5((join(sorted([h[w] for w in sources])) + "|"
                             + join(sorted([h[w] for w in destinations])) + "|" + h[v]
                             ).encode()).hexdigest()
    return _md5(str(sorted(hashes)))


#: :func:`graph_hash` uses :func:`wl_hash` up to this many vertices (about
#: 0.3 s for a 512-layer chain), :func:`refined_hash` above.
EXACT_WL_MAX_VERTICES = 512


def _above(colours: List[str], into: List[List[int]], components: List[List[int]],
           component: List[int], cyclic: List[bool]) -> List[str]:
    """Per vertex, a hash of everything with a path into it (``into``: its sources).

    ``components`` are the strongly connected components, each after every
    component it has a path to, so reading them backwards visits sources
    first. A cyclic component counts as one unit: its members' colours and
    what feeds it from outside.
    """
    md5, join = hashlib.md5, "".join
    above = [""] * len(colours)
    for k in reversed(range(len(components))):
        members = components[k]
        if not cyclic[k]:
            (v,) = members
            above[v] = md5((colours[v] + join(sorted([above[w] for w in into[v]]))
                            ).encode()).hexdigest()
            continue
        feeders = sorted([above[w] for v in members for w in into[v] if component[w] != k])
        unit = _md5("cycle|" + join(sorted([colours[v] for v in members])) + "|"
                    + join(feeders))
        for v in members:
            above[v] = _md5(colours[v] + "@" + unit)
    return above


def _components(n: int, succ: List[List[int]]):
    """``(components, component of each vertex, whether each is cyclic)``."""
    components = strongly_connected_components(range(n), succ)  # a component after its successors
    component = [0] * n
    for k, members in enumerate(components):
        for v in members:
            component[v] = k
    cyclic = [len(members) > 1 for members in components]
    for v in range(n):
        if v in succ[v]:
            cyclic[component[v]] = True
    return components, component, cyclic


def refined_hash(labels: Sequence[Any], edges: Sequence[Tuple[int, int]]) -> str:
    """Near-linear isomorphism-invariant hash of a labelled directed graph.

    Same inputs as :func:`wl_hash`, other values. Each vertex starts from its
    (out-degree, in-degree, label) hash combined with the hash of everything
    above it and of everything below it, computed in one pass each over the
    strongly connected components in topological order (for a DAG, vertex by
    vertex). Then WL rounds (own colour, sorted in-neighbour and out-neighbour
    colours) run until the number of distinct colours stops growing, i.e. the
    partition is stable: one round for a chain or a typical network; only the
    inside of a long cycle needs more (up to ``n``). The result collides
    whenever :func:`wl_hash` would, never more often.
    """
    n = len(labels)
    ins, outs = _adjacency(n, edges)
    colours = _initial(labels, ins, outs)
    md5, join = hashlib.md5, "".join
    components, component, cyclic = _components(n, outs)
    up = _above(colours, ins, components, component, cyclic)
    reverse = components[::-1]  # each component after those with a path to it
    down = _above(colours, outs, reverse, [len(components) - 1 - k for k in component],
                  cyclic[::-1])
    colours = [_md5(colours[v] + up[v] + down[v]) for v in range(n)]
    count = len(set(colours))
    for _ in range(n):
        c = colours
        colours = [md5((c[v] + "|" + join(sorted([c[w] for w in ins[v]])) + "|"
                        + join(sorted([c[w] for w in outs[v]]))).encode()).hexdigest()
                   for v in range(n)]
        previous, count = count, len(set(colours))
        if count == previous:
            break
    return _md5("nord-refined-1|" + join(sorted(colours)))


def graph_hash(labels: Sequence[Any], edges: Sequence[Tuple[int, int]]) -> str:
    """:func:`wl_hash` up to :data:`EXACT_WL_MAX_VERTICES` vertices, else :func:`refined_hash`.

    The switch depends only on the vertex count, so isomorphic graphs still
    always hash alike.
    """
    if len(labels) <= EXACT_WL_MAX_VERTICES:
        return wl_hash(labels, edges)
    return refined_hash(labels, edges)


# ---------------------------------------------------------------- NAS-Bench-101
def _as_matrix(matrix: Any) -> Matrix:
    """A list-of-lists 0/1 int copy of ``matrix``; raises if it is not square 0/1."""
    rows = matrix.tolist() if hasattr(matrix, "tolist") else matrix
    try:
        rows = [list(row) for row in rows]
    except TypeError as error:
        raise OutOfSearchSpaceError(
            f"the adjacency matrix must be a square 0/1 matrix (nested lists or a "
            f"numpy array), got {type(matrix).__name__}") from error
    n = len(rows)
    if any(len(row) != n for row in rows):
        raise OutOfSearchSpaceError(
            f"the adjacency matrix must be square, got row lengths "
            f"{[len(r) for r in rows]} for {n} rows")
    out = []
    for i, row in enumerate(rows):
        for j, x in enumerate(row):
            if isinstance(x, str) or not (x == 0 or x == 1):
                raise OutOfSearchSpaceError(
                    f"adjacency matrix entry [{i}][{j}] is {x!r}; entries must be 0 or 1")
            if x and j <= i:
                raise OutOfSearchSpaceError(
                    f"adjacency matrix entry [{i}][{j}] is 1 but the matrix must be "
                    f"strictly upper triangular (edges go from a lower to a higher "
                    f"vertex index); order the vertices topologically")
        out.append([int(x) for x in row])
    return out


def _check_ops(ops: Sequence[str], n: int) -> List[str]:
    ops = list(ops)
    if len(ops) != n:
        raise OutOfSearchSpaceError(
            f"{len(ops)} ops for a {n}x{n} matrix; give one op per vertex")
    if n < 2 or ops[0] != "input" or ops[-1] != "output":
        raise OutOfSearchSpaceError(
            f"ops must start with 'input' and end with 'output', got {ops}")
    for i, op in enumerate(ops[1:-1], start=1):
        if op not in NASBENCH101_OPS:
            raise OutOfSearchSpaceError(
                f"op {i} is {op!r}, which is not a NAS-Bench-101 op; use one of "
                f"{list(NASBENCH101_OPS)}")
    return ops


def _reach(start: int, neighbours: List[List[int]]) -> set:
    seen, stack = {start}, [start]
    while stack:
        for v in neighbours[stack.pop()]:
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return seen


def prune_nasbench101(matrix: Any, ops: Sequence[str]) -> Tuple[Matrix, List[str]]:
    """Drop vertices not on an input→output path, as NAS-Bench-101's ``ModelSpec`` does.

    Returns ``(matrix, ops)`` as a list-of-lists and a list; a pruned cell
    comes back unchanged. Raises :class:`OutOfSearchSpaceError` if the cell is
    not a valid NAS-Bench-101 cell or its input does not reach its output.
    """
    m = _as_matrix(matrix)
    ops = _check_ops(ops, len(m))
    n = len(m)
    outs = [[j for j in range(n) if m[i][j]] for i in range(n)]
    ins = [[i for i in range(n) if m[i][j]] for j in range(n)]
    keep = sorted(_reach(0, outs) & _reach(n - 1, ins))
    if 0 not in keep or n - 1 not in keep:
        raise OutOfSearchSpaceError(
            "no path leads from the input vertex to the output vertex; connect them")
    return [[m[i][j] for j in keep] for i in keep], [ops[i] for i in keep]


def nasbench101_hash(matrix: Any, ops: Sequence[str]) -> str:
    """NAS-Bench-101's hash of a cell: the key of its rows in the benchmark.

    ``matrix`` is the upper-triangular 0/1 adjacency matrix (row = source),
    ``ops`` ``['input', <inner ops>..., 'output']``. The cell is pruned first,
    as ``ModelSpec`` does, so an unpruned cell hashes like its pruned form.
    """
    m, ops = prune_nasbench101(matrix, ops)
    labels = [-1] + [NASBENCH101_OPS.index(op) for op in ops[1:-1]] + [-2]
    edges = [(i, j) for i, row in enumerate(m) for j, x in enumerate(row) if x]
    return wl_hash(labels, edges)


# ---------------------------------------------------------------- descriptors
def _canonical_value(value: Any, where: str) -> Any:
    """A JSON-ready value: tuples as lists, classes as ``{"__class__": path}``."""
    from nord.neural_nets.serialization import class_path

    if isinstance(value, (list, tuple)):
        return [_canonical_value(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _canonical_value(v, where) for k, v in value.items()}
    if inspect.isclass(value):
        return {"__class__": class_path(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise SerializationError(
        f"{where} = {value!r:.60} ({type(value).__name__}) has no canonical text to "
        f"hash; use numbers, strings, booleans, None, lists, tuples, dicts or classes")


def _node_label(descriptor, name: str) -> str:
    from nord.neural_nets.serialization import class_path

    spec = descriptor.layers[name]
    roles = [r for r, n in (("input", descriptor.first_layer),
                            ("output", descriptor.last_layer)) if n == name]
    if isinstance(spec.layer, str):
        reference = spec.layer
    elif inspect.isclass(spec.layer):
        reference = class_path(spec.layer)
    else:
        raise SerializationError(
            f"layer {name!r} has the type {spec.layer!r:.60}, which is neither an op "
            f"string nor a class; pass the class itself, not an instance")
    params = _canonical_value(spec.params, f"layer {name!r} params")
    return f"{'+'.join(roles)}|{reference}|{json.dumps(params, sort_keys=True)}"


def descriptor_hash(descriptor) -> str:
    """Canonical MD5 hash of a descriptor's active subgraph.

    Uses the layers on a path from ``first_layer`` to ``last_layer``
    (:func:`~nord.neural_nets.graph.active_nodes`), or every layer if there is
    no such path. Each node is labelled ``role|layer type|params`` (role
    ``input``/``output``/empty; params as sorted-key JSON with tuples as lists
    and classes as their import path), then hashed with :func:`graph_hash`
    (like NAS-Bench-101's cells up to :data:`EXACT_WL_MAX_VERTICES` layers,
    near-linear above). The hash ignores layer
    names and insertion order, so isomorphic descriptors always collide;
    different ones collide only when WL refinement cannot tell them apart.
    Raises :class:`~nord.errors.SerializationError` for a param with no
    canonical text (a tensor, a function).
    """
    nodes = active_nodes(descriptor) or list(descriptor.layers)
    index = {name: i for i, name in enumerate(nodes)}
    labels = [_node_label(descriptor, name) for name in nodes]
    edges = {(index[src], index[dst]) for src, dst in descriptor.edges()
             if src in index and dst in index}
    return graph_hash(labels, sorted(edges))
