"""Comparing genotypes (chapter 8, Figures 8.3/8.4): graph edit distance between cells.

A cell becomes a directed graph (:func:`cell_graph`): its two inputs
(``in0``, ``in1``), one node per operation (labelled with the operation),
the intermediate nodes and the output. An operation node reads its input node
and feeds its intermediate node; the intermediate nodes in the concatenation
feed the output. :func:`cell_distance` is networkx's graph edit distance with
unit costs for inserting or deleting a node or an edge, nodes matched only
within their role (an input never becomes an operation), and a substituted
operation costing 2, as much as deleting and inserting it: two cells of the same
structure with one operation changed are at distance 2, and so is a cell whose
one operation reads another input. :func:`genotype_distance` adds the normal
and the reduction cells' distances; :func:`distance_groups` gives the
intra-group and inter-group distances of Figures 8.3/8.4.
"""

from __future__ import annotations

import itertools
from typing import Dict, List, Mapping, Sequence

from nord.darts.genotype import Genotype
from nord.errors import GenotypeError

__all__ = ["cell_graph", "cell_distance", "genotype_distance", "distance_groups"]


def cell_graph(genotype: Genotype, reduction: bool = False):
    """The cell as a ``networkx.DiGraph`` (see the module docstring); every node has a
    ``role`` (``input``, ``op``, ``node``, ``output``) and a ``label``."""
    import networkx as nx
    if not isinstance(genotype, Genotype):
        raise GenotypeError(f"cell_graph needs a Genotype, got {type(genotype).__name__}")
    g = nx.DiGraph()
    for j in (0, 1):
        g.add_node(f"in{j}", role="input", label=f"in{j}")
    for i in range(genotype.steps):
        g.add_node(f"n{i}", role="node", label="node")
    g.add_node("out", role="output", label="output")
    for k, (op, j) in enumerate(genotype.cell(reduction)):
        name = f"op{k}"
        g.add_node(name, role="op", label=op)
        g.add_edge(f"in{j}" if j < 2 else f"n{j - 2}", name)
        g.add_edge(name, f"n{k // 2}")
    for j in genotype.concat(reduction):
        g.add_edge(f"in{j}" if j < 2 else f"n{j - 2}", "out")
    return g


#: the cost of matching nodes of different roles: larger than deleting and inserting
#: every node and edge of two cells, and finite (networkx's bounds need finite costs)
_FORBIDDEN = 1e6
#: networkx never substitutes a node when that costs as much as deleting and inserting
#: it (it does not count the edges a substitution keeps), so an operation's substitution
#: is a hair cheaper than 2; every true distance is a whole number, restored by rounding
_OP_SUBSTITUTION = 2.0 - 1e-6


def _substitution(a: Mapping, b: Mapping) -> float:
    if a["role"] != b["role"]:
        return _FORBIDDEN
    if a["role"] == "input":
        return 0.0 if a["label"] == b["label"] else _FORBIDDEN
    return 0.0 if a["label"] == b["label"] else _OP_SUBSTITUTION


def cell_distance(a: Genotype, b: Genotype, reduction: bool = False,
                  timeout: float = 10.0) -> float:
    """Graph edit distance between the two genotypes' normal (or reduction) cells.
    ``timeout`` bounds networkx's exact search (seconds); past it the best
    distance found so far (an upper bound) is returned."""
    import networkx as nx
    return float(round(nx.graph_edit_distance(
        cell_graph(a, reduction), cell_graph(b, reduction),
        node_subst_cost=_substitution,
        node_del_cost=lambda n: 1.0, node_ins_cost=lambda n: 1.0,
        edge_subst_cost=lambda e, f: 0.0, edge_del_cost=lambda e: 1.0,
        edge_ins_cost=lambda e: 1.0, timeout=timeout)))


def genotype_distance(a: Genotype, b: Genotype, timeout: float = 10.0) -> float:
    """The normal cells' distance plus the reduction cells'."""
    return cell_distance(a, b, False, timeout) + cell_distance(a, b, True, timeout)


def distance_groups(groups: Mapping[str, Sequence[Genotype]], reduction: bool = False,
                    timeout: float = 10.0) -> Dict[str, List[float]]:
    """Pairwise cell distances within each group (``"<group>"``) and between every
    two groups (``"<group> / <other>"``), as Figures 8.3/8.4 plot them."""
    out: Dict[str, List[float]] = {}
    names = list(groups)
    for name in names:
        members = list(groups[name])
        out[name] = [cell_distance(a, b, reduction, timeout)
                     for a, b in itertools.combinations(members, 2)]
    for first, second in itertools.combinations(names, 2):
        out[f"{first} / {second}"] = [cell_distance(a, b, reduction, timeout)
                                      for a in groups[first] for b in groups[second]]
    return out
