"""NAS-Bench-201 (NATS-Bench topology space) lookups: :class:`NATSBench_Evaluator`.

NAS-Bench-201 trained every cell of a small, fixed search space and published
the results; a NAS method can then "evaluate" an architecture by looking it up
instead of training it (thesis §3.2.1, listing 3.3)::

    ne = NATSBench_Evaluator()                    # reads nb201_tables.csv
    d = NeuralDescriptor()
    d.add_layer("IN", None, "IN")
    d.add_layer_sequential("nor_conv_3x3", None, "1")
    ...
    d.add_layer_sequential("OUT", None, "OUT")
    val, test = ne.descriptor_evaluate(d, metrics=['validation_accuracy', 'test_accuracy'])

The cell
--------
A cell has four *states* (feature maps) 0..3 and one op on every edge ``j → i``
(``j < i``), six edges in all, each op one of :data:`OPS`. State 0 is the cell's
input, state ``i`` the sum of its incoming edges, state 3 the output. The
official string lists, for states 1, 2 and 3, the op on each incoming edge::

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|

so there are 5⁶ = 15,625 cells, each a row of the table (official index order).

Descriptors: ops are nodes
--------------------------
In a :class:`~nord.neural_nets.neural_descriptor.NeuralDescriptor` the ops are
*nodes* between one layer of type ``'IN'`` (state 0) and one of type ``'OUT'``
(state 3); a node's input is the sum of the outputs of its predecessors, as
everywhere in NORD. :func:`descriptor_to_arch` turns that into a cell:

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
Layer types outside :data:`OPS` raise :class:`~nord.errors.UnknownOpError`
listing the available ops. Layer params are ignored. If no path leads from
``IN`` to ``OUT`` every op is inactive and the cell is the all-``'none'`` one.

:func:`arch_to_descriptor` writes the cell back with one node per edge,
``'none'`` edges included (names ``edge_<j>_<i>``), so that
string → descriptor → string is exact for all 15,625 cells. Without the
``'none'`` nodes (``none_nodes=False``) a state with no incoming op is not
representable and the round trip can land on an equivalent cell.

Isomorphic cells
----------------
Different strings can describe the same computation (an op that only sees a
zero state, ``skip_connect`` passing its input on, two parallel intermediate
states swapped). The benchmark trained each string separately, so such cells
are different rows with different numbers, and lookups are by string (after
the conversion above). :func:`isomorphism_key` reproduces NAS-Bench-201's own
rule, ``to_unique_str(consider_zero=True)``, which splits the 15,625 cells into
the benchmark's 6,466 classes; :meth:`NATSBench_Evaluator.isomorphism_class`
lists the indices of a cell's class.

Metrics, datasets and table columns
-----------------------------------
Accuracies are percentages (seed means); ``params`` is in millions. Datasets
follow NAS-Bench-201: ``cifar10-valid`` trains on half of the CIFAR-10
training set and validates on the other half (``x-valid``), its test accuracy
is on the CIFAR-10 test set; ``cifar10`` trains on the whole training set and
so has no validation accuracy, only the test set (``ori-test``); for
``cifar100`` and ``ImageNet16-120`` validation and test are the two halves of
the original test set (``x-valid``, ``x-test``).

==================  ======  =============================  ============================
dataset             epochs  ``validation_accuracy``        ``test_accuracy``
==================  ======  =============================  ============================
``cifar10-valid``   200     ``cifar10_valid_valid_200ep``  ``cifar10_valid_test_200ep``
``cifar10-valid``   12      ``cifar10_valid_valid_12ep``   --
``cifar10``         200     -- (no validation split)       ``cifar10_test_200ep``
``cifar10``         12      -- (no validation split)       ``cifar10_test_12ep``
``cifar100``        200     --                             ``cifar100_test_200ep``
``cifar100``        12      ``cifar100_valid_12ep``        ``cifar100_test_12ep``
``ImageNet16-120``  200     --                             ``imagenet16_test_200ep``
``ImageNet16-120``  12      ``imagenet16_valid_12ep``      ``imagenet16_test_12ep``
==================  ======  =============================  ============================

``params`` (``params_M``, the CIFAR-10 network) is there for ``cifar10-valid``
and ``cifar10`` at either epoch count. A combination marked ``--``, or any
other metric (``time_cost``, ``latency``, losses), raises
:class:`MetricNotAvailableError` listing what the loaded table holds. Those
come from the official NATS-Bench files through the optional ``nats_bench``
package: :meth:`NATSBench_Evaluator.from_nats_bench` (metrics
:data:`NATS_METRICS`; ``time_cost`` is the thesis's training time plus one
validation pass, ``train-all-time + valid-per-time``).

Finding the table
-----------------
``path`` if given (a CSV file, or a folder holding ``nb201_tables.csv`` or
``nasbench201/nb201_tables.csv``); else ``$NORD_DATA/nasbench201/nb201_tables.csv``;
else the user cache ``<cache>/nasbench201/nb201_tables.csv`` where ``<cache>`` is
``$NORD_CACHE``, ``$XDG_CACHE_HOME/nord`` or ``~/.cache/nord``.
"""

