"""Shared cases for the NAS-Bench-201 tests: the table, known cells, descriptor builders."""

import os
from pathlib import Path

import pytest

from nord.neural_nets.benchmarks.nasbench201 import NATSBench_Evaluator
from nord.neural_nets.neural_descriptor import NeuralDescriptor

DATA_ROOT = Path(os.environ.get("NORD_DATA",
                                Path(__file__).resolve().parents[3] / "shared" / "data"))
TABLE = DATA_ROOT / "nasbench201" / "nb201_tables.csv"

LISTING_3_3 = ("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+"
               "|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|")
BEST = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def evaluator_or_skip() -> NATSBench_Evaluator:
    """An evaluator over ``TABLE``; skips the test when the table is not there."""
    if not TABLE.is_file():
        pytest.skip(f"NAS-Bench-201 table not found at {TABLE}; set NORD_DATA to the "
                    f"folder holding nasbench201/nb201_tables.csv to run these tests")
    return NATSBench_Evaluator(TABLE)


def listing_3_3(extra_chain_op=False):
    """Thesis listing 3.3 (optionally with the fifth chained op it warns about)."""
    d = NeuralDescriptor()
    d.add_layer("IN", None, "IN")
    d.add_layer_sequential("nor_conv_3x3", None, "1")
    d.add_layer_sequential("nor_conv_1x1", None, "2")
    d.add_layer_sequential("avg_pool_3x3", None, "3")
    if extra_chain_op:
        d.add_layer_sequential("avg_pool_3x3", None, "4")
    d.add_layer_sequential("OUT", None, "OUT")
    skip = "4b" if extra_chain_op else "4"   # the listing's name "4" would clash
    d.add_layer("skip_connect", None, skip)
    d.connect_layers("1", skip)
    d.connect_layers(skip, "OUT")
    d.add_layer("skip_connect", None, "5")
    d.connect_layers("IN", "5")
    d.connect_layers("5", "3")
    d.add_layer("nor_conv_3x3", None, "6")
    d.connect_layers("IN", "6")
    d.connect_layers("6", "OUT")
    return d



def chain(*ops):
    """IN -> the ops in a chain (``op1``, ``op2``, ...) -> OUT."""
    d = NeuralDescriptor()
    d.add_layer("IN", None, "IN")
    for i, op in enumerate(ops, start=1):
        d.add_layer_sequential(op, None, f"op{i}")
    d.add_layer_sequential("OUT", None, "OUT")
    return d


def scrambled(descriptor, rng):
    """An isomorphic copy: new names, shuffled layer and connection order."""
    names = list(descriptor.layers)
    rng.shuffle(names)
    new = {n: f"x{rng.randrange(10 ** 6)}_{k}" for k, n in enumerate(names)}
    copy = NeuralDescriptor()
    for n in names:
        copy.add_layer(descriptor.layers[n].layer, {"ignored": 1}, new[n])
    edges = list(descriptor.edges())
    rng.shuffle(edges)
    for a, b in edges:
        copy.connect_layers(new[a], new[b])
    return copy
