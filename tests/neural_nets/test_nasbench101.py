"""NASBench_101Evaluator: the 30k csv table, official-format tfrecords, cells and errors.

Row hashes against the benchmark's keys are checked in test_graph_hash.py; here
lookups through descriptors are checked against the table's own values.
"""

import base64
import csv
import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from nord.errors import (DataNotFoundError, MetricNotAvailableError, NordError, NotInTableError,
                         OutOfSearchSpaceError)
from nord.neural_nets import NeuralDescriptor
from nord.neural_nets.benchmarks.nasbench101 import (CSV_NAME, OFFICIAL_URL,
                                                     NASBench_101Evaluator,
                                                     decode_model_metrics,
                                                     encode_model_metrics,
                                                     encode_nasbench_record,
                                                     write_nasbench_tfrecord)
from nord.neural_nets.benchmarks.tfrecord import (ProtobufError, TFRecordError, crc32c,
                                                  crc32c_many, decode_fields,
                                                  encode_bytes_field, encode_double_field,
                                                  encode_varint, encode_varint_field,
                                                  frame_record, iter_tfrecords,
                                                  masked_crc32c, write_tfrecords)
from nord.neural_nets.graph_hash import nasbench101_hash

CONV3, CONV1, POOL = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
FIRST_ROW = "00005c142e6f48ac74fdcf73e3439874"  # first row of the 30k table


# ---------------------------------------------------------------- fixtures
def _data_root() -> Path:
    if os.environ.get("NORD_DATA"):
        return Path(os.environ["NORD_DATA"])
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="module")
def data_root():
    root = _data_root()
    if not (root / "nasbench101" / CSV_NAME).is_file():
        pytest.skip(f"NAS-Bench-101 30k table not found at {root / 'nasbench101' / CSV_NAME}; "
                    f"set NORD_DATA to the folder holding nasbench101/{CSV_NAME}")
    return root


@pytest.fixture(scope="module")
def csv_path(data_root):
    return data_root / "nasbench101" / CSV_NAME


@pytest.fixture(scope="module")
def evaluator(csv_path):
    return NASBench_101Evaluator(csv_path)


@pytest.fixture(scope="module")
def rows(csv_path):
    """The table read independently with the csv module: hash -> row dict."""
    with gzip.open(csv_path, "rt", newline="") as handle:
        return {row["hash"]: row for row in csv.DictReader(handle)}


@pytest.fixture(autouse=True)
def _fresh_counter(request):
    if "evaluator" in request.fixturenames:
        request.getfixturevalue("evaluator").reset_counter()


def _cell(row):
    n = int(row["num_vertices"])
    flat = row["matrix_flat_row_major"]
    return [[int(flat[i * n + j]) for j in range(n)] for i in range(n)], row["ops"].split(",")


def _scrambled(matrix, ops, rng, prefix="v"):
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


