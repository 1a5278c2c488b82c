"""NASBench_101Evaluator on the 30k csv table: lookups, listing 3.3, counters, settings.

Row hashes against the benchmark's keys are checked in test_graph_hash.py; here
lookups through descriptors are checked against the table's own values.
"""

import math

import numpy as np
import pytest
from nasbench101_cases import (CONV1, CONV3, FIRST_ROW, LISTING_MATRIX, LISTING_OPS, POOL,
                               cell_of_row, chain, listing_3_3, read_rows,
                               scrambled)

from nord.errors import MetricNotAvailableError, NotInTableError, OutOfSearchSpaceError
from nord.neural_nets.benchmarks import (nasbench101, nasbench101_cells, nasbench101_records,
                                         nasbench101_tables)
from nord.neural_nets.benchmarks.nasbench101 import NASBench_101Evaluator
from nord.neural_nets.graph_hash import nasbench101_hash


@pytest.fixture(scope="module")
def evaluator(csv_path):
    return NASBench_101Evaluator(csv_path)


@pytest.fixture(scope="module")
def rows(csv_path):
    return read_rows(csv_path)


@pytest.fixture(autouse=True)
def _fresh_counter(request):
    if "evaluator" in request.fixturenames:
        request.getfixturevalue("evaluator").reset_counter()


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
    d = evaluator.matrix_to_descriptor(*cell_of_row({
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
        matrix, ops = cell_of_row(row)
        d = scrambled(matrix, ops, rng)
        for epochs in (4, 12, 36, 108):
            value, seconds = evaluator.descriptor_evaluate(d, epochs=epochs)
            assert value == float(row[f"val_acc_{epochs}ep"])
        assert seconds == float(row["final_training_time_108ep"])
        assert evaluator.hash_of(d) == row["hash"] == evaluator.hash_of((matrix, ops))
        assert evaluator.get_metrics(d)["trainable_parameters"] == int(row["trainable_parameters"])
        got_matrix, got_ops = evaluator.descriptor_to_matrix(d)
        assert nasbench101_hash(got_matrix, got_ops) == row["hash"]


def test_training_time_below_108_epochs_is_a_scaled_estimate(evaluator, csv_path, rows):
    d = evaluator.matrix_to_descriptor(*cell_of_row(rows[FIRST_ROW]))
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



# ---------------------------------------------------------------- staying inside
def test_sampling_without_a_generator_follows_the_evaluators_seed(csv_path):
    first = NASBench_101Evaluator(csv_path)
    keys = [first.hash_of(d) for d in first.sample(n=1) + first.sample(n=1)]
    again = NASBench_101Evaluator(csv_path)  # the same default seed, 0
    assert [again.hash_of(again.sample()[0]) for _ in range(2)] == keys and keys[0] != keys[1]
    other = NASBench_101Evaluator(csv_path, seed=1)
    assert [other.hash_of(d) for d in other.sample(n=2)] != keys


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
        evaluator.descriptor_evaluate(chain([CONV3] * 6))
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



# ---------------------------------------------------------------- the module's names
def test_names_of_the_parts_are_reexported_by_nasbench101():
    for name in nasbench101.__all__:
        assert hasattr(nasbench101, name), name
    for part in (nasbench101_cells, nasbench101_records, nasbench101_tables):
        for name in part.__all__:
            # the table loaders' own names, and helpers the parts share with each other
            if name not in ("FULL_URL", "CSV_EPOCHS", "LoadedTable", "load_csv", "load_tfrecord",
                            "OP_LABEL", "lower_mask"):
                assert getattr(nasbench101, name) is getattr(part, name), name
