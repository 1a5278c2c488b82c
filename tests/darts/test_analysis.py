"""Graph edit distance between DARTS cells, checked on hand-made cases."""

import numpy as np
import pytest

from nord.darts.analysis import cell_distance, cell_graph, distance_groups, genotype_distance
from nord.darts.genotype import Genotype, random_genotype
from nord.errors import GenotypeError

SAME = (("sep_conv_3x3", 0), ("skip_connect", 1))


def cells(normal, reduce=SAME, normal_concat=()):
    return Genotype(tuple(normal), tuple(reduce), tuple(normal_concat))


def test_the_cell_graph_has_an_operation_node_per_edge():
    g = cell_graph(cells([("sep_conv_3x3", 0), ("skip_connect", 1),
                          ("max_pool_3x3", 2), ("dil_conv_5x5", 0)], list(SAME) * 2))
    ops = {n: d["label"] for n, d in g.nodes(data=True) if d["role"] == "op"}
    assert sorted(ops.values()) == ["dil_conv_5x5", "max_pool_3x3", "sep_conv_3x3",
                                    "skip_connect"]
    assert ("n0", "op2") in g.edges and ("op2", "n1") in g.edges  # node 2 feeds node 3
    assert {("n0", "out"), ("n1", "out")} <= set(g.edges)


def test_hand_cases():
    a = cells(SAME)
    assert cell_distance(a, a) == 0
    # same structure, one operation changed: 2
    assert cell_distance(a, cells([("dil_conv_3x3", 0), ("skip_connect", 1)])) == 2
    # one operation reads the other input: its edge is deleted and inserted, 2
    assert cell_distance(a, cells([("sep_conv_3x3", 1), ("skip_connect", 1)])) == 2
    # both: 4
    assert cell_distance(a, cells([("dil_conv_3x3", 1), ("skip_connect", 1)])) == 4
    # a second intermediate node: the node, two operations (3 nodes) and five edges
    # (two into the operations, two into the node, one into the output)
    bigger = cells(list(SAME) + [("max_pool_3x3", 0), ("skip_connect", 2)],
                   list(SAME) * 2)
    smaller = cells(list(SAME), list(SAME))
    assert cell_distance(smaller, bigger) == 8 and cell_distance(bigger, smaller) == 8
    # the reduction cells count too
    other = cells(SAME, [("avg_pool_3x3", 0), ("skip_connect", 1)])
    assert genotype_distance(a, other) == 2 and cell_distance(a, other, reduction=True) == 2


def test_distance_groups_are_intra_and_inter():
    rng = np.random.default_rng(0)
    groups = {"1 rank": [random_genotype(rng, steps=2) for _ in range(3)],
              "2 ranks": [random_genotype(rng, steps=2) for _ in range(2)]}
    out = distance_groups(groups)
    assert sorted(out) == ["1 rank", "1 rank / 2 ranks", "2 ranks"]
    assert [len(out[k]) for k in ("1 rank", "2 ranks", "1 rank / 2 ranks")] == [3, 1, 6]
    assert all(d == int(d) and d >= 0 for values in out.values() for d in values)
    with pytest.raises(GenotypeError, match="needs a Genotype"):
        cell_graph({"normal": []})