LISTING_MATRIX = [[0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
LISTING_OPS = ["input", CONV3, POOL, "output"]


# ---------------------------------------------------------------- the csv table
def test_table_loads_fast_and_whole(evaluator, rows):
    assert len(evaluator) == 30001 == len(rows)
    assert set(evaluator.hashes) == set(rows)
    assert evaluator.source == "csv"
    assert evaluator.epochs == (4, 12, 36, 108)
    assert evaluator.metrics == ("validation_accuracy",)
    assert evaluator.load_seconds < 3.0  # about 0.3 s on one core; generous for CI


def test_available_ops_in_official_order(evaluator):
    assert evaluator.get_available_ops() == [CONV3, CONV1, POOL]
    assert "input" not in evaluator.get_available_ops()


def test_known_first_row(evaluator):
    d = evaluator.matrix_to_descriptor(*_cell({
        "num_vertices": "7",
        "matrix_flat_row_major": "0110010000100000000100000101000001000000010000000",
        "ops": f"input,{CONV3},{CONV3},{POOL},{CONV3},{CONV1},output"}))
    assert evaluator.hash_of(d) == FIRST_ROW
    assert evaluator.descriptor_evaluate(d) == (0.9304887652397156, 1768.9759521484375)
    assert evaluator.descriptor_evaluate(d, epochs=4)[0] == 0.3604767620563507
    assert evaluator.descriptor_evaluate(d, epochs=12)[0] == 0.42197516560554504
    assert evaluator.descriptor_evaluate(d, epochs=36)[0] == 0.9001402258872986
    assert evaluator.get_metrics(d)["trainable_parameters"] == 8555530
    assert evaluator.get_metrics(FIRST_ROW)["hash"] == FIRST_ROW


def test_lookups_of_scrambled_rows_return_the_rows_values(evaluator, rows):
    rng = np.random.default_rng(0)
    keys = sorted(rows)
    for k in rng.choice(len(keys), size=300, replace=False):
        row = rows[keys[k]]
        matrix, ops = _cell(row)
        d = _scrambled(matrix, ops, rng)
        for epochs in (4, 12, 36, 108):
            value, seconds = evaluator.descriptor_evaluate(d, epochs=epochs)
            assert value == float(row[f"val_acc_{epochs}ep"])
        assert seconds == float(row["final_training_time_108ep"])
        assert evaluator.hash_of(d) == row["hash"] == evaluator.hash_of((matrix, ops))
        assert evaluator.get_metrics(d)["trainable_parameters"] == int(row["trainable_parameters"])
        got_matrix, got_ops = evaluator.descriptor_to_matrix(d)
        assert nasbench101_hash(got_matrix, got_ops) == row["hash"]


def test_training_time_below_108_epochs_is_a_scaled_estimate(evaluator, csv_path, rows):
    d = evaluator.matrix_to_descriptor(*_cell(rows[FIRST_ROW]))
    time108 = float(rows[FIRST_ROW]["final_training_time_108ep"])
    assert evaluator.descriptor_evaluate(d, epochs=12)[1] == pytest.approx(time108 * 12 / 108)
    assert evaluator.is_time_estimated(12) and not evaluator.is_time_estimated(108)
    honest = NASBench_101Evaluator(csv_path, low_fidelity_time="nan")
    value, seconds = honest.descriptor_evaluate(d, epochs=12)
    assert value == 0.42197516560554504 and math.isnan(seconds)
    assert honest.queries == 1 and honest.simulated_time == 0.0
    assert honest.descriptor_evaluate(d)[1] == time108


def test_descriptor_to_matrix_prunes_and_orders(evaluator):
    matrix, ops = evaluator.descriptor_to_matrix(listing_3_3(evaluator))
    assert matrix.tolist() == LISTING_MATRIX and ops == LISTING_OPS
    assert evaluator.matrix_to_descriptor(matrix, ops).layers.keys() == \
        {"in", "layer_1", "layer_2", "out"}


# ---------------------------------------------------------------- listing 3.3
def test_listing_3_3_runs_and_its_cell_is_not_in_the_30k_subset(data_root, monkeypatch):
    monkeypatch.setenv("NORD_DATA", str(data_root))
    evaluator = NASBench_101Evaluator()
    d = listing_3_3(evaluator)
    assert not evaluator.is_held(d)
    with pytest.raises(NotInTableError, match="sample()") as info:
        evaluator.descriptor_evaluate(d, acc="validation_accuracy")
    assert not isinstance(info.value, OutOfSearchSpaceError)
    assert evaluator.queries == 0


# ---------------------------------------------------------------- isomorphism, roles
def test_isomorphic_descriptors_get_the_same_answer(evaluator):
    d = evaluator.sample(np.random.default_rng(3))[0]
    base = evaluator.descriptor_evaluate(d)
    matrix, ops = evaluator.descriptor_to_matrix(d)
    rng = np.random.default_rng(4)
    for _ in range(5):
        assert evaluator.descriptor_evaluate(_scrambled(matrix, ops, rng, "x")) == base
    # extra dangling layers (off every input->output path) are pruned
    extra = _scrambled(matrix, ops, rng, "y")
    first_inner = next(n for n, s in extra.layers.items() if s.layer not in ("input", "output"))
    inp = next(n for n, s in extra.layers.items() if s.layer == "input")
    out = next(n for n, s in extra.layers.items() if s.layer == "output")
    extra.add_layer(CONV1, None, "dead_end")              # fed, but reaches nothing
    extra.connect_layers(inp, "dead_end")
    extra.add_layer(nn.Conv2d, {"kernel_size": 3}, "orphan")  # reaches the output only
    extra.connect_layers("orphan", out)
    extra.connect_layers(first_inner, "dead_end")
    assert len(extra) == len(ops) + 2
    assert evaluator.descriptor_evaluate(extra) == base
    got_matrix, got_ops = evaluator.descriptor_to_matrix(extra)
    assert nasbench101_hash(got_matrix, got_ops) == evaluator.hash_of(d)


def test_input_and_output_are_found_by_role(evaluator):
    d = evaluator.sample(np.random.default_rng(5))[0]
    matrix, ops = evaluator.descriptor_to_matrix(d)
    n = len(ops)
    names = ["a_out"] + [f"m{i}" for i in range(1, n - 1)] + ["z_in"]
    backwards = NeuralDescriptor()
    backwards.add_layer("output", None, names[0])           # output added first
    for i in range(1, n - 1):
        backwards.add_layer(ops[i], None, names[i])
    backwards.add_layer("input", None, names[-1])            # input added last
    rename = {0: names[-1], n - 1: names[0], **{i: names[i] for i in range(1, n - 1)}}
    for i in range(n):
        for j in range(n):
            if matrix[i][j]:
                backwards.connect_layers(rename[i], rename[j])
    assert backwards.first_layer == "a_out" and backwards.last_layer == "z_in"
    assert evaluator.descriptor_evaluate(backwards) == evaluator.descriptor_evaluate(d)
    got_matrix, got_ops = evaluator.descriptor_to_matrix(backwards)
    assert got_ops[0] == "input" and got_ops[-1] == "output"
    assert got_matrix.tolist() == np.triu(got_matrix, 1).tolist()


def test_untyped_first_and_last_layers_stand_in_for_input_and_output(evaluator):
    d = NeuralDescriptor()
    d.add_layer(None, None, "start")
    d.add_layer_sequential(CONV3, None, "c")
    d.add_layer_sequential(None, None, "end")
    assert evaluator.descriptor_to_matrix(d)[1] == ["input", CONV3, "output"]


# ---------------------------------------------------------------- out of the space
def _chain(inner_ops, extra_edges=()):
    d = NeuralDescriptor()
    d.add_layer("input", None, "in")
    for i, op in enumerate(inner_ops):
        d.add_layer_sequential(op, None, f"n{i + 1}")
    d.add_layer_sequential("output", None, "out")
    for src, dst in extra_edges:
        d.connect_layers(src, dst)
    return d


def test_too_many_vertices(evaluator):
    with pytest.raises(OutOfSearchSpaceError, match="8 vertices"):
        evaluator.descriptor_evaluate(_chain([CONV3] * 6))
    # a dead 8th vertex is pruned first, as NAS-Bench-101 prunes
    d = _chain([CONV3] * 5)
    d.add_layer(POOL, None, "dead")
    d.connect_layers("in", "dead")
    assert evaluator.descriptor_to_matrix(d)[0].shape == (7, 7)
    assert not evaluator.is_held(_chain([CONV3] * 6))


def test_too_many_edges(evaluator):
    d = _chain([CONV3, CONV1, POOL, CONV3, CONV1],
               [("in", "n2"), ("in", "n3"), ("in", "n4"), ("n1", "out")])
    with pytest.raises(OutOfSearchSpaceError, match="10 edges"):
        evaluator.descriptor_evaluate(d)
    d.disconnect_layers("in", "n4")
    evaluator.descriptor_to_matrix(d)  # 9 edges: inside the space


@pytest.mark.parametrize("layer, params, match", [
    ("conv5x5-bn-relu", None, "available ops"),
    ("conv3x3", None, "did you mean 'conv3x3-bn-relu'"),
    (nn.Conv2d, None, "Conv2d"),
    (CONV3, {"out_channels": 8}, "parameters"),
])
def test_unknown_ops_and_params(evaluator, layer, params, match):
    d = NeuralDescriptor()
    d.add_layer("input", None, "in")
    d.add_layer_sequential(layer, params, "odd")
    d.add_layer_sequential("output", None, "out")
    with pytest.raises(OutOfSearchSpaceError, match=match) as info:
        evaluator.descriptor_evaluate(d)
    assert "maxpool3x3" in str(info.value) or match == "parameters"
    assert evaluator.queries == 0


def test_cycles_paths_and_ambiguous_roles(evaluator):
    d = _chain([CONV3, CONV1])
    d.connect_layers("n2", "n1")
    with pytest.raises(OutOfSearchSpaceError, match="cycle.*n1 -> n2 -> n1"):
        evaluator.descriptor_evaluate(d)
    d = _chain([CONV3])
    d.disconnect_layers("n1", "out")
    with pytest.raises(OutOfSearchSpaceError, match="no path"):
        evaluator.descriptor_evaluate(d)
    d = _chain([CONV3])
    d.add_layer("input", None, "in2")
    with pytest.raises(OutOfSearchSpaceError, match="2 layers of type 'input'"):
        evaluator.descriptor_evaluate(d)
    d = NeuralDescriptor()
    d.add_layer(CONV3, None, "a")
    d.add_layer_sequential("output", None, "out")
    with pytest.raises(OutOfSearchSpaceError, match="no layer of type 'input'"):
        evaluator.descriptor_evaluate(d)
    with pytest.raises(OutOfSearchSpaceError):
        evaluator.hash_of(([[0, 1], [1, 0]], ["input", "output"]))


def test_valid_cell_missing_from_table(evaluator, rows):
    missing = _chain([CONV3, POOL, CONV1, CONV1, POOL], [("in", "n3")])
    key = nasbench101_hash(*evaluator.descriptor_to_matrix(missing))
    assert key not in rows
    with pytest.raises(NotInTableError, match=key):
        evaluator.descriptor_evaluate(missing)
    assert not isinstance(NotInTableError("x"), OutOfSearchSpaceError)
    assert isinstance(NotInTableError("x"), NordError)
    assert evaluator.queries == 0 and evaluator.simulated_time == 0


# ---------------------------------------------------------------- staying inside
def test_sample_best_and_membership(evaluator, rows):
    first = evaluator.sample(np.random.default_rng(7), n=20)
    again = evaluator.sample(7, n=20)
    assert [evaluator.hash_of(d) for d in first] == [evaluator.hash_of(d) for d in again]
    assert len({evaluator.hash_of(d) for d in first}) == 20
    assert all(evaluator.is_held(d) and d in evaluator for d in first)
    assert evaluator.contains(FIRST_ROW) and not evaluator.is_held("0" * 32)
    assert not evaluator.is_held(listing_3_3(evaluator))
    best = evaluator.best()
    top = max(rows.values(), key=lambda r: float(r["val_acc_108ep"]))
    assert best.hash == top["hash"] and best.value == float(top["val_acc_108ep"])
    assert nasbench101_hash(best.matrix, best.ops) == best.hash
    best4 = evaluator.best(epochs=4)
    assert best4.value == max(float(r["val_acc_4ep"]) for r in rows.values())
    assert evaluator.queries == 0


def test_counter_and_simulated_clock(evaluator):
    cells = evaluator.sample(np.random.default_rng(8), n=3)
    times = [evaluator.descriptor_evaluate(d)[1] for d in cells]
    times.append(evaluator.descriptor_evaluate(cells[0], epochs=36)[1])
    assert evaluator.queries == 4
    assert evaluator.simulated_time == pytest.approx(sum(times))
    with pytest.raises(NotInTableError):
        evaluator.descriptor_evaluate(listing_3_3(evaluator))
    with pytest.raises(OutOfSearchSpaceError):
        evaluator.descriptor_evaluate(_chain([CONV3] * 6))
    evaluator.get_metrics(cells[0])
    evaluator.is_held(cells[0])
    assert evaluator.queries == 4  # failures and analysis calls are free
    evaluator.reset_counter()
    assert evaluator.queries == 0 and evaluator.simulated_time == 0.0
    value, seconds = evaluator.descriptor_evaluate(cells[1])
    assert evaluator.queries == 1 and evaluator.simulated_time == seconds


def test_bad_settings_are_explained(evaluator):
    d = evaluator.sample(np.random.default_rng(9))[0]
    with pytest.raises(MetricNotAvailableError, match="only validation_accuracy.*tfrecord"):
        evaluator.descriptor_evaluate(d, acc="test_accuracy")
    with pytest.raises(MetricNotAvailableError, match=r"epochs must be one of \[4, 12, 36, 108\]"):
        evaluator.descriptor_evaluate(d, epochs=50)
    with pytest.raises(MetricNotAvailableError, match="acc must be one of"):
        evaluator.descriptor_evaluate(d, acc="val_acc")
    with pytest.raises(MetricNotAvailableError, match="halfway"):
        evaluator.descriptor_evaluate(d, stop_halfway=True)
    assert evaluator.queries == 0


# ---------------------------------------------------------------- finding the table
def test_missing_table_names_every_path_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("NORD_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("NORD_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError) as info:
        NASBench_101Evaluator()
    message = str(info.value)
    for folder in (tmp_path / "data" / "nasbench101", tmp_path / "cache" / "nasbench101"):
        for name in (CSV_NAME, "nasbench_only108.tfrecord", "nasbench_full.tfrecord"):
            assert str(folder / name) in message
    assert OFFICIAL_URL in message and "NORD_DATA" in message
    with pytest.raises(DataNotFoundError, match="nowhere.csv.gz"):
        NASBench_101Evaluator(tmp_path / "nowhere.csv.gz")


def test_table_is_found_in_nord_data_then_the_cache(tmp_path, monkeypatch, data_root,
                                                    csv_path):
    cache = tmp_path / "cache" / "nasbench101"
    cache.mkdir(parents=True)
    (cache / CSV_NAME).symlink_to(csv_path)
    monkeypatch.setenv("NORD_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NORD_DATA", str(data_root))
    assert NASBench_101Evaluator().path == csv_path
    monkeypatch.delenv("NORD_DATA")
    assert NASBench_101Evaluator().path == cache / CSV_NAME
    assert NASBench_101Evaluator(cache).path == cache / CSV_NAME
    monkeypatch.delenv("NORD_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "nord").mkdir(parents=True)
    (tmp_path / "xdg" / "nord" / "nasbench101").symlink_to(cache)
    assert NASBench_101Evaluator().path == tmp_path / "xdg" / "nord" / "nasbench101" / CSV_NAME


HEADER = ("hash,num_vertices,num_edges,matrix_flat_row_major,ops,val_acc_4ep,val_acc_12ep,"
          "val_acc_36ep,val_acc_108ep,trainable_parameters,final_training_time_108ep,"
          "in_20k_file,in_10k_file")
GOOD = (f'{FIRST_ROW},7,9,0110010000100000000100000101000001000000010000000,'
        f'"input,{CONV3},{CONV3},{POOL},{CONV3},{CONV1},output",0.36,0.42,0.90,0.93,'
        f'8555530,1768.97,1,0')


@pytest.mark.parametrize("bad_row, match", [
    ("2" + GOOD[1:].replace("0.42", "abc"), "line 3.*malformed"),
    ("2" + GOOD[1:].replace(",7,9,", ",7,8,"), "line 3.*num_edges"),
    ("2" + GOOD[1:].replace("maxpool3x3", "avgpool3x3"), "line 3.*unknown op"),
    ("2" + GOOD[1:].replace("0.93", "93.0"), "line 3.*fraction"),
    (GOOD, "line 3.*already appeared on line 2"),
    ("2" + GOOD[1:].replace("01100100001000", "01100101000000"), "line 3.*upper triangular"),
    (GOOD.rsplit(",", 1)[0], "line 3.*fields"),
])
def test_malformed_csv_names_file_and_line(tmp_path, bad_row, match):
    path = tmp_path / "bad.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join([HEADER, GOOD, bad_row]) + "\n")
    with pytest.raises(DataNotFoundError, match=match) as info:
        NASBench_101Evaluator(path)
    assert str(path) in str(info.value)


def test_csv_without_required_columns(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataNotFoundError, match="line 1.*lacks"):
        NASBench_101Evaluator(path)
    small = tmp_path / "small.csv"
    small.write_text(HEADER + "\n" + GOOD + "\n")
    assert len(NASBench_101Evaluator(small)) == 1


# ---------------------------------------------------------------- official tfrecords
def _runs(base, epochs, repeats=3):
    """Metrics of ``repeats`` runs in the official layout: start, halfway, end."""
    runs = []
    for r in range(repeats):
        final = base + 0.01 * r
        runs.append([
            {"current_epoch": 0.0, "training_time": 0.0, "train_accuracy": 0.1,
             "validation_accuracy": 0.1, "test_accuracy": 0.1},
            {"current_epoch": epochs / 2, "training_time": 5.0 * epochs + r,
             "train_accuracy": final - 0.1, "validation_accuracy": final - 0.2,
             "test_accuracy": final - 0.25, "checkpoint_path": f"gs://x/model.ckpt-{r}"},
            {"current_epoch": float(epochs), "training_time": 10.0 * epochs + r,
             "train_accuracy": final + 0.05, "validation_accuracy": final,
             "test_accuracy": final - 0.01, "checkpoint_path": f"gs://x/model.ckpt-{r}"},
        ])
    return runs


CELLS = [  # (matrix, ops, base accuracy, parameters)
    (LISTING_MATRIX, LISTING_OPS, 0.80, 1234567),
    ([[0, 1], [0, 0]], ["input", "output"], 0.10, 0),
    ([[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
     ["input", CONV1, CONV3, POOL, "output"], 0.90, 2000000),
]


def _tfrecord_rows(epochs_list=(4, 108)):
    for matrix, ops, base, params in CELLS:
        key = nasbench101_hash(matrix, ops)
        for epochs in epochs_list:
            for evaluation_data in _runs(base - (0.3 if epochs == 4 else 0), epochs):
                yield key, epochs, matrix, ops, evaluation_data, params


@pytest.fixture
def tfrecord(tmp_path):
    return write_nasbench_tfrecord(tmp_path / "nasbench_full.tfrecord", _tfrecord_rows())


def test_tfrecord_values_are_means_over_three_runs(tfrecord):
    evaluator = NASBench_101Evaluator(tfrecord)
    assert evaluator.source == "tfrecord" and len(evaluator) == 3
    assert evaluator.epochs == (4, 108) and evaluator.num_repeats == 3
    assert evaluator.metrics == ("train_accuracy", "validation_accuracy", "test_accuracy")
    d = listing_3_3(evaluator)                       # listing 3.3 works end to end
    val_acc, train_time = evaluator.descriptor_evaluate(d, acc="validation_accuracy")
    assert val_acc == pytest.approx(0.81) and train_time == pytest.approx(1081.0)
    assert evaluator.descriptor_evaluate(d, acc="test_accuracy")[0] == pytest.approx(0.80)
    assert evaluator.descriptor_evaluate(d, acc="train_accuracy")[0] == pytest.approx(0.86)
    assert evaluator.descriptor_evaluate(d, epochs=4) == (pytest.approx(0.51),
                                                         pytest.approx(41.0))
    half = evaluator.descriptor_evaluate(d, stop_halfway=True)
    assert half == (pytest.approx(0.61), pytest.approx(541.0))
    assert evaluator.queries == 5
    assert not evaluator.is_time_estimated(4)
    metrics = evaluator.get_metrics(d)
    assert metrics["trainable_parameters"] == 1234567
    assert [run["final_validation_accuracy"] for run in metrics["computed"][108]] == \
        pytest.approx([0.80, 0.81, 0.82])
    result = evaluator.query((LISTING_MATRIX, LISTING_OPS))
    assert result["test_accuracy"] == pytest.approx(0.80)
    assert result["module_adjacency"].tolist() == LISTING_MATRIX
    tiny = NeuralDescriptor()
    tiny.add_layer("input", None, "i")
    tiny.add_layer_sequential("output", None, "o")
    assert evaluator.descriptor_evaluate(tiny)[0] == pytest.approx(0.11)
    assert evaluator.best(acc="test_accuracy").value == pytest.approx(0.90)


def test_tfrecord_sampled_runs_are_seeded(tfrecord):
    a = NASBench_101Evaluator(tfrecord, repeat="sample", seed=1)
    b = NASBench_101Evaluator(tfrecord, repeat="sample", seed=1)
    d = listing_3_3(a)
    drawn = [a.descriptor_evaluate(d) for _ in range(30)]
    assert drawn == [b.descriptor_evaluate(d) for _ in range(30)]
    assert {round(v, 6) for v, _ in drawn} == {0.80, 0.81, 0.82}
    for value, seconds in drawn:  # accuracy and time come from the same run
        assert seconds == pytest.approx(1080.0 + round((value - 0.80) * 100))
    assert a.simulated_time == pytest.approx(sum(s for _, s in drawn))


def test_tfrecord_runs_in_any_record_order(tmp_path, tfrecord):
    rows = list(_tfrecord_rows())
    shuffled = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))]
    other = NASBench_101Evaluator(write_nasbench_tfrecord(tmp_path / "x.tfrecord", shuffled))
    reference = NASBench_101Evaluator(tfrecord)
    for matrix, ops, _, _ in CELLS:
        for epochs in (4, 108):
            for acc in reference.metrics:
                assert other.descriptor_evaluate(other.matrix_to_descriptor(matrix, ops),
                                                 acc=acc, epochs=epochs) == \
                    pytest.approx(reference.descriptor_evaluate(
                        reference.matrix_to_descriptor(matrix, ops), acc=acc, epochs=epochs))
        runs = other.get_metrics((matrix, ops))["computed"][108]
        assert len(runs) == 3 and len({r["final_test_accuracy"] for r in runs}) == 3


def test_tfrecord_only108_layout(tmp_path):
    path = write_nasbench_tfrecord(tmp_path / "nasbench_only108.tfrecord",
                                   _tfrecord_rows(epochs_list=(108,)))
    evaluator = NASBench_101Evaluator(tmp_path)        # a folder holding the file
    assert evaluator.path == path and evaluator.epochs == (108,)
    with pytest.raises(MetricNotAvailableError, match=r"\[108\]"):
        evaluator.descriptor_evaluate(listing_3_3(evaluator), epochs=4)


def _corrupt(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _record_offsets(path):
    offsets, offset, data = [], 0, path.read_bytes()
    while offset < len(data):
        offsets.append(offset)
        offset += 16 + struct.unpack_from("<Q", data, offset)[0]
    return offsets


def test_tfrecord_damaged_data_names_file_and_record(tfrecord):
    offsets = _record_offsets(tfrecord)
    _corrupt(tfrecord, offsets[4] + 12 + 20)
    with pytest.raises(TFRecordError, match="record 5 .*damaged") as info:
        NASBench_101Evaluator(tfrecord)
    assert str(tfrecord) in str(info.value)
    assert isinstance(info.value, DataNotFoundError)


def test_tfrecord_damaged_length_names_file_and_record(tfrecord):
    _corrupt(tfrecord, _record_offsets(tfrecord)[2] + 3)
    with pytest.raises(TFRecordError, match=f"{tfrecord}: record 3 .*length"):
        NASBench_101Evaluator(tfrecord)


def test_tfrecord_truncated(tfrecord):
    data = tfrecord.read_bytes()
    offsets = _record_offsets(tfrecord)
    tfrecord.write_bytes(data[:offsets[-1] + 30])
    with pytest.raises(TFRecordError, match=f"record {len(offsets)} .*truncated"):
        NASBench_101Evaluator(tfrecord)
    tfrecord.write_bytes(data[:offsets[-1] + 5])
    with pytest.raises(TFRecordError, match="truncated"):
        NASBench_101Evaluator(tfrecord)


_METRICS = base64.b64encode(encode_model_metrics([{"validation_accuracy": 0.5}]))


@pytest.mark.parametrize("bad, match", [
    (b"{not json", "not a NAS-Bench-101 row"),
    (b'["a", 108, "01"]', "expected a JSON list"),
    (b'["a", "108", "0100", "input,output", ""]', r"expected \[str, int"),
    (b'["a", 108, "0100", "input,output", "@@@"]', "record 2"),
    (b'["a", 108, "010", "input,output", "' + _METRICS + b'"]', "square"),
    (b'["a", 108, "0100", "input,output", ""]', "no evaluation_data"),
    (b'["a", 108, "0100", "input,conv,output", "' + _METRICS + b'"]', "ops"),
    (b'["a", 108, "0100", "input,output", "' + base64.b64encode(b"\x0a\x05ab")
     + b'"]', "ends inside"),
])
def test_tfrecord_malformed_row_names_file_and_record(tmp_path, bad, match):
    good = next(iter(_tfrecord_rows()))
    first = encode_nasbench_record(*good[:4], encode_model_metrics(good[4], good[5]))
    path = write_tfrecords(tmp_path / "rows.tfrecord", [first, bad])
    with pytest.raises(TFRecordError, match=match) as info:
        NASBench_101Evaluator(path)
    assert f"{path}: record 2" in str(info.value)


# ---------------------------------------------------------------- tfrecord / protobuf units
def test_crc32c_known_values():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    assert crc32c(b"56789", crc32c(b"1234")) == 0xE3069283
    chunks = [b"", b"a", b"123456789", bytes(range(256)) * 3, b"xyz" * 50]
    assert crc32c_many(chunks).tolist() == [crc32c(c) for c in chunks]
    record = frame_record(b"hello")
    assert struct.unpack_from("<I", record, 8)[0] == masked_crc32c(record[:8])


def test_tfrecord_round_trip_in_batches(tmp_path):
    records = [bytes([i % 251]) * (i * 7 % 300) for i in range(50)]
    path = write_tfrecords(tmp_path / "r.tfrecord", records)
    assert [data for _, data in iter_tfrecords(path, batch=7)] == records
    assert [number for number, _ in iter_tfrecords(path)] == list(range(1, 51))


def test_protobuf_fields_and_unknown_fields_are_skipped():
    message = (encode_bytes_field(1, encode_double_field(4, 0.75)
                                  + encode_varint_field(9, 300)          # unknown varint
                                  + b"\x55" + b"\x01\x02\x03\x04"         # unknown fixed32 (10)
                                  + encode_bytes_field(6, "ckpt"))
               + encode_varint_field(2, 4000000) + encode_double_field(3, 12.5)
               + encode_bytes_field(15, b"ignored"))
    decoded = decode_model_metrics(message)
    assert decoded["trainable_parameters"] == 4000000 and decoded["total_time"] == 12.5
    entry = decoded["evaluation_data"][0]
    assert entry["validation_accuracy"] == 0.75 and entry["checkpoint_path"] == "ckpt"
    assert entry["test_accuracy"] == 0.0  # proto2 default, as the official API reads it
    assert decode_fields(encode_varint_field(1, 1 << 40)) == [(1, 0, 1 << 40)]
    assert encode_varint(300) == b"\xac\x02"
    with pytest.raises(ProtobufError):
        decode_fields(encode_double_field(1, 1.0)[:-1])
    with pytest.raises(ProtobufError):
        decode_fields(b"\x0a\x05ab")
    with pytest.raises(ProtobufError):
        decode_model_metrics(encode_varint_field(1, 5))
    assert decode_model_metrics(encode_varint_field(2, -1))["trainable_parameters"] == -1
    assert decode_model_metrics(encode_double_field(2, 5.0))["trainable_parameters"] == 5
