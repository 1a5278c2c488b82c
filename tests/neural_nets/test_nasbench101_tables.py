"""NAS-Bench-101 tables: finding the file, and malformed csv tables named by file and line."""

import gzip

import pytest
from nasbench101_cases import CONV1, CONV3, FIRST_ROW, POOL

from nord.errors import DataNotFoundError
from nord.neural_nets.benchmarks.nasbench101 import CSV_NAME, OFFICIAL_URL, NASBench_101Evaluator


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