from __future__ import annotations

import csv
import itertools
import math
import operator
import os
from pathlib import Path
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple,
                    Union)

from nord.errors import (
    CycleError,
    DataNotFoundError,
    MetricNotAvailableError,
    MissingDependencyError,
    NordError,
    NotInTableError,
    OutOfSearchSpaceError,
    UnknownDatasetError,
    UnknownOpError,
)

__all__ = [
    "NATSBench_Evaluator",
    "MetricNotAvailableError",
    "OPS",
    "DATASETS",
    "EPOCHS",
    "TABLE_COLUMNS",
    "NATS_METRICS",
    "TABLE_FILENAME",
    "arch_to_ops",
    "ops_to_arch",
    "arch_to_descriptor",
    "descriptor_to_arch",
    "isomorphism_key",
    "default_table_paths",
]

#: The edge ops, in the official order (``get_available_ops()``).
OPS: Tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                        "avg_pool_3x3")
IN_LAYER = "IN"
OUT_LAYER = "OUT"
#: NAS-Bench-201's dataset names.
DATASETS: Tuple[str, ...] = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
#: Its two training schedules.
EPOCHS: Tuple[int, ...] = (12, 200)
TABLE_FILENAME = "nb201_tables.csv"
TABLE_SUBDIR = "nasbench201"
OFFICIAL_SOURCE = ("the NAS-Bench-201 / NATS-Bench official release "
                   "(https://github.com/D-X-Y/NATS-Bench: NATS-tss-v1_0-3ffb9-simple, or "
                   "NAS-Bench-201-v1_1-096897.pth)")

#: (metric, dataset, epochs) → column of ``nb201_tables.csv``.
TABLE_COLUMNS: Dict[Tuple[str, str, int], str] = {
    ("validation_accuracy", "cifar10-valid", 200): "cifar10_valid_valid_200ep",
    ("test_accuracy", "cifar10-valid", 200): "cifar10_valid_test_200ep",
    ("test_accuracy", "cifar10", 200): "cifar10_test_200ep",
    ("test_accuracy", "cifar100", 200): "cifar100_test_200ep",
    ("test_accuracy", "ImageNet16-120", 200): "imagenet16_test_200ep",
    ("validation_accuracy", "cifar10-valid", 12): "cifar10_valid_valid_12ep",
    ("test_accuracy", "cifar10", 12): "cifar10_test_12ep",
    ("validation_accuracy", "cifar100", 12): "cifar100_valid_12ep",
    ("test_accuracy", "cifar100", 12): "cifar100_test_12ep",
    ("validation_accuracy", "ImageNet16-120", 12): "imagenet16_valid_12ep",
    ("test_accuracy", "ImageNet16-120", 12): "imagenet16_test_12ep",
    ("params", "cifar10-valid", 200): "params_M",
    ("params", "cifar10-valid", 12): "params_M",
    ("params", "cifar10", 200): "params_M",
    ("params", "cifar10", 12): "params_M",
}
_METRIC_ORDER = ("validation_accuracy", "test_accuracy", "params")

#: Metrics of the ``nats_bench`` backend: name → (source, key).
NATS_METRICS: Dict[str, Tuple[str, str]] = {
    "validation_accuracy": ("more", "valid-accuracy"),
    "test_accuracy": ("more", "test-accuracy"),
    "train_accuracy": ("more", "train-accuracy"),
    "train_loss": ("more", "train-loss"),
    "validation_loss": ("more", "valid-loss"),
    "test_loss": ("more", "test-loss"),
    "time_cost": ("more", "train-all-time+valid-per-time"),
    "latency": ("cost", "latency"),
    "params": ("cost", "params"),
    "flops": ("cost", "flops"),
}

