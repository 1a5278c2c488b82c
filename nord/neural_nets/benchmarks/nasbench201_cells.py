"""NAS-Bench-201 cells: the official strings, cell codes, ops and isomorphism key.

A cell has four *states* (feature maps) 0..3 and one op on every edge ``j → i``
(``j < i``), six edges in all, each op one of :data:`OPS`. State 0 is the cell's
input, state ``i`` the sum of its incoming edges, state 3 the output. The
official string lists, for states 1, 2 and 3, the op on each incoming edge::

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|

so there are 5⁶ = 15,625 cells, each a row of the table (official index order).
Internally a cell is its *code*: the six op indices (official op order) read as
the digits of a base-5 number, in string order.

Isomorphic cells
----------------
Different strings can describe the same computation (an op that only sees a
zero state, ``skip_connect`` passing its input on, two parallel intermediate
states swapped). The benchmark trained each string separately, so such cells
are different rows with different numbers, and lookups are by string.
:func:`isomorphism_key` reproduces NAS-Bench-201's own rule,
``to_unique_str(consider_zero=True)``, which splits the 15,625 cells into the
benchmark's 6,466 classes.
"""

from __future__ import annotations

import itertools
from typing import Any, Dict, List, Optional, Sequence, Tuple

from nord.errors import InvalidArgumentError, OutOfSearchSpaceError, UnknownOpError

__all__ = ["OPS", "arch_to_ops", "ops_to_arch", "isomorphism_key", "OP_INDEX", "EDGES", "N_CELLS",
           "cell_tables", "code_of_digits", "digits_of_code", "arch_code", "parse_arch"]

#: The edge ops, in the official order (``get_available_ops()``).
OPS: Tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                        "avg_pool_3x3")

OP_INDEX = {op: i for i, op in enumerate(OPS)}
#: Edges in string order: (to, from) = (i, j).
EDGES: Tuple[Tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
N_CELLS = len(OPS) ** len(EDGES)
_WEIGHTS = tuple(len(OPS) ** (len(EDGES) - 1 - p) for p in range(len(EDGES)))


def _pos(j: int, i: int) -> int:
    """String position of edge ``j → i``."""
    return i * (i - 1) // 2 + j


# ------------------------------------------------------------------ cell strings
_STRINGS: Optional[List[str]] = None
_CODE_OF: Optional[Dict[str, int]] = None


def cell_tables() -> Tuple[List[str], Dict[str, int]]:
    """All 15,625 official strings by cell code, and string → code (built once)."""
    global _STRINGS, _CODE_OF
    if _STRINGS is None:
        strings = [_format(digits) for digits in itertools.product(range(len(OPS)),
                                                                   repeat=len(EDGES))]
        _CODE_OF = {s: c for c, s in enumerate(strings)}
        _STRINGS = strings
    return _STRINGS, _CODE_OF


def _format(digits: Sequence[int]) -> str:
    o = [OPS[d] for d in digits]
    return (f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|")


def code_of_digits(digits: Sequence[int]) -> int:
    return sum(d * w for d, w in zip(digits, _WEIGHTS))


def digits_of_code(code: int) -> Tuple[int, ...]:
    return tuple((code // w) % len(OPS) for w in _WEIGHTS)


def arch_code(arch: str) -> int:
    """Cell code of an arch string (any edge order inside a state is accepted)."""
    code = cell_tables()[1].get(arch) if isinstance(arch, str) else None
    if code is None:
        code = code_of_digits(parse_arch(arch))
    return code


def parse_arch(arch: Any) -> Tuple[int, ...]:
    """Digits of an arch string, with a precise error for a malformed one."""
    example = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
    if not isinstance(arch, str):
        raise InvalidArgumentError(f"a NAS-Bench-201 cell string is a str like {example!r}, "
                                   f"got {type(arch).__name__}")
    groups = arch.split("+")
    if len(groups) != 3:
        raise OutOfSearchSpaceError(
            f"{arch!r} is not a NAS-Bench-201 cell string: it needs 3 '+'-separated "
            f"groups (states 1, 2, 3), like {example!r}, got {len(groups)}")
    digits = [None] * len(EDGES)
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
            if op not in OP_INDEX:
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
            digits[_pos(j, i)] = OP_INDEX[op]
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
    return tuple(OPS[d] for d in digits_of_code(arch_code(arch)))


def ops_to_arch(ops: Sequence[str]) -> str:
    """The official string of six ops given in string order (see :func:`arch_to_ops`)."""
    ops = list(ops)
    if len(ops) != len(EDGES):
        raise OutOfSearchSpaceError(f"a NAS-Bench-201 cell has {len(EDGES)} edges, "
                                    f"got {len(ops)} ops")
    for op in ops:
        if op not in OP_INDEX:
            raise UnknownOpError(f"op {op!r} is not a NAS-Bench-201 op; the available "
                                 f"ops are {list(OPS)}")
    return _format([OP_INDEX[op] for op in ops])


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
    digits = digits_of_code(arch_code(arch))
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
