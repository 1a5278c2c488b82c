"""NAS-Bench-201 cells from and to :class:`~nord.neural_nets.neural_descriptor.NeuralDescriptor`.

Descriptors: ops are nodes
--------------------------
In a descriptor the ops are *nodes* between one layer of type ``'IN'`` (state 0)
and one of type ``'OUT'`` (state 3); a node's input is the sum of the outputs of
its predecessors, as everywhere in NORD. :func:`descriptor_to_arch` turns that
into a cell (:mod:`~nord.neural_nets.benchmarks.nasbench201_cells`):

1. Only *active* layers count: those on a path from ``IN`` to ``OUT`` (the
   compiler prunes the others too, thesis Fig. 5.2). ``first_layer`` and
   ``last_layer`` are not used (listing 3.3 adds layers after ``OUT``).
2. A state is identified by the *set of op nodes that are summed into it*: the
   input state of every active op node (and of ``OUT``) is the set of its
   predecessors. ``{IN}`` is state 0, the predecessors of ``OUT`` are state 3,
   every other distinct set is an intermediate state. Op nodes that feed the
   same consumers therefore sum into one state.
3. Each op node becomes the edge from its input state to the one state its
   output is summed into. Ops on edges that no node represents are ``'none'``.
4. The two intermediate states are numbered in topological order (a state
   feeding the other one is state 1). If neither feeds the other, the
   numbering that gives the smaller cell code (ops as digits in string order,
   official op order) wins; a single intermediate state is state 1. The rule
   uses only the graph's structure and op types, never layer names or
   insertion order, so renamed or reordered (isomorphic) descriptors give
   the same cell.

It raises :class:`~nord.errors.OutOfSearchSpaceError`, saying why, when the
active graph is not such a cell: more than two intermediate states (e.g. a
chain of four ops, ``IN→1→2→3→4→OUT``, needs five states), an op whose
output is summed into two different states, ``IN`` summed together with op
outputs (or wired straight to ``OUT``: put a ``skip_connect`` node between),
two non-``'none'`` ops on the same edge, no ``IN``/``OUT`` layer or several.
Layer types outside :data:`~nord.neural_nets.benchmarks.nasbench201_cells.OPS`
raise :class:`~nord.errors.UnknownOpError` listing the available ops. Layer
params are ignored. If no path leads from ``IN`` to ``OUT`` every op is
inactive and the cell is the all-``'none'`` one.

:func:`arch_to_descriptor` writes the cell back with one node per edge,
``'none'`` edges included (names ``edge_<j>_<i>``), so that
string → descriptor → string is exact for all 15,625 cells. Without the
``'none'`` nodes (``none_nodes=False``) a state with no incoming op is not
representable and the round trip can land on an equivalent cell.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from nord.errors import CycleError, OutOfSearchSpaceError, UnknownOpError
from nord.neural_nets.benchmarks.nasbench201_cells import (EDGES, OP_INDEX, OPS, arch_code,
                                                           cell_tables, code_of_digits,
                                                           digits_of_code)

__all__ = ["IN_LAYER", "OUT_LAYER", "arch_to_descriptor", "descriptor_to_arch", "descriptor_code"]

IN_LAYER = "IN"
OUT_LAYER = "OUT"


def arch_to_descriptor(arch: str, none_nodes: bool = True):
    """A descriptor of the cell: ``IN``, one op node per edge, ``OUT``.

    Edge ``j → i`` is the node ``edge_<j>_<i>``; it reads ``IN`` (``j = 0``) or
    the nodes of the edges into state ``j``, and feeds the nodes of the edges
    out of state ``i`` (or ``OUT``). With ``none_nodes`` (the default) the
    ``'none'`` edges are nodes too, which makes
    ``descriptor_to_arch(arch_to_descriptor(s)) == s`` for every cell.
    """
    from nord.neural_nets.neural_descriptor import NeuralDescriptor

    digits = digits_of_code(arch_code(arch))
    d = NeuralDescriptor()
    d.add_layer(IN_LAYER, None, IN_LAYER)
    names: Dict[Tuple[int, int], str] = {}
    for (i, j), digit in zip(EDGES, digits):
        if digit or none_nodes:
            names[(j, i)] = d.add_layer(OPS[digit], None, f"edge_{j}_{i}")
    d.add_layer(OUT_LAYER, None, OUT_LAYER)
    for (j, i), name in names.items():
        if j == 0:
            d.connect_layers(IN_LAYER, name)
        else:
            for (k, t), feeder in names.items():
                if t == j:
                    d.connect_layers(feeder, name)
        if i == 3:
            d.connect_layers(name, OUT_LAYER)
    return d


def descriptor_to_arch(descriptor) -> str:
    """The official string of the cell a descriptor describes (rules in the module docs)."""
    return cell_tables()[0][descriptor_code(descriptor)]


def descriptor_code(descriptor) -> int:
    """Cell code of a descriptor; the hot path of :meth:`descriptor_evaluate`."""
    op_of, src, sink = _layer_roles(descriptor)
    active = _active_predecessors(descriptor.layers, descriptor.connections, src, sink)
    if active is None:
        return 0  # every op inactive: the all-'none' cell
    preds, act = active
    out_key, in_key, owner, inner = _states(descriptor, preds, act, src, sink)

    state = {src: 0, out_key: 3}
    if len(inner) == 1:
        state[inner[0]] = 1
    elif len(inner) == 2:
        a, b = inner
        a_to_b = b_to_a = False
        for o, key in in_key.items():
            if key == a and owner[o] == b:
                a_to_b = True
            elif key == b and owner[o] == a:
                b_to_a = True
        if a_to_b and b_to_a:
            raise _cycle_error(descriptor)
        if a_to_b or b_to_a:
            state[a], state[b] = (1, 2) if a_to_b else (2, 1)
        else:  # independent states: the smaller cell code wins
            state[a], state[b] = 1, 2
            first = _fill(descriptor, in_key, owner, state, op_of)
            state[a], state[b] = 2, 1
            second = _fill(descriptor, in_key, owner, state, op_of)
            return min(code_of_digits(first), code_of_digits(second))
    return code_of_digits(_fill(descriptor, in_key, owner, state, op_of))


def _layer_roles(descriptor) -> Tuple[Dict[str, int], str, str]:
    """``(op index of each op node, the IN layer, the OUT layer)``; checks every type."""
    layers = descriptor.layers
    op_of: Dict[str, int] = {}
    src = sink = None
    for name, spec in layers.items():
        layer = spec[0]
        if layer.__class__ is str:
            idx = OP_INDEX.get(layer)
            if idx is not None:
                op_of[name] = idx
                continue
            if layer == IN_LAYER:
                if src is not None:
                    raise OutOfSearchSpaceError(_roles_message(descriptor, IN_LAYER))
                src = name
                continue
            if layer == OUT_LAYER:
                if sink is not None:
                    raise OutOfSearchSpaceError(_roles_message(descriptor, OUT_LAYER))
                sink = name
                continue
        raise UnknownOpError(_unknown_op_message(name, layer), layers=[name])
    if src is None or sink is None:
        raise OutOfSearchSpaceError(_roles_message(descriptor, IN_LAYER if src is None
                                                   else OUT_LAYER))
    return op_of, src, sink


def _active_predecessors(layers, conns, src: str, sink: str
                         ) -> Optional[Tuple[Dict[str, List[str]], set]]:
    """``(predecessors of each layer reachable from IN, the active layers)``.

    Active layers are reachable from IN and reach OUT; ``None`` when OUT is
    not reachable (no layer is active).
    """
    empty: List[str] = []
    fwd = {src}
    stack = [src]
    while stack:
        for m in conns.get(stack.pop(), empty):
            if m not in fwd and m in layers:
                fwd.add(m)
                stack.append(m)
    if sink not in fwd:
        return None
    preds: Dict[str, List[str]] = {n: [] for n in fwd}
    for n in fwd:
        for m in conns.get(n, empty):
            if m in fwd:
                preds[m].append(n)
    act = {sink}
    stack = [sink]
    while stack:
        for p in preds[stack.pop()]:
            if p not in act:
                act.add(p)
                stack.append(p)
    return preds, act


def _states(descriptor, preds, act, src: str, sink: str):
    """The cell's states, each the set of op nodes summed into it.

    Returns ``(out_key, in_key, owner, inner)``: the output state, the input
    state of each active op node (``src`` for state 0), the state each op node
    is summed into, and the intermediate states (at most two).
    """
    out_key = frozenset(preds[sink])
    if src in out_key:
        raise OutOfSearchSpaceError(_direct_input_message(descriptor, sink, out_key, src))
    in_key: Dict[str, Any] = {}
    keys = {out_key}
    for o in act:
        if o == src or o == sink:
            continue
        ps = preds[o]
        if len(ps) == 1 and ps[0] == src:
            in_key[o] = src
        else:
            key = frozenset(ps)
            if src in key:
                raise OutOfSearchSpaceError(_direct_input_message(descriptor, o, key, src))
            in_key[o] = key
            keys.add(key)
    # Each op must be summed into exactly one state: the keys partition the ops.
    if sum(len(k) for k in keys) != len(in_key):
        raise OutOfSearchSpaceError(_split_output_message(descriptor, in_key, keys, out_key))
    owner: Dict[str, Any] = {}
    for key in keys:
        for o in key:
            owner[o] = key
    inner = [k for k in keys if k != out_key]
    if len(inner) > 2:
        raise OutOfSearchSpaceError(_too_many_states_message(inner))
    return out_key, in_key, owner, inner


def _fill(descriptor, in_key, owner, state, op_of) -> List[int]:
    digits = [0] * len(EDGES)
    taken: Dict[int, str] = {}
    for o, key in in_key.items():
        j = state[key]
        i = state[owner[o]]
        if j >= i:
            raise _cycle_error(descriptor)
        p = i * (i - 1) // 2 + j
        op = op_of[o]
        if p in taken:
            other = taken[p]
            if op and op_of[other]:
                first, second = sorted((other, o), key=str)
                raise OutOfSearchSpaceError(
                    f"op nodes {first!r} ({OPS[op_of[first]]}) and {second!r} "
                    f"({OPS[op_of[second]]}) "
                    f"both lie on the edge from state {j} to state {i}; a NAS-Bench-201 "
                    f"cell has one op per edge")
            if not op:
                continue  # a parallel 'none' adds nothing
        taken[p] = o
        digits[p] = op
    return digits


def _unknown_op_message(name: str, layer: Any) -> str:
    label = layer if isinstance(layer, str) else getattr(layer, "__name__", repr(layer))
    return (f"layer {name!r} has the type {label!r}, which is not a NAS-Bench-201 op; "
            f"the available ops are {list(OPS)} (get_available_ops()), plus "
            f"{IN_LAYER!r} and {OUT_LAYER!r} for the cell's input and output")


def _roles_message(descriptor, role: str) -> str:
    found = [n for n, s in descriptor.layers.items()
             if s.layer.__class__ is str and s.layer == role]
    if not found:
        return (f"the descriptor has no layer of type {role!r}; a NAS-Bench-201 cell runs "
                f"from one {IN_LAYER!r} layer to one {OUT_LAYER!r} layer")
    return (f"the descriptor has {len(found)} layers of type {role!r} ({found}); a "
            f"NAS-Bench-201 cell has exactly one")


def _names(nodes) -> str:
    return "{" + ", ".join(repr(n) for n in sorted(nodes, key=str)) + "}"


def _direct_input_message(descriptor, consumer: str, key, src: str) -> str:
    others = [n for n in key if n != src]
    if not others:
        return (f"{src!r} connects straight to {consumer!r}; in a NAS-Bench-201 cell the "
                f"input reaches the output only through ops: put a 'skip_connect' layer "
                f"between them")
    return (f"{consumer!r} sums {src!r} with the op outputs {_names(others)}; in a "
            f"NAS-Bench-201 cell the input state feeds ops only, so put a "
            f"'skip_connect' layer between {src!r} and {consumer!r}")


def _split_output_message(descriptor, in_key, keys, out_key) -> str:
    for o in sorted(in_key, key=str):
        into = [k for k in keys if o in k]
        if len(into) > 1:
            sums = "; ".join(("the output state " if k == out_key else "the sum ")
                             + _names(k) for k in sorted(into, key=_names))
            return (f"the output of op node {o!r} is summed into {len(into)} different "
                    f"states ({sums}); in a NAS-Bench-201 cell every op feeds exactly one "
                    f"state, so every layer {o!r} feeds must take the same inputs")
    return "the descriptor's op nodes do not form a NAS-Bench-201 cell"  # unreachable


def _too_many_states_message(inner) -> str:
    listed = ", ".join(_names(k) for k in sorted(inner, key=_names))
    return (f"the descriptor needs {len(inner) + 2} states (IN, {len(inner)} intermediate, "
            f"OUT) but the NAS-Bench-201 cell has 4 (IN, two intermediate, OUT); the "
            f"intermediate states are the sums of the op nodes {listed}. Use at most two "
            f"distinct input sums besides IN (e.g. a chain of at most three ops)")


def _cycle_error(descriptor) -> CycleError:
    from nord.neural_nets.graph import find_cycles

    cycles = find_cycles(descriptor)
    if cycles:
        cycle = cycles[0]
        return CycleError("connections form a cycle: " + " -> ".join(cycle + [cycle[0]]),
                          layers=cycle)
    return CycleError("the op nodes' states form a cycle")