_OP_INDEX = {op: i for i, op in enumerate(OPS)}
#: Edges in string order: (to, from) = (i, j).
_EDGES: Tuple[Tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
_N_CELLS = len(OPS) ** len(_EDGES)
_WEIGHTS = tuple(len(OPS) ** (len(_EDGES) - 1 - p) for p in range(len(_EDGES)))
_ALL_NONE = (0,) * len(_EDGES)


def _pos(j: int, i: int) -> int:
    """String position of edge ``j → i``."""
    return i * (i - 1) // 2 + j


# ------------------------------------------------------------------ cell strings
_STRINGS: Optional[List[str]] = None
_CODE_OF: Optional[Dict[str, int]] = None


def _tables() -> Tuple[List[str], Dict[str, int]]:
    """All 15,625 official strings by cell code, and string → code (built once)."""
    global _STRINGS, _CODE_OF
    if _STRINGS is None:
        strings = [_format(digits) for digits in itertools.product(range(len(OPS)),
                                                                   repeat=len(_EDGES))]
        _CODE_OF = {s: c for c, s in enumerate(strings)}
        _STRINGS = strings
    return _STRINGS, _CODE_OF


def _format(digits: Sequence[int]) -> str:
    o = [OPS[d] for d in digits]
    return (f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|")


def _code(digits: Sequence[int]) -> int:
    return sum(d * w for d, w in zip(digits, _WEIGHTS))


def _digits(code: int) -> Tuple[int, ...]:
    return tuple((code // w) % len(OPS) for w in _WEIGHTS)


def _arch_code(arch: str) -> int:
    """Cell code of an arch string (any edge order inside a state is accepted)."""
    code = _tables()[1].get(arch) if isinstance(arch, str) else None
    if code is None:
        code = _code(_parse_slow(arch))
    return code


def _parse_slow(arch: Any) -> Tuple[int, ...]:
    """Digits of an arch string, with a precise error for a malformed one."""
    example = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
    if not isinstance(arch, str):
        raise TypeError(f"a NAS-Bench-201 cell string is a str like {example!r}, "
                        f"got {type(arch).__name__}")
    groups = arch.split("+")
    if len(groups) != 3:
        raise OutOfSearchSpaceError(
            f"{arch!r} is not a NAS-Bench-201 cell string: it needs 3 '+'-separated "
            f"groups (states 1, 2, 3), like {example!r}, got {len(groups)}")
    digits = [None] * len(_EDGES)
    for i, group in enumerate(groups, start=1):
        if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
            raise OutOfSearchSpaceError(
                f"{arch!r}: group {i} ({group!r}) must be '|'-delimited, like {example!r}")
        items = group[1:-1].split("|")
        seen = set()
        for item in items:
            op, sep, source = item.partition("~")
            if not sep or not source.isdigit():
                raise OutOfSearchSpaceError(
                    f"{arch!r}: {item!r} in group {i} is not 'op~<input state>'")
            j = int(source)
            if op not in _OP_INDEX:
                raise UnknownOpError(
                    f"{arch!r}: op {op!r} is not a NAS-Bench-201 op; the available ops "
                    f"are {list(OPS)}")
            if j >= i:
                raise OutOfSearchSpaceError(
                    f"{arch!r}: state {i} cannot take input from state {j}; state {i} "
                    f"reads states 0..{i - 1}")
            if j in seen:
                raise OutOfSearchSpaceError(
                    f"{arch!r}: state {i} lists input state {j} twice; NAS-Bench-201 "
                    f"has one op per edge")
            seen.add(j)
            digits[_pos(j, i)] = _OP_INDEX[op]
        if len(seen) != i:
            missing = sorted(set(range(i)) - seen)
            raise OutOfSearchSpaceError(
                f"{arch!r}: state {i} lists no op for input state(s) {missing}; give "
                f"every edge an op ('none' for no edge), like {example!r}")
    return tuple(digits)


def arch_to_ops(arch: str) -> Tuple[str, ...]:
    """The six ops of a cell string, in string order.

    The order is that of the edges 0→1, 0→2, 1→2, 0→3, 1→3, 2→3.
    """
    return tuple(OPS[d] for d in _digits(_arch_code(arch)))


def ops_to_arch(ops: Sequence[str]) -> str:
    """The official string of six ops given in string order (see :func:`arch_to_ops`)."""
    ops = list(ops)
    if len(ops) != len(_EDGES):
        raise OutOfSearchSpaceError(f"a NAS-Bench-201 cell has {len(_EDGES)} edges, "
                                    f"got {len(ops)} ops")
    for op in ops:
        if op not in _OP_INDEX:
            raise UnknownOpError(f"op {op!r} is not a NAS-Bench-201 op; the available "
                                 f"ops are {list(OPS)}")
    return _format([_OP_INDEX[op] for op in ops])


def isomorphism_key(arch: str) -> str:
    """NAS-Bench-201's key for cells that compute the same function.

    Equivalent to NAS-Bench-201's ``to_unique_str(consider_zero=True)``: each
    state is the sorted ``+``-join of its incoming terms, ``skip_connect``
    passes its input's term on, other ops wrap it as ``(term)@op``, and
    ``'none'`` (or an input state whose term is the single zero ``#``) gives
    ``#``. Zero terms stay in the sums, as in the original, so the key does not
    merge every isomorphic pair (e.g. swapped intermediate states); over the
    15,625 cells it yields the benchmark's 6,466 classes.
    """
    digits = _digits(_arch_code(arch))
    terms = ["0"]
    for i in (1, 2, 3):
        parts = []
        for j in range(i):
            op = OPS[digits[_pos(j, i)]]
            term = terms[j]
            if op == "none" or term == "#":
                parts.append("#")
            elif op == "skip_connect":
                parts.append(term)
            else:
                parts.append(f"({term})@{op}")
        terms.append("+".join(sorted(parts)))
    return terms[3]


# ------------------------------------------------------------------ descriptors
def arch_to_descriptor(arch: str, none_nodes: bool = True):
    """A descriptor of the cell: ``IN``, one op node per edge, ``OUT``.

    Edge ``j → i`` is the node ``edge_<j>_<i>``; it reads ``IN`` (``j = 0``) or
    the nodes of the edges into state ``j``, and feeds the nodes of the edges
    out of state ``i`` (or ``OUT``). With ``none_nodes`` (the default) the
    ``'none'`` edges are nodes too, which makes
    ``descriptor_to_arch(arch_to_descriptor(s)) == s`` for every cell.
    """
    from nord.neural_nets.neural_descriptor import NeuralDescriptor

    digits = _digits(_arch_code(arch))
    d = NeuralDescriptor()
    d.add_layer(IN_LAYER, None, IN_LAYER)
    names: Dict[Tuple[int, int], str] = {}
    for (i, j), digit in zip(_EDGES, digits):
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
    return _tables()[0][_descriptor_code(descriptor)]


def _descriptor_code(descriptor) -> int:
    """Cell code of a descriptor; the hot path of :meth:`descriptor_evaluate`."""
    layers = descriptor.layers
    conns = descriptor.connections
    op_of: Dict[str, int] = {}
    src = sink = None
    for name, spec in layers.items():
        layer = spec[0]
        if layer.__class__ is str:
            idx = _OP_INDEX.get(layer)
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

    # Active layers: reachable from IN and reaching OUT.
    empty: List[str] = []
    fwd = {src}
    stack = [src]
    while stack:
        for m in conns.get(stack.pop(), empty):
            if m not in fwd and m in layers:
                fwd.add(m)
                stack.append(m)
    if sink not in fwd:
        return 0  # every op inactive: the all-'none' cell
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

    # States: the set of nodes summed into each consumer.
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
            return min(_code(first), _code(second))
    return _code(_fill(descriptor, in_key, owner, state, op_of))


def _fill(descriptor, in_key, owner, state, op_of) -> List[int]:
    digits = [0] * len(_EDGES)
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


# ------------------------------------------------------------------ data location
def _cache_root() -> Path:
    configured = os.environ.get("NORD_CACHE")
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "nord"
    return Path.home() / ".cache" / "nord"


def default_table_paths() -> List[Path]:
    """Where the table is looked for when no path is given, in order."""
    paths = []
    if os.environ.get("NORD_DATA"):
        paths.append(Path(os.environ["NORD_DATA"]).expanduser() / TABLE_SUBDIR
                     / TABLE_FILENAME)
    paths.append(_cache_root() / TABLE_SUBDIR / TABLE_FILENAME)
    return paths


def _find_table(path: Optional[os.PathLike]) -> Path:
    if path is not None:
        given = Path(path).expanduser()
        candidates = ([given / TABLE_FILENAME, given / TABLE_SUBDIR / TABLE_FILENAME]
                      if given.is_dir() else [given])
    else:
        candidates = default_table_paths()
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise DataNotFoundError(
        f"the NAS-Bench-201 table {TABLE_FILENAME} was not found (tried: {tried}). "
        f"Pass path= the CSV, or set NORD_DATA to the folder holding "
        f"{TABLE_SUBDIR}/{TABLE_FILENAME}, or place it in "
        f"{_cache_root() / TABLE_SUBDIR}. The data come from {OFFICIAL_SOURCE}; with the "
        f"official files use NATSBench_Evaluator.from_nats_bench(path) "
        f"(pip install nats_bench)")


# ------------------------------------------------------------------ backends
class _Table:
    """The CSV backend: rows in file order, metric columns as lists of floats."""

    name = "table"

    def __init__(self, path: Path):
        self.source = str(path)
        strings, code_of = _tables()
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            try:
                header = next(reader)
            except StopIteration:
                raise DataNotFoundError(f"{path} is empty; expected a CSV with a header "
                                        f"line (index,arch_str,<metric columns>)") from None
            except (csv.Error, UnicodeDecodeError) as error:
                raise DataNotFoundError(f"{path}, line 1: not a CSV header ({error})") from None
            header = [h.strip() for h in header]
            for required in ("index", "arch_str"):
                if required not in header:
                    raise DataNotFoundError(
                        f"{path}, line 1: the header lacks the column {required!r} "
                        f"(it has {header}); the table needs index, arch_str and metric "
                        f"columns such as {sorted(set(TABLE_COLUMNS.values()))}")
            dup = sorted({h for h in header if header.count(h) > 1})
            if dup:
                raise DataNotFoundError(f"{path}, line 1: column(s) {dup} appear twice")
            known = set(TABLE_COLUMNS.values())
            metric_cols = [h for h in header if h in known]
            if not metric_cols:
                raise DataNotFoundError(
                    f"{path}, line 1: no metric column; expected some of {sorted(known)}, "
                    f"got {header}")
            at = {h: k for k, h in enumerate(header)}
            i_index, i_arch = at["index"], at["arch_str"]
            value_at = [(c, at[c]) for c in metric_cols]
            width = len(header)
            columns: Dict[str, List[float]] = {c: [] for c in metric_cols}
            appenders = [(c, k, columns[c].append) for c, k in value_at]
            indices: List[int] = []
            archs: List[str] = []
            row_of_index: Dict[int, int] = {}
            row_of_code = [-1] * _N_CELLS
            line_of_row: List[int] = []
            try:
                for fields in reader:
                    line = reader.line_num
                    if not fields:
                        continue
                    if len(fields) != width:
                        raise DataNotFoundError(
                            f"{path}, line {line}: {len(fields)} fields, the header has "
                            f"{width}")
                    text = fields[i_index].strip()
                    try:
                        index = int(text)
                    except ValueError:
                        index = -1
                    if index < 0:
                        raise DataNotFoundError(
                            f"{path}, line {line}: index {text!r} is not a non-negative "
                            f"integer")
                    if index in row_of_index:
                        raise DataNotFoundError(
                            f"{path}, line {line}: duplicate index {index} (already on "
                            f"line {line_of_row[row_of_index[index]]})")
                    arch = fields[i_arch].strip()
                    code = code_of.get(arch)
                    if code is None:
                        try:
                            code = _code(_parse_slow(arch))
                        except (OutOfSearchSpaceError, UnknownOpError, TypeError) as error:
                            raise DataNotFoundError(
                                f"{path}, line {line}: bad arch_str: {error}") from None
                        arch = strings[code]
                    if row_of_code[code] >= 0:
                        raise DataNotFoundError(
                            f"{path}, line {line}: duplicate arch_str {arch!r} (already "
                            f"on line {line_of_row[row_of_code[code]]})")
                    for column, k, append in appenders:
                        cell = fields[k]
                        try:
                            value = float(cell)
                        except ValueError:
                            value = math.nan
                        if not math.isfinite(value):
                            raise DataNotFoundError(
                                f"{path}, line {line}: column {column!r} holds {cell!r}, "
                                f"not a finite number")
                        append(value)
                    row = len(indices)
                    row_of_index[index] = row
                    row_of_code[code] = row
                    indices.append(index)
                    archs.append(arch)
                    line_of_row.append(line)
            except csv.Error as error:
                raise DataNotFoundError(f"{path}, line {reader.line_num}: {error}") from None
            except UnicodeDecodeError as error:
                raise DataNotFoundError(f"{path}: not UTF-8 text ({error})") from None
        if not indices:
            raise DataNotFoundError(f"{path} holds a header but no rows")
        self.indices = indices
        self.archs = archs
        self.row_of_index = row_of_index
        self.row_of_code = row_of_code
        self.columns = columns
        self.available = {key: col for key, col in TABLE_COLUMNS.items() if col in columns}

    def fetcher(self, metrics: Tuple[str, ...], dataset: str, epochs: int
                ) -> Callable[[int], List[float]]:
        cols = []
        for metric in metrics:
            column = self.available.get((metric, dataset, epochs))
            if column is None:
                raise MetricNotAvailableError(self._missing(metric, dataset, epochs))
            cols.append(self.columns[column])
        if len(cols) == 1:
            only = cols[0]
            return lambda row: [only[row]]
        return lambda row: [col[row] for col in cols]

    def holds(self) -> str:
        parts = []
        for metric in _METRIC_ORDER:
            combos = [(d, e) for (m, d, e) in self.available if m == metric]
            if not combos:
                continue
            by_ds = []
            for ds in DATASETS:
                eps = sorted(e for d, e in combos if d == ds)
                if eps:
                    by_ds.append(f"{ds} @ " + "/".join(str(e) for e in eps))
            parts.append(f"{metric} ({', '.join(by_ds)})")
        return "; ".join(parts)

    def _missing(self, metric: str, dataset: str, epochs: int) -> str:
        why = ""
        if metric not in _METRIC_ORDER:
            why = f"it has no metric {metric!r}"
            if metric in NATS_METRICS:
                why += (" (that one needs the official NATS-Bench files: "
                        "NATSBench_Evaluator.from_nats_bench(path), pip install nats_bench)")
        elif metric == "validation_accuracy" and dataset == "cifar10":
            why = ("'cifar10' trains on the whole training set, so it has no validation "
                   "accuracy; use dataset='cifar10-valid'")
        else:
            why = f"it has no {metric!r} for {dataset!r} at {epochs} epochs"
        return (f"the NAS-Bench-201 table {self.source}: {why}. It holds: {self.holds()}")


class _NatsBench:
    """The ``nats_bench`` backend: official NATS-Bench files through its API."""

    name = "nats_bench"

    def __init__(self, api, source: str):
        self.api = api
        self.source = source
        archs = getattr(api, "meta_archs", None)
        if archs is None:
            archs = [api.arch(i) for i in range(len(api))]
        strings, code_of = _tables()
        self.archs = list(archs)
        self.indices = list(range(len(self.archs)))
        self.row_of_index = {i: i for i in self.indices}
        self.row_of_code = [-1] * _N_CELLS
        for row, arch in enumerate(self.archs):
            self.row_of_code[_arch_code(arch)] = row
        self.archs = [strings[_arch_code(a)] for a in self.archs]

    def fetcher(self, metrics: Tuple[str, ...], dataset: str, epochs: int
                ) -> Callable[[int], List[float]]:
        for metric in metrics:
            if metric not in NATS_METRICS:
                raise MetricNotAvailableError(
                    f"NATS-Bench ({self.source}) has no metric {metric!r}; available: "
                    f"{list(NATS_METRICS)}")
        hp = str(epochs)
        api = self.api

        def fetch(row: int) -> List[float]:
            more = cost = None
            values = []
            for metric in metrics:
                kind, key = NATS_METRICS[metric]
                if kind == "more":
                    if more is None:
                        more = api.get_more_info(row, dataset, hp=hp, is_random=False)
                    info = more
                else:
                    if cost is None:
                        cost = api.get_cost_info(row, dataset, hp=hp)
                    info = cost
                if metric == "time_cost":
                    if "train-all-time" not in info:
                        raise self._missing(metric, dataset, epochs, info)
                    value = info["train-all-time"] + (info.get("valid-per-time") or 0.0)
                elif key in info and info[key] is not None:
                    value = info[key]
                else:
                    raise self._missing(metric, dataset, epochs, info)
                values.append(float(value))
            return values

        return fetch

    def _missing(self, metric, dataset, epochs, info) -> MetricNotAvailableError:
        have = [m for m, (kind, key) in NATS_METRICS.items()
                if kind == "cost" or key.split("+")[0] in info]
        extra = (" ('cifar10' trains on the whole training set, so it has no validation "
                 "split; use dataset='cifar10-valid')"
                 if dataset == "cifar10" and "valid" in metric else "")
        return MetricNotAvailableError(
            f"NATS-Bench ({self.source}) has no {metric!r} for {dataset!r} at {epochs} "
            f"epochs{extra}; it holds {have} there")

    def holds(self) -> str:
        return f"{list(NATS_METRICS)} for datasets {list(DATASETS)} at epochs {list(EPOCHS)}"


# ------------------------------------------------------------------ the evaluator
MetricsArg = Union[str, Sequence[str]]


class NATSBench_Evaluator:
    """NAS-Bench-201 / NATS-Bench (topology) lookups by descriptor, string or index.

    ``NATSBench_Evaluator(path=None, dataset='cifar10-valid', epochs=200)`` reads
    ``nb201_tables.csv`` (see the module docs for where it is looked for and
    what each metric means); ``backend='nats_bench'`` (or
    :meth:`from_nats_bench`) reads the official NATS-Bench files instead.
    ``dataset`` and ``epochs`` are the defaults of every lookup.

    Each successful lookup (:meth:`descriptor_evaluate`, :meth:`evaluate_string`,
    :meth:`query`) adds one to :attr:`queries`, however many metrics it
    returns; :meth:`best`, :meth:`sample` and iteration are free.
    """

    def __init__(self, path: Optional[os.PathLike] = None, dataset: str = "cifar10-valid",
                 epochs: int = 200, backend: str = "table", *, fast_mode: Optional[bool] = None,
                 verbose: bool = False):
        if backend == "table":
            self._backend = _Table(_find_table(path))
        elif backend == "nats_bench":
            self._backend = _open_nats_bench(path, fast_mode, verbose)
        else:
            raise ValueError(f"backend must be 'table' or 'nats_bench', got {backend!r}")
        self.dataset = _dataset_name(dataset)
        self.epochs = _epochs(epochs)
        self.queries = 0
        self._fetchers: Dict[Any, Tuple[Callable[[int], List[float]], bool]] = {}
        self._iso: Optional[Dict[str, List[int]]] = None

    @classmethod
    def from_nats_bench(cls, file_path_or_dir: Optional[os.PathLike] = None,
                        dataset: str = "cifar10-valid", epochs: int = 200, *,
                        fast_mode: Optional[bool] = None,
                        verbose: bool = False) -> "NATSBench_Evaluator":
        """An evaluator over the official NATS-Bench topology files (``nats_bench``).

        ``file_path_or_dir`` is the ``NATS-tss-v1_0-3ffb9-simple`` folder (fast
        mode) or the ``.pickle.pbz2`` file; ``None`` lets ``nats_bench`` look in
        ``$TORCH_HOME``. Adds the metrics ``time_cost``, ``latency``, ``flops``,
        losses and training accuracy (:data:`NATS_METRICS`).
        """
        return cls(file_path_or_dir, dataset=dataset, epochs=epochs, backend="nats_bench",
                   fast_mode=fast_mode, verbose=verbose)

    # ---------------------------------------------------------------- thesis API
    @staticmethod
    def get_available_ops() -> List[str]:
        """The edge ops in the official order (``'IN'``/``'OUT'`` are not ops)."""
        return list(OPS)

    def descriptor_evaluate(self, descriptor, metrics: MetricsArg = ("validation_accuracy",),
                            dataset: Optional[str] = None, epochs: Optional[int] = None):
        """The benchmark's ``metrics`` for the cell ``descriptor`` describes.

        ``metrics`` is a list of names (the values come back as a list in that
        order, as in listing 3.3) or one name (the value alone). ``dataset``
        and ``epochs`` default to the evaluator's. Raises
        :class:`~nord.errors.OutOfSearchSpaceError` /
        :class:`~nord.errors.UnknownOpError` for a descriptor that is not a
        NAS-Bench-201 cell and :class:`MetricNotAvailableError` for a metric the
        benchmark does not hold.
        """
        fetch, single = self._fetcher(metrics, dataset, epochs)
        if isinstance(descriptor, str):
            raise TypeError("descriptor_evaluate takes a NeuralDescriptor; look cell "
                            "strings up with evaluate_string()")
        row = self._backend.row_of_code[_descriptor_code(descriptor)]
        if row < 0:
            raise self._not_in_table(descriptor_to_arch(descriptor))
        values = fetch(row)
        self.queries += 1
        return values[0] if single else values

    def evaluate_string(self, arch: str, metrics: MetricsArg = ("validation_accuracy",),
                        dataset: Optional[str] = None, epochs: Optional[int] = None):
        """Like :meth:`descriptor_evaluate`, for a cell string."""
        fetch, single = self._fetcher(metrics, dataset, epochs)
        row = self._backend.row_of_code[_arch_code(arch)]
        if row < 0:
            raise self._not_in_table(arch)
        values = fetch(row)
        self.queries += 1
        return values[0] if single else values

    def query(self, index_or_arch: Union[int, str], metrics: MetricsArg = ("validation_accuracy",),
              dataset: Optional[str] = None, epochs: Optional[int] = None):
        """Like :meth:`descriptor_evaluate`, for an official index or a cell string."""
        if isinstance(index_or_arch, str):
            return self.evaluate_string(index_or_arch, metrics, dataset, epochs)
        fetch, single = self._fetcher(metrics, dataset, epochs)
        row = self._row_of_index(index_or_arch)
        values = fetch(row)
        self.queries += 1
        return values[0] if single else values

    def reset_counter(self) -> int:
        """Set :attr:`queries` to zero; return the count it had."""
        count, self.queries = self.queries, 0
        return count

    # ---------------------------------------------------------------- conversions
    def index_of(self, cell) -> int:
        """The official index of a descriptor or cell string."""
        code = _arch_code(cell) if isinstance(cell, str) else _descriptor_code(cell)
        row = self._backend.row_of_code[code]
        if row < 0:
            raise self._not_in_table(_tables()[0][code])
        return self._backend.indices[row]

    def arch_str(self, index: int) -> str:
        """The cell string of an official index."""
        return self._backend.archs[self._row_of_index(index)]

    def to_descriptor(self, index_or_arch: Union[int, str], none_nodes: bool = True):
        """The descriptor of an index or cell string (:func:`arch_to_descriptor`)."""
        arch = (index_or_arch if isinstance(index_or_arch, str)
                else self.arch_str(index_or_arch))
        return arch_to_descriptor(arch, none_nodes=none_nodes)

    @staticmethod
    def descriptor_to_arch(descriptor) -> str:
        """The cell string of a descriptor (:func:`descriptor_to_arch`)."""
        return descriptor_to_arch(descriptor)

    def isomorphism_class(self, cell) -> List[int]:
        """Sorted official indices of the cells isomorphic to ``cell``.

        ``cell`` is an index, a string or a descriptor. The benchmark trained
        each of them separately, so their numbers differ (seed noise).
        """
        if self._iso is None:
            classes: Dict[str, List[int]] = {}
            for index, arch in zip(self._backend.indices, self._backend.archs):
                classes.setdefault(isomorphism_key(arch), []).append(index)
            self._iso = {k: sorted(v) for k, v in classes.items()}
        if isinstance(cell, str):
            arch = cell
        elif isinstance(cell, int):
            arch = self.arch_str(cell)
        else:
            arch = descriptor_to_arch(cell)
        return list(self._iso.get(isomorphism_key(arch), []))

    # ---------------------------------------------------------------- whole table
    def __len__(self) -> int:
        return len(self._backend.indices)

    def __iter__(self) -> Iterator[Tuple[int, str]]:
        """``(index, arch_str)`` for every cell, in table order."""
        return iter(zip(self._backend.indices, self._backend.archs))

    def __contains__(self, cell) -> bool:
        try:
            self.index_of(cell)
        except (NordError, TypeError, ValueError):
            return False
        return True

    def best(self, metric: str = "validation_accuracy", dataset: Optional[str] = None,
             epochs: Optional[int] = None, maximize: bool = True) -> Tuple[int, str, float]:
        """``(index, arch_str, value)`` of the best cell by ``metric`` (free of charge).

        Ties go to the earlier row. With the ``nats_bench`` backend this reads
        every cell, which takes a while.
        """
        fetch, _ = self._fetcher(metric, dataset, epochs)
        if isinstance(self._backend, _Table):
            column = self._backend.columns[
                self._backend.available[(metric, _dataset_name(dataset or self.dataset),
                                         _epochs(epochs or self.epochs))]]
            values = column
        else:
            values = [fetch(row)[0] for row in range(len(self))]
        pick = max if maximize else min
        row = pick(range(len(values)), key=values.__getitem__)
        return self._backend.indices[row], self._backend.archs[row], values[row]

    def sample(self, rng=None, as_descriptor: bool = False):
        """A uniformly random cell of the table: its string, or its descriptor.

        ``rng`` is a ``numpy.random.Generator`` (or a seed for one); ``None``
        uses a fresh unseeded generator. Free of charge.
        """
        import numpy as np

        if rng is None or not isinstance(rng, np.random.Generator):
            rng = np.random.default_rng(rng)
        arch = self._backend.archs[int(rng.integers(len(self)))]
        return arch_to_descriptor(arch) if as_descriptor else arch

    def available_metrics(self) -> str:
        """What the loaded benchmark holds, as text (also in error messages)."""
        return self._backend.holds()

    @property
    def source(self) -> str:
        """The table file or NATS-Bench location the evaluator reads."""
        return self._backend.source

    @property
    def backend(self) -> str:
        """``'table'`` or ``'nats_bench'``."""
        return self._backend.name

    def __repr__(self) -> str:
        return (f"NATSBench_Evaluator({len(self)} cells from {self.source!r}, "
                f"dataset={self.dataset!r}, epochs={self.epochs}, queries={self.queries})")

    # ---------------------------------------------------------------- helpers
    def _fetcher(self, metrics: MetricsArg, dataset: Optional[str], epochs: Optional[int]
                 ) -> Tuple[Callable[[int], List[float]], bool]:
        single = isinstance(metrics, str)
        try:
            key = (metrics if single else tuple(metrics), dataset, epochs)
            return self._fetchers[key]
        except KeyError:
            pass
        except TypeError:
            raise TypeError(f"metrics must be a metric name or a list of them, got "
                            f"{metrics!r}") from None
        names = (metrics,) if single else key[0]
        if not names:
            raise ValueError("metrics is empty; ask for at least one metric, e.g. "
                             "['validation_accuracy']")
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"metric names are strings, got {name!r}")
        resolved = (self._backend.fetcher(names, _dataset_name(dataset or self.dataset),
                                          _epochs(epochs or self.epochs)), single)
        self._fetchers[key] = resolved
        return resolved

    def _row_of_index(self, index) -> int:
        try:
            if isinstance(index, bool):
                raise TypeError
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"an index is an int, got {index!r}") from None
        row = self._backend.row_of_index.get(index)
        if row is None:
            indices = self._backend.indices
            raise NotInTableError(f"index {index} is not in {self.source} (it holds "
                                  f"{len(indices)} cells, indices {min(indices)}.."
                                  f"{max(indices)})")
        return row

    def _not_in_table(self, arch: str) -> NotInTableError:
        return NotInTableError(f"the cell {arch} is a valid NAS-Bench-201 cell but "
                               f"{self.source} does not hold it ({len(self)} cells)")


def _dataset_name(dataset: str) -> str:
    if isinstance(dataset, str):
        wanted = dataset.strip().lower().replace("_", "-")
        for name in DATASETS:
            if name.lower() == wanted:
                return name
        if wanted in ("imagenet16", "imagenet"):
            return "ImageNet16-120"
    raise UnknownDatasetError(f"unknown NAS-Bench-201 dataset {dataset!r}; use one of "
                              f"{list(DATASETS)}")


def _epochs(epochs) -> int:
    try:
        value = int(epochs)
    except (TypeError, ValueError):
        value = None
    if value not in EPOCHS or isinstance(epochs, bool):
        raise MetricNotAvailableError(
            f"NAS-Bench-201 trained each cell for 12 or 200 epochs; epochs={epochs!r} is "
            f"neither")
    return value


def _open_nats_bench(path, fast_mode: Optional[bool], verbose: bool) -> _NatsBench:
    try:
        from nats_bench import create
    except ImportError as error:
        raise MissingDependencyError(
            f"reading the official NATS-Bench files needs the 'nats_bench' package "
            f"({error}); install it with: pip install nats_bench. Or use the CSV table "
            f"({TABLE_FILENAME}) with NATSBench_Evaluator(path=...)") from error
    where = None if path is None else str(Path(path).expanduser())
    if fast_mode is None:
        fast_mode = where is None or Path(where).is_dir()
    if where is not None and not Path(where).exists():
        raise DataNotFoundError(
            f"the NATS-Bench topology files were not found at {where}; download "
            f"NATS-tss-v1_0-3ffb9-simple from {OFFICIAL_SOURCE}")
    try:
        api = create(where, "tss", fast_mode=fast_mode, verbose=verbose)
    except (OSError, ValueError, KeyError) as error:
        raise DataNotFoundError(
            f"nats_bench could not open {where or '$TORCH_HOME'} ({error}); download "
            f"NATS-tss-v1_0-3ffb9-simple from {OFFICIAL_SOURCE}") from error
    return _NatsBench(api, where or "$TORCH_HOME")
