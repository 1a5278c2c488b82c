"""NAS-Bench-101 hashes against the benchmark's own keys, and descriptor hashes."""

import csv
import gzip
import random
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from nord.errors import NordError, OutOfSearchSpaceError, SerializationError
from nord.neural_nets import NeuralDescriptor
from nord.neural_nets.graph_hash import (
    EXACT_WL_MAX_VERTICES,
    NASBENCH101_OPS,
    descriptor_hash,
    graph_hash,
    nasbench101_hash,
    prune_nasbench101,
    refined_hash,
    wl_hash,
)

NB101_CSV = (Path(__file__).resolve().parents[2].parent
             / "shared/data/nasbench101/nb101_30k_subset.csv.gz")

CONV3, CONV1, POOL = NASBENCH101_OPS


@lru_cache(maxsize=1)
def _nb101_rows():
    if not NB101_CSV.exists():
        pytest.skip(f"NAS-Bench-101 subset not found at {NB101_CSV}; "
                    f"place nb101_30k_subset.csv.gz there to run this test")
    rows = []
    with gzip.open(NB101_CSV, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            n = int(row["num_vertices"])
            flat = row["matrix_flat_row_major"]
            assert len(flat) == n * n
            matrix = [[int(flat[i * n + j]) for j in range(n)] for i in range(n)]
            rows.append((row["hash"], matrix, row["ops"].split(",")))
    return tuple(rows)


# ---------------------------------------------------------------- NAS-Bench-101
@pytest.mark.slow
def test_every_subset_row_hashes_to_its_benchmark_key():
    rows = _nb101_rows()
    assert len(rows) == 30001
    wrong = [(key, m, ops) for key, m, ops in rows if nasbench101_hash(m, ops) != key]
    assert not wrong, f"{len(wrong)} rows hash wrongly, first: {wrong[0]}"


def test_known_cell_hash():
    # first row of the subset file: 0110010 0010000 0000100 0000101 0000010 0000001 0000000
    flat = "0110010000100000000100000101000001000000010000000"
    matrix = [[int(flat[i * 7 + j]) for j in range(7)] for i in range(7)]
    ops = ["input", CONV3, CONV3, POOL, CONV3, CONV1, "output"]
    assert nasbench101_hash(matrix, ops) == "00005c142e6f48ac74fdcf73e3439874"
    assert nasbench101_hash(np.array(matrix), ops) == "00005c142e6f48ac74fdcf73e3439874"
    assert nasbench101_hash(np.array(matrix, dtype=bool), tuple(ops)) == \
        "00005c142e6f48ac74fdcf73e3439874"


def test_changing_one_op_changes_the_hash():
    key, matrix, ops = _nb101_rows()[0]
    other = list(ops)
    other[1] = CONV1 if ops[1] != CONV1 else CONV3
    assert nasbench101_hash(matrix, other) != key


def test_unpruned_cell_hashes_like_its_pruned_form():
    # in -> conv3 -> out, in -> out; plus a dead end (conv1 fed by input only)
    # and an unreachable pool that feeds the output.
    unpruned = [[0, 1, 1, 0, 1],
                [0, 0, 0, 0, 0],
                [0, 0, 0, 0, 1],
                [0, 0, 0, 0, 1],
                [0, 0, 0, 0, 0]]
    ops = ["input", CONV1, CONV3, POOL, "output"]
    pruned_matrix, pruned_ops = prune_nasbench101(unpruned, ops)
    assert pruned_matrix == [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    assert pruned_ops == ["input", CONV3, "output"]
    assert nasbench101_hash(unpruned, ops) == nasbench101_hash(pruned_matrix, pruned_ops)
    # hashing without pruning would give another key
    assert nasbench101_hash(unpruned, ops) != wl_hash([-1, 1, 0, 2, -2], [
        (0, 1), (0, 2), (0, 4), (2, 4), (3, 4)])


def _with_extraneous_vertices(matrix, ops, rng):
    """Insert a dead-end vertex and an unreachable vertex at random positions."""
    n = len(matrix)
    graph = [row[:] for row in matrix]
    labels = list(ops)
    for kind in ("dead_end", "unreachable"):
        pos = rng.randrange(1, n)  # strictly between input (0) and output (n)
        graph = [row[:pos] + [0] + row[pos:] for row in graph]
        graph.insert(pos, [0] * (n + 1))
        labels.insert(pos, rng.choice(NASBENCH101_OPS))
        n += 1
        if kind == "dead_end":
            graph[rng.randrange(0, pos)][pos] = 1
        else:
            graph[pos][rng.randrange(pos + 1, n)] = 1
    return graph, labels


def test_benchmark_cells_with_extraneous_vertices_keep_their_key():
    rng = random.Random(101)
    small = [r for r in _nb101_rows() if len(r[1]) <= 5]
    assert len(small) == 195
    for key, matrix, ops in small:
        graph, labels = _with_extraneous_vertices(matrix, ops, rng)
        assert prune_nasbench101(graph, labels) == (matrix, ops)
        assert nasbench101_hash(graph, labels) == key


def test_pruning_a_benchmark_cell_changes_nothing():
    for _, matrix, ops in _nb101_rows()[::50]:
        assert prune_nasbench101(matrix, ops) == (matrix, ops)


def _random_topological_relabel(matrix, ops, rng):
    n = len(matrix)
    indegree = [sum(matrix[i][j] for i in range(n)) for j in range(n)]
    ready, order = [0], []
    while ready:
        v = ready.pop(rng.randrange(len(ready)))
        order.append(v)
        for w in range(n):
            if matrix[v][w]:
                indegree[w] -= 1
                if indegree[w] == 0:
                    ready.append(w)
    assert order[0] == 0 and order[-1] == n - 1 and len(order) == n
    return ([[matrix[a][b] for b in order] for a in order], [ops[v] for v in order])


def test_topological_relabelling_keeps_the_hash():
    rng = random.Random(7)
    changed = 0
    for key, matrix, ops in _nb101_rows()[::20]:
        permuted, permuted_ops = _random_topological_relabel(matrix, ops, rng)
        changed += (permuted, permuted_ops) != (matrix, ops)
        assert nasbench101_hash(permuted, permuted_ops) == key
    assert changed > 500  # the relabelling really moved vertices


def test_wl_hash_ignores_vertex_order():
    rng = random.Random(3)
    for key, matrix, ops in _nb101_rows()[::300]:
        n = len(matrix)
        labels = [-1] + [NASBENCH101_OPS.index(o) for o in ops[1:-1]] + [-2]
        edges = [(i, j) for i in range(n) for j in range(n) if matrix[i][j]]
        perm = list(range(n))
        rng.shuffle(perm)
        new_labels = [None] * n
        for old, new in enumerate(perm):
            new_labels[new] = labels[old]
        new_edges = [(perm[a], perm[b]) for a, b in edges]
        rng.shuffle(new_edges)
        assert wl_hash(new_labels, new_edges) == key


@pytest.mark.parametrize("matrix, ops, message", [
    ([[0, 1], [0, 0], [0, 0]], ["input", "output"], "must be square"),
    ([[0, 1, 0], [0, 0, 1]], ["input", CONV3, "output"], "must be square"),
    ([[0, 2], [0, 0]], ["input", "output"], "entries must be 0 or 1"),
    ([[0, "1"], [0, 0]], ["input", "output"], "entries must be 0 or 1"),
    ([[0, 0.5], [0, 0]], ["input", "output"], "entries must be 0 or 1"),
    ([[0, 1], [1, 0]], ["input", "output"], "strictly upper triangular"),
    ([[1, 1], [0, 0]], ["input", "output"], "strictly upper triangular"),
    ([[0, 1], [0, 0]], ["input", CONV3, "output"], "3 ops for a 2x2 matrix"),
    ([[0, 1], [0, 0]], ["output", "input"], "must start with 'input' and end with 'output'"),
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"],
     "op 1 is 'conv5x5', which is not a NAS-Bench-101 op"),
    ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input", CONV3, "output"], "no path leads"),
    ([], [], "must start with 'input'"),
    (5, ["input"], "must be a square 0/1 matrix"),
])
def test_out_of_search_space_cells_raise(matrix, ops, message):
    with pytest.raises(OutOfSearchSpaceError, match=message):
        nasbench101_hash(matrix, ops)


def test_out_of_search_space_error_is_a_nord_value_error():
    assert issubclass(OutOfSearchSpaceError, NordError)
    assert issubclass(OutOfSearchSpaceError, ValueError)


# ---------------------------------------------------------------- descriptors
_LAYER_CHOICES = [
    (nn.Conv2d, {"in_channels": 8, "out_channels": 8, "kernel_size": 3, "padding": 1}),
    (nn.Conv2d, {"in_channels": 8, "out_channels": 8, "kernel_size": (1, 1)}),
    (nn.MaxPool2d, {"kernel_size": 3, "stride": 1, "padding": 1}),
    ("conv3x3-bn-relu", {}),
    ("conv1x1-bn-relu", {"activation": nn.ReLU}),
    (nn.Identity, {}),
]


def _random_dag(rng, n):
    """(layers, edges) of a DAG on 0..n-1 where every node is on a 0 -> n-1 path."""
    layers = [("input", {})] + [rng.choice(_LAYER_CHOICES) for _ in range(n - 2)] + [("sum", {})]
    edges = {(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.35}
    for v in range(1, n):
        if not any(b == v for _, b in edges):
            edges.add((rng.randrange(v), v))
    for v in range(n - 1):
        if not any(a == v for a, _ in edges):
            edges.add((v, rng.randrange(v + 1, n)))
    return layers, sorted(edges)


def _build(layers, edges, rng=None, names=None):
    """A descriptor; with ``rng`` the insertion orders are shuffled."""
    n = len(layers)
    names = names or [f"n{i}" for i in range(n)]
    order = list(range(n))
    edges = list(edges)
    if rng is not None:
        rng.shuffle(order)
        rng.shuffle(edges)
    d = NeuralDescriptor()
    for i in order:
        layer, params = layers[i]
        d.add_layer(layer, params, names[i])
    for a, b in edges:
        d.connect_layers(names[a], names[b])
    d.first_layer, d.last_layer = names[0], names[-1]
    return d


def test_descriptor_hash_ignores_names_and_insertion_order():
    rng = random.Random(2024)
    for trial in range(150):
        layers, edges = _random_dag(rng, rng.randrange(2, 10))
        reference = descriptor_hash(_build(layers, edges))
        for _ in range(3):
            names = [f"L{rng.randrange(10**9)}_{i}" for i in range(len(layers))]
            rng.shuffle(names)
            assert descriptor_hash(_build(layers, edges, rng, names)) == reference, trial


def test_descriptor_hash_of_isomorphic_relabelling():
    rng = random.Random(5)
    for _ in range(100):
        n = rng.randrange(3, 9)
        layers, edges = _random_dag(rng, n)
        perm = [0] + rng.sample(range(1, n - 1), n - 2) + [n - 1]
        relabelled_layers = [None] * n
        for old, new in enumerate(perm):
            relabelled_layers[new] = layers[old]
        relabelled_edges = [(perm[a], perm[b]) for a, b in edges]
        assert (descriptor_hash(_build(relabelled_layers, relabelled_edges))
                == descriptor_hash(_build(layers, edges)))


def _chain():
    d = NeuralDescriptor()
    d.add_layer("input", {}, "in")
    d.add_layer_sequential(nn.Conv2d, {"in_channels": 3, "out_channels": 8, "kernel_size": 3}, "c1")
    d.add_layer_sequential(nn.ReLU, {}, "r1")
    d.add_layer_sequential(nn.Conv2d, {"in_channels": 8, "out_channels": 8, "kernel_size": 3}, "c2")
    d.add_layer_sequential("sum", {}, "out")
    return d


def test_descriptor_hash_is_pinned():
    # The hash keys caches on disk: a change here invalidates them.
    assert descriptor_hash(_chain()) == _chain().canonical_hash()
    assert descriptor_hash(_chain()) == "63bf11a59487e0748e4dc6f036a53f4f"


def test_descriptor_hash_labels_follow_the_documented_format():
    labels = [
        "input|input|{}",
        '|torch.nn.Conv2d|{"in_channels": 3, "kernel_size": 3, "out_channels": 8}',
        "|torch.nn.ReLU|{}",
        '|torch.nn.Conv2d|{"in_channels": 8, "kernel_size": 3, "out_channels": 8}',
        "output|sum|{}",
    ]
    edges = [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert descriptor_hash(_chain()) == wl_hash(labels, edges)


def test_descriptor_hash_changes_with_params_type_and_edges():
    base = descriptor_hash(_chain())
    variants = []

    d = _chain()
    d.layers["c2"].params["kernel_size"] = 5
    variants.append(d)

    d = _chain()
    d.layers["c2"].params["padding"] = 1
    variants.append(d)

    d = _chain()
    d.layers["r1"] = d.layers["r1"]._replace(layer=nn.Sigmoid)
    variants.append(d)

    d = _chain()
    d.layers["r1"] = d.layers["r1"]._replace(layer="relu")
    variants.append(d)

    d = _chain()
    d.connect_layers("c1", "c2")  # skip connection
    variants.append(d)

    d = _chain()
    d.connect_layers("in", "out")
    variants.append(d)

    d = _chain()  # swap the two convs' positions: different params along the path
    d.layers["c1"], d.layers["c2"] = d.layers["c2"], d.layers["c1"]
    variants.append(d)

    d = _chain()  # same graph, other output node
    d.last_layer = "c2"
    variants.append(d)

    hashes = [descriptor_hash(v) for v in variants]
    assert base not in hashes
    assert len(set(hashes)) == len(hashes)


def test_descriptor_hash_random_single_changes_differ():
    rng = random.Random(11)
    for _ in range(100):
        layers, edges = _random_dag(rng, rng.randrange(3, 9))
        base = descriptor_hash(_build(layers, edges))
        i = rng.randrange(1, len(layers) - 1)
        changed = list(layers)
        layer, params = changed[i]
        changed[i] = (layer, {**params, "extra": rng.randrange(5)})
        assert descriptor_hash(_build(changed, edges)) != base


def test_descriptor_hash_ignores_inactive_layers():
    base = descriptor_hash(_chain())
    d = _chain()
    d.add_layer(nn.Linear, {"in_features": 3, "out_features": 4}, "dead_end")
    d.add_layer(nn.Tanh, {}, "orphan")
    d.connect_layers("c1", "dead_end")
    d.connect_layers("orphan", "c2")
    d.last_layer = "out"
    d.connections["r1"].append("ghost")  # dangling: ignored too
    assert d.active_layers() == ["in", "c1", "r1", "c2", "out"]
    assert descriptor_hash(d) == base


def test_tuples_and_lists_hash_alike_but_classes_differ_from_strings():
    a, b, c = _chain(), _chain(), _chain()
    a.layers["c1"].params["kernel_size"] = (3, 3)
    b.layers["c1"].params["kernel_size"] = [3, 3]
    assert descriptor_hash(a) == descriptor_hash(b)
    b.layers["c1"].params["act"] = nn.ReLU
    c.layers["c1"].params["kernel_size"] = [3, 3]
    c.layers["c1"].params["act"] = "torch.nn.ReLU"
    assert descriptor_hash(b) != descriptor_hash(c)


def test_param_key_order_does_not_matter():
    a, b = _chain(), _chain()
    b.layers["c1"].params.clear()
    b.layers["c1"].params.update(kernel_size=3, out_channels=8, in_channels=3)
    assert list(a.layers["c1"].params) != list(b.layers["c1"].params)
    assert descriptor_hash(a) == descriptor_hash(b)


def test_descriptor_without_path_hashes_whole_graph():
    d = _chain()
    d.disconnect_layers("r1", "c2")
    assert d.active_layers() == []
    h = descriptor_hash(d)
    assert h != descriptor_hash(_chain())
    d.layers["c2"].params["kernel_size"] = 1  # now every layer counts
    assert descriptor_hash(d) != h


def test_descriptor_hash_rejects_uncanonical_params():
    d = _chain()
    d.layers["c1"].params["init"] = lambda w: w
    with pytest.raises(SerializationError, match="layer 'c1' params"):
        descriptor_hash(d)


def test_nb101_cell_as_descriptor_hash_is_isomorphism_invariant():
    rng = random.Random(13)
    for key, matrix, ops in _nb101_rows()[:200]:
        n = len(matrix)
        edges = [(i, j) for i in range(n) for j in range(n) if matrix[i][j]]
        layers = [(op, {}) for op in ops]
        permuted, permuted_ops = _random_topological_relabel(matrix, ops, rng)
        p_edges = [(i, j) for i in range(n) for j in range(n) if permuted[i][j]]
        assert (descriptor_hash(_build([(op, {}) for op in permuted_ops], p_edges, rng))
                == descriptor_hash(_build(layers, edges)))


# ---------------------------------------------------------------- pinned values, speed
# Hashes key caches and run stores on disk, so these values were recorded from
# the quadratic implementation before it was made fast; they must never change.
_KINDS = [(nn.Conv2d, {"in_channels": 8, "out_channels": 8, "kernel_size": 3}),
          (nn.ReLU, {}), (nn.BatchNorm2d, {"num_features": 8})]


def _long_chain(n, names=None):
    """input, then conv/relu/batch-norm repeating, then a sum: ``n`` layers."""
    names = names or ["in"] + [f"l{i}" for i in range(n - 2)] + ["out"]
    d = NeuralDescriptor()
    d.add_layer("input", {}, names[0])
    for i in range(n - 2):
        d.add_layer_sequential(*_KINDS[i % 3], names[i + 1])
    d.add_layer_sequential("sum", {}, names[-1])
    return d


def _sparse_dag(n, seed):
    """(layers, edges) of a network-like DAG: each node reads its predecessor
    and up to two of the 20 before it (multi-input sums)."""
    rng = random.Random(seed)
    kinds = _KINDS[:2] + [(nn.Identity, {})]
    layers = [("input", {})] + [rng.choice(kinds) for _ in range(n - 2)] + [("sum", {})]
    edges = set()
    for v in range(1, n):
        edges.add((v - 1, v))
        for _ in range(rng.randrange(3)):
            edges.add((rng.randrange(max(0, v - 20), v), v))
    return layers, sorted(edges)


def _residual(blocks):
    """in -> blocks of conv-bn-relu-conv with a skip into a sum -> out."""
    d = NeuralDescriptor()
    d.add_layer("input", {}, "in")
    prev = "in"
    for b in range(blocks):
        a = d.add_layer(*_KINDS[0], f"b{b}_conv_a")
        n = d.add_layer(*_KINDS[2], f"b{b}_bn")
        r = d.add_layer(*_KINDS[1], f"b{b}_relu")
        c = d.add_layer(*_KINDS[0], f"b{b}_conv_b")
        s = d.add_layer("sum", {}, f"b{b}_sum")
        for src, dst in ((prev, a), (a, n), (n, r), (r, c), (c, s), (prev, s)):
            d.connect_layers(src, dst)
        prev = s
    d.add_layer(nn.Flatten, {}, "out")
    d.connect_layers(prev, "out")
    d.first_layer, d.last_layer = "in", "out"
    return d


def _parallel_branches(width, depth):
    """in -> ``width`` identical chains of ``depth`` layers -> sum (symmetric)."""
    d = NeuralDescriptor()
    d.add_layer("input", {}, "in")
    d.add_layer("sum", {}, "out")
    for w in range(width):
        prev = "in"
        for k in range(depth):
            name = d.add_layer(*_KINDS[k % 3], f"w{w}_{k}")
            d.connect_layers(prev, name)
            prev = name
        d.connect_layers(prev, "out")
    d.first_layer, d.last_layer = "in", "out"
    return d


def _with_cycle():
    d = _chain()
    d.connect_layers("c2", "c1")  # c1 -> r1 -> c2 -> c1, all on the in -> out path
    return d


def _without_path():
    d = _chain()
    d.disconnect_layers("r1", "c2")
    return d


def _nb201(arch):
    from nord.neural_nets.benchmarks.nasbench201 import arch_to_descriptor
    return arch_to_descriptor(arch)


def _nb101_descriptor():
    from nord.neural_nets.benchmarks.nasbench101_cells import matrix_to_descriptor
    flat = "0110010000100000000100000101000001000000010000000"
    matrix = [[int(flat[i * 7 + j]) for j in range(7)] for i in range(7)]
    return matrix_to_descriptor(matrix, ["input", CONV3, CONV3, POOL, CONV3, CONV1, "output"])


_NB201_BEST = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
               "|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
_NB201_LISTING_3_3 = ("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+"
                      "|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|")
_NB201_ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"

PINNED_CASES = {
    "chain_5": _chain,
    "chain_60": lambda: _long_chain(60),
    "chain_200": lambda: _long_chain(200),
    "residual_6": lambda: _residual(6),
    "sparse_dag_40": lambda: _build(*_sparse_dag(40, seed=1)),
    "sparse_dag_150": lambda: _build(*_sparse_dag(150, seed=2)),
    "dense_dag_12": lambda: _build(*_random_dag(random.Random(12), 12)),
    "parallel_4x5": lambda: _parallel_branches(4, 5),
    "cyclic": _with_cycle,
    "no_path": _without_path,
    "nb201_best": lambda: _nb201(_NB201_BEST),
    "nb201_listing_3_3": lambda: _nb201(_NB201_LISTING_3_3),
    "nb201_all_none": lambda: _nb201(_NB201_ALL_NONE),
    "nb101_cell": _nb101_descriptor,
}

PINNED = {
    "chain_5": "63bf11a59487e0748e4dc6f036a53f4f",
    "chain_60": "754ec35d4f4e8664d34b6b3e2e380be0",
    "chain_200": "d0d758c3ecb20764675e3b95497553cf",
    "residual_6": "78462817b5f489b41c13efc2a3dff91b",
    "sparse_dag_40": "ad0c098c886901549086584497db947a",
    "sparse_dag_150": "258f9bd4427d266754221d67d8032e46",
    "dense_dag_12": "2baf51a1f7743f74944e2fe5b12c9366",
    "parallel_4x5": "de3f0c212b6ecb85ec6042f9342b29c5",
    "cyclic": "f561249829cef5f92ed362867fefbbdd",
    "no_path": "604dd5896e9d587782945f35ca5b7426",
    "nb201_best": "d274bb988bf7f6c0448213a052dbd2e1",
    "nb201_listing_3_3": "fc7871f39d153a7cb8fe5b1fdb01e481",
    "nb201_all_none": "30b02f311838024aa471f9aec8256378",
    "nb101_cell": "360cc56f439374684f1094fbd884e428",
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_hashes_recorded_before_the_speed_up_are_unchanged(case):
    d = PINNED_CASES[case]()
    assert descriptor_hash(d) == d.canonical_hash() == PINNED[case]


def _shuffled_copy(d, rng):
    """The same graph with new layer names and shuffled insertion orders."""
    rename = {name: f"x{rng.randrange(10**9)}_{i}" for i, name in enumerate(d.layers)}
    order = list(d.layers)
    rng.shuffle(order)
    edges = list(d.edges())
    rng.shuffle(edges)
    copy = NeuralDescriptor()
    for name in order:
        copy.add_layer(d.layers[name].layer, d.layers[name].params, rename[name])
    for src, dst in edges:
        copy.connect_layers(rename[src], rename[dst])
    copy.first_layer, copy.last_layer = rename[d.first_layer], rename[d.last_layer]
    return copy


@pytest.mark.parametrize("case", ["residual_6", "sparse_dag_40", "sparse_dag_150",
                                  "parallel_4x5", "nb201_best", "nb101_cell", "cyclic"])
def test_renamed_and_permuted_copies_keep_the_recorded_hash(case):
    rng = random.Random(case)
    for _ in range(3):
        assert descriptor_hash(_shuffled_copy(PINNED_CASES[case](), rng)) == PINNED[case]


def test_largest_exactly_hashed_graphs_keep_their_recorded_hash():
    # Up to EXACT_WL_MAX_VERTICES layers the hash is the original one.
    assert EXACT_WL_MAX_VERTICES == 512
    assert descriptor_hash(_long_chain(512)) == "95bbd23eeced6be0daa0dfdde35067dd"
    assert descriptor_hash(_build(*_sparse_dag(512, seed=3))) == \
        "a91c80320779ee31fb7f499a7680185f"


def test_large_graphs_have_pinned_near_linear_hashes():
    assert descriptor_hash(_long_chain(513)) == "600540aea453f8338afbbf74e5b7278b"
    assert descriptor_hash(_long_chain(4000)) == "8f2ee5973a8ea6ad80348fd22debce76"
    assert descriptor_hash(_build(*_sparse_dag(4000, seed=4))) == \
        "610793b05669fbf88c5f64bc28f599a1"
    rng = random.Random(4)
    assert descriptor_hash(_shuffled_copy(_build(*_sparse_dag(4000, seed=4)), rng)) == \
        "610793b05669fbf88c5f64bc28f599a1"


def _hash_seconds(d, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        descriptor_hash(d)
        best = min(best, time.perf_counter() - start)
    return best


def test_hashing_time_grows_near_linearly():
    # The quadratic version took 26-46 s for 4,000 layers, and 16x longer for
    # 4x the layers; now quadrupling the size must cost well under 8x.
    chain_4000 = _long_chain(4000)
    assert _hash_seconds(chain_4000, repeats=1) < 3.0
    small = [_long_chain(2000), _build(*_sparse_dag(2000, seed=5))]
    large = [_long_chain(8000), _build(*_sparse_dag(8000, seed=6))]
    small_time = sum(_hash_seconds(d) for d in small)
    large_time = sum(_hash_seconds(d) for d in large)
    assert large_time < 3.0
    assert large_time / small_time < 8, (small_time, large_time)


def test_a_long_chain_with_a_cycle_also_hashes_in_linear_time():
    def looped(n):
        labels = ["in"] + [str(i % 3) for i in range(n - 2)] + ["out"]
        return labels, [(i, i + 1) for i in range(n - 1)] + [(n // 2 + 5, n // 2)]
    small = min(_timed(refined_hash, *looped(2000)) for _ in range(3))
    large = min(_timed(refined_hash, *looped(8000)) for _ in range(3))
    assert large < 3.0 and large / small < 8, (small, large)
    assert refined_hash(*looped(4000)) == "2e7def7f2be76b474f680e49db9f55c0"


def _timed(function, *args):
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def _relabelled(labels, edges, rng):
    perm = list(range(len(labels)))
    rng.shuffle(perm)
    new_labels = [None] * len(labels)
    for old, new in enumerate(perm):
        new_labels[new] = labels[old]
    new_edges = [(perm[a], perm[b]) for a, b in edges]
    rng.shuffle(new_edges)
    return new_labels, new_edges


def test_refined_hash_is_isomorphism_invariant_also_with_cycles():
    rng = random.Random(17)
    for _ in range(200):
        n = rng.randrange(1, 12)
        labels = [rng.randrange(3) for _ in range(n)]
        edges = sorted({(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randrange(2 * n))})
        if rng.random() < 0.5:
            edges = [(a, b) for a, b in edges if a < b]  # a DAG
        assert refined_hash(*_relabelled(labels, edges, rng)) == refined_hash(labels, edges)


def test_refined_hash_separates_exactly_what_wl_hash_separates_on_small_graphs():
    # Every DAG on 5 vertices (4 label patterns) and every digraph on 4 vertices.
    pairs5 = [(i, j) for i in range(5) for j in range(i + 1, 5)]
    pairs4 = [(i, j) for i in range(4) for j in range(4) if i != j]
    graphs = [([p >> (v % 2) & 1 for v in range(5)],
               [e for k, e in enumerate(pairs5) if mask >> k & 1])
              for mask in range(1 << len(pairs5)) for p in range(4)]
    graphs += [([0, 1, 1, 1], [e for k, e in enumerate(pairs4) if mask >> k & 1])
               for mask in range(1 << len(pairs4))]
    pairs = {(refined_hash(*g), wl_hash(*g)) for g in graphs}
    assert len({r for r, _ in pairs}) == len({w for _, w in pairs}) == len(pairs) == 3096


def test_refined_hash_tells_apart_long_chains_with_the_same_local_windows():
    # Bounded-round WL cannot: both chains hold the same multiset of short windows.
    def chain(runs):
        labels = ["in"] + [kind for kind, count in runs for _ in range(count)] + ["out"]
        return labels, [(i, i + 1) for i in range(len(labels) - 1)]
    first = chain([("a", 10), ("b", 3), ("a", 10), ("b", 3), ("a", 20)])
    second = chain([("a", 10), ("b", 3), ("a", 20), ("b", 3), ("a", 10)])
    assert refined_hash(*first) != refined_hash(*second)
    assert wl_hash(*first) != wl_hash(*second)


def test_graph_hash_switches_on_the_vertex_count():
    labels = ["in"] + ["x"] * (EXACT_WL_MAX_VERTICES - 2) + ["out"]
    edges = [(i, i + 1) for i in range(len(labels) - 1)]
    assert graph_hash(labels, edges) == wl_hash(labels, edges)
    labels.insert(1, "x")
    edges.append((len(labels) - 2, len(labels) - 1))
    assert graph_hash(labels, edges) == refined_hash(labels, edges) != wl_hash(labels, edges)
