"""NAS-Bench-101 official tfrecords, read without TensorFlow; the tfrecord and protobuf units."""

import base64
import struct

import numpy as np
import pytest
from nasbench101_cases import CONV1, CONV3, LISTING_MATRIX, LISTING_OPS, POOL, listing_3_3

from nord.errors import DataNotFoundError, MetricNotAvailableError
from nord.neural_nets import NeuralDescriptor
from nord.neural_nets.benchmarks.nasbench101 import (NASBench_101Evaluator,
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
