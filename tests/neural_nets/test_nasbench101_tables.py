"""NAS-Bench-101 tables: finding the file, and malformed csv tables named by file and line."""

import gzip
import zlib

import pytest
from nasbench101_cases import CONV1, CONV3, FIRST_ROW, POOL

from nord.errors import DamagedDataError, DataNotFoundError
from nord.neural_nets.benchmarks.nasbench101 import CSV_NAME, OFFICIAL_URL, NASBench_101Evaluator
from nord.neural_nets.benchmarks.nasbench101_records import write_nasbench_tfrecord
from nord.neural_nets.benchmarks.tfrecord import TFRecordTruncatedError
from nord.neural_nets.graph_hash import nasbench101_hash


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



# ---------------------------------------------------------------- tables cut short
def _official_text(csv_path):
    return gzip.decompress(csv_path.read_bytes()).decode()


def test_the_official_csv_with_rows_missing_says_how_many(tmp_path, csv_path):
    lines = _official_text(csv_path).splitlines(keepends=True)
    assert len(lines) == 30002
    path = tmp_path / CSV_NAME
    path.write_bytes(gzip.compress("".join(lines[:20000]).encode()))
    with pytest.raises(DamagedDataError) as info:
        NASBench_101Evaluator(path)
    assert str(info.value) == (
        f"{path} holds 19,999 rows but the official {CSV_NAME} holds 30,001 (10,002 "
        f"missing): the file is cut short; re-download it, or give a deliberate subset "
        f"another file name")


def test_a_cut_gzip_file_says_how_many_rows_it_holds(tmp_path, csv_path):
    raw = csv_path.read_bytes()
    cut = raw[:len(raw) // 2]
    readable = zlib.decompressobj(wbits=31).decompress(cut).decode()
    rows = readable.count("\n") - 1                       # complete lines, less the header
    path = tmp_path / CSV_NAME
    path.write_bytes(cut)
    with pytest.raises(DamagedDataError) as info:
        NASBench_101Evaluator(path)
    assert str(info.value) == (
        f"{path} is cut short: its gzip stream ends after {rows:,} rows of the 30,001 in "
        f"the official {CSV_NAME} ({30001 - rows:,} missing); re-download the table")
    assert 14000 < rows < 16000
    other = tmp_path / "mine.csv.gz"
    other.write_bytes(cut)
    with pytest.raises(DamagedDataError, match=rf"mine\.csv\.gz is cut short: its gzip stream "
                                               rf"ends after {rows:,} rows; re-download"):
        NASBench_101Evaluator(other)


def test_a_table_cut_inside_a_row_says_so(tmp_path, csv_path):
    lines = _official_text(csv_path).splitlines(keepends=True)
    partial = lines[1001][:50]                            # hash and part of the matrix
    path = tmp_path / CSV_NAME
    path.write_bytes(gzip.compress(("".join(lines[:1001]) + partial).encode()))
    with pytest.raises(DamagedDataError) as info:
        NASBench_101Evaluator(path)
    assert str(info.value) == (
        f"{path}, line 1002: the file ends inside a row (4 fields, the header has 13), so "
        f"it is cut short after 1,000 rows of the 30,001 in the official {CSV_NAME} "
        f"(29,001 missing); re-download the table")
    # A short row that ends its line is malformed, not cut.
    path.write_bytes(gzip.compress(("".join(lines[:1001]) + partial + "\n").encode()))
    with pytest.raises(DataNotFoundError, match="line 1002: malformed row") as info:
        NASBench_101Evaluator(path)
    assert not isinstance(info.value, DamagedDataError)


def test_a_user_subset_loads_and_its_count_is_logged(tmp_path, caplog):
    path = tmp_path / "subset.csv"
    path.write_text(HEADER + "\n" + GOOD + "\n")
    with caplog.at_level("WARNING", logger="nord.neural_nets.benchmarks.nasbench101_tables"):
        assert len(NASBench_101Evaluator(path)) == 1
    assert f"{path} holds 1 of the 423624 NAS-Bench-101 cells" in caplog.text


def test_the_whole_official_csv_loads_without_a_warning(csv_path, caplog):
    with caplog.at_level("WARNING"):
        assert len(NASBench_101Evaluator(csv_path)) == 30001
    assert caplog.text == ""


def _three_run_records(cells=4):
    runs = [[{"current_epoch": 0.0}, {"current_epoch": 54.0},
             {"current_epoch": 108.0, "training_time": 100.0 + r, "train_accuracy": 0.9,
              "validation_accuracy": 0.8, "test_accuracy": 0.7}] for r in range(3)]
    for size in range(2, 2 + cells):
        matrix = [[int(j == i + 1) for j in range(size)] for i in range(size)]
        ops = ["input"] + [CONV3] * (size - 2) + ["output"]
        for run in runs:
            yield nasbench101_hash(matrix, ops), 108, matrix, ops, run, 1000 * size


def test_an_official_tfrecord_cut_inside_a_record_says_how_many_are_missing(tmp_path, caplog):
    path = write_nasbench_tfrecord(tmp_path / "nasbench_only108.tfrecord", _three_run_records())
    data = path.read_bytes()
    with caplog.at_level("WARNING", logger="nord.neural_nets.benchmarks.nasbench101_tables"):
        assert len(NASBench_101Evaluator(path)) == 4    # a subset under the official name
    assert (f"{path} holds 4 of the 423624 NAS-Bench-101 cells (423620 missing); if it was "
            f"cut short, re-download it" in caplog.text)
    path.write_bytes(data[:len(data) - 40])             # inside the 12th record
    with pytest.raises(TFRecordTruncatedError) as info:
        NASBench_101Evaluator(path)
    assert str(info.value).endswith(
        "(it holds 11 complete records of the 1,270,872 in the official "
        "nasbench_only108.tfrecord: 1,270,861 missing)")
    assert isinstance(info.value, DamagedDataError)
