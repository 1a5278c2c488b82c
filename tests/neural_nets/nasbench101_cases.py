"""Shared cases for the NAS-Bench-101 tests: the 30k table, cells, descriptor builders."""

import csv
import gzip
import os
from pathlib import Path

import pytest

from nord.neural_nets import NeuralDescriptor
from nord.neural_nets.benchmarks.nasbench101 import CSV_NAME

CONV3, CONV1, POOL = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
FIRST_ROW = "00005c142e6f48ac74fdcf73e3439874"  # first row of the 30k table
LISTING_MATRIX = [[0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
LISTING_OPS = ["input", CONV3, POOL, "output"]


def data_root_or_skip() -> Path:
    """``$NORD_DATA`` (else ``../shared/data``); skips the test when the 30k table is not there."""
    if os.environ.get("NORD_DATA"):
        root = Path(os.environ["NORD_DATA"])
    else:
        root = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    if not (root / "nasbench101" / CSV_NAME).is_file():
        pytest.skip(f"NAS-Bench-101 30k table not found at {root / 'nasbench101' / CSV_NAME}; "
                    f"set NORD_DATA to the folder holding nasbench101/{CSV_NAME}")
    return root


def read_rows(csv_path):
    """The table read independently with the csv module: hash -> row dict."""
    with gzip.open(csv_path, "rt", newline="") as handle:
        return {row["hash"]: row for row in csv.DictReader(handle)}


def cell_of_row(row):
    """``(matrix, ops)`` of a row of the csv table."""
    n = int(row["num_vertices"])
    flat = row["matrix_flat_row_major"]
    return [[int(flat[i * n + j]) for j in range(n)] for i in range(n)], row["ops"].split(",")


def scrambled(matrix, ops, rng, prefix="v"):
    """The same cell as a descriptor with new names and a random insertion order."""
    order = list(rng.permutation(len(ops)))
    names = {i: f"{prefix}{k}_{rng.integers(1000)}" for k, i in enumerate(order)}
    d = NeuralDescriptor()
    for i in order:
        d.add_layer(ops[i], None, names[i])
    edges = [(i, j) for i in range(len(ops)) for j in range(len(ops)) if matrix[i][j]]
    for k in rng.permutation(len(edges)):
        i, j = edges[k]
        d.connect_layers(names[i], names[j])
    return d


def listing_3_3(evaluator):
    """Thesis listing 3.3, NAS-Bench-101 part."""
    d = NeuralDescriptor()
    layers = evaluator.get_available_ops()
    d.add_layer("input", None, "in")
    d.add_layer_sequential(layers[0], None, "layer_1")
    d.add_layer_sequential(layers[2], None, "layer_2")
    d.add_layer_sequential("output", None, "out")
    d.connect_layers("layer_1", "out")
    return d


def chain(inner_ops, extra_edges=()):
    """input -> the inner ops in a chain (``n1``, ``n2``, ...) -> output, plus extra edges."""
    d = NeuralDescriptor()
    d.add_layer("input", None, "in")
    for i, op in enumerate(inner_ops):
        d.add_layer_sequential(op, None, f"n{i + 1}")
    d.add_layer_sequential("output", None, "out")
    for src, dst in extra_edges:
        d.connect_layers(src, dst)
    return d

