"""NAS-Bench-201 tables: finding and reading the CSV, and the nats_bench backend."""

import sys
import types

import pytest
from nasbench201_cases import ALL_NONE, BEST, LISTING_3_3, TABLE, listing_3_3

from nord.errors import (DamagedDataError, DataNotFoundError, MetricNotAvailableError,
                         MissingDependencyError, NotInTableError)
from nord.neural_nets.benchmarks.nasbench201 import NATSBench_Evaluator
from nord.neural_nets.benchmarks.nasbench201_tables import OFFICIAL_SOURCE

HEADER = ("index,arch_str,params_M,cifar10_valid_valid_200ep,cifar10_valid_test_200ep,"
          "cifar10_test_200ep,cifar100_test_200ep,imagenet16_test_200ep,"
          "cifar10_valid_valid_12ep,cifar10_test_12ep,cifar100_valid_12ep,"
          "cifar100_test_12ep,imagenet16_valid_12ep,imagenet16_test_12ep")


# ------------------------------------------------------------------ table files
@pytest.fixture
def no_default_data(monkeypatch, tmp_path):
    monkeypatch.setenv("NORD_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("NORD_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


def test_missing_table_names_every_path_tried(no_default_data):
    tmp = no_default_data
    with pytest.raises(DataNotFoundError) as info:
        NATSBench_Evaluator()
    message = str(info.value)
    assert str(tmp / "data" / "nasbench201" / "nb201_tables.csv") in message
    assert str(tmp / "xdg" / "nord" / "nasbench201" / "nb201_tables.csv") in message
    assert "NORD_DATA" in message and "NATS-Bench" in message
    with pytest.raises(DataNotFoundError, match="nowhere.csv"):
        NATSBench_Evaluator(tmp / "nowhere.csv")


def _cut_message(path, rows):
    return (f"{path} holds {rows:,} row{'s' * (rows != 1)} but the NAS-Bench-201 table has "
            f"15,625 cells ({15625 - rows:,} missing): the file is cut short; re-download it "
            f"from {OFFICIAL_SOURCE}, or give a deliberate subset another file name")


def test_table_found_through_nord_data_and_cache(no_default_data, caplog):
    tmp = no_default_data
    text = HEADER + "\n" + f"4952,{LISTING_3_3},0.5874,88.5980,88.4750,92.3850,67.0800," \
                           f"38.8667,73.6520,80.7800,45.5000,45.0600,27.1667,25.9000\n"
    # A file under the official name must be the whole table: found, then refused.
    cached = tmp / "xdg" / "nord" / "nasbench201" / "nb201_tables.csv"
    cached.parent.mkdir(parents=True)
    cached.write_text(text)
    with pytest.raises(DamagedDataError) as info:
        NATSBench_Evaluator()
    assert str(info.value) == _cut_message(cached, 1)
    nord_data = tmp / "data" / "nasbench201" / "nb201_tables.csv"
    nord_data.parent.mkdir(parents=True)
    nord_data.write_text(text)
    for where in ((), (tmp / "data",)):
        with pytest.raises(DamagedDataError) as info:
            NATSBench_Evaluator(*where)
        assert str(info.value) == _cut_message(nord_data, 1)
    # Under another name it is a subset: it loads, and the log says what it lacks.
    subset = tmp / "subset.csv"
    subset.write_text(text)
    with caplog.at_level("WARNING", logger="nord.neural_nets.benchmarks.nasbench201_tables"):
        partial = NATSBench_Evaluator(subset)
    assert partial.source == str(subset) and len(partial) == 1
    assert f"{subset} holds 1 of the 15625 NAS-Bench-201 cells (15624 missing)" in caplog.text
    assert partial.descriptor_evaluate(listing_3_3(), ["validation_accuracy"]) == [88.598]
    with pytest.raises(NotInTableError, match="does not hold it"):
        partial.evaluate_string(BEST)


def _official_lines():
    if not TABLE.is_file():
        pytest.skip(f"NAS-Bench-201 table not found at {TABLE}; set NORD_DATA")
    return TABLE.read_text().splitlines(keepends=True)


def test_the_official_table_cut_short_at_a_line_says_how_many_rows_are_missing(tmp_path):
    lines = _official_lines()
    assert len(lines) == 15626
    path = tmp_path / "nb201_tables.csv"
    path.write_text("".join(lines[:10000]))          # the header and 9,999 rows
    with pytest.raises(DamagedDataError) as info:
        NATSBench_Evaluator(path)
    assert str(info.value) == _cut_message(path, 9999)
    assert "(5,626 missing)" in str(info.value)


def test_the_official_table_cut_inside_a_row_says_so(tmp_path):
    lines = _official_lines()
    path = tmp_path / "nb201_tables.csv"
    partial = ",".join(lines[7001].split(",")[:3]) + ",9"   # 4 of its 14 fields
    path.write_text("".join(lines[:7001]) + partial)
    with pytest.raises(DamagedDataError) as info:
        NATSBench_Evaluator(path)
    assert str(info.value) == (
        f"{path}, line 7002: the file ends inside a row (4 of 14 fields), so it is cut "
        f"short after 7,000 complete rows of the 15,625 cells (8,625 missing); re-download "
        f"it from {OFFICIAL_SOURCE}")
    subset = tmp_path / "mine.csv"
    subset.write_text("".join(lines[:11]) + partial)
    with pytest.raises(DamagedDataError, match=r"mine\.csv, line 12: the file ends inside a "
                                               r"row \(4 of 14 fields\), so it is cut short "
                                               r"after 10 complete rows; re-download"):
        NATSBench_Evaluator(subset)


def test_the_whole_official_table_loads_without_a_warning(caplog):
    if not TABLE.is_file():
        pytest.skip(f"NAS-Bench-201 table not found at {TABLE}; set NORD_DATA")
    with caplog.at_level("WARNING"):
        assert len(NATSBench_Evaluator(TABLE)) == 15625
    assert "missing" not in caplog.text


GOOD_ROW = f"6111,{BEST},1.0735,91.6067,91.0900,94.3733,73.2200,46.7111,84.3840,88.7900," \
           f"60.2000,60.3000,37.1333,37.0667"


@pytest.mark.parametrize("second_row,header,match", [
    (GOOD_ROW.replace("91.6067", "9l.6"), HEADER, "line 3: column 'cifar10_valid_valid_200ep' "
                                                  "holds '9l.6'"),
    (GOOD_ROW.replace("6111,", "0,", 1).replace("nor_conv_1x1~2", "conv~2"), HEADER,
     "line 3: bad arch_str"),
    (GOOD_ROW.replace("|+|skip_connect~0", "|+|"), HEADER, "line 3: bad arch_str"),
    (GOOD_ROW.replace("6111,", "4952,", 1), HEADER, "line 3: duplicate index 4952 "
                                                    "\\(already on line 2\\)"),
    (GOOD_ROW.rsplit(",", 1)[0], HEADER, "line 3: 13 fields, the header has 14"),
    (GOOD_ROW, HEADER.replace("arch_str", "arch"), "line 1: the header lacks the column "
                                                   "'arch_str'"),
])
def test_malformed_table_names_file_and_line(tmp_path, second_row, header, match):
    path = tmp_path / "bad.csv"
    first = f"4952,{LISTING_3_3},0.5874,88.5980,88.4750,92.3850,67.0800,38.8667,73.6520," \
            f"80.7800,45.5000,45.0600,27.1667,25.9000"
    path.write_text("\n".join([header, first, second_row]) + "\n")
    with pytest.raises(DataNotFoundError, match=match) as info:
        NATSBench_Evaluator(path)
    assert str(path) in str(info.value)


def test_table_with_fewer_columns_lists_what_it_holds(tmp_path):
    path = tmp_path / "small.csv"
    path.write_text(f"index,arch_str,cifar10_test_200ep\n6111,{BEST},94.3733\n")
    small = NATSBench_Evaluator(path, dataset="cifar10")
    assert small.evaluate_string(BEST, "test_accuracy") == 94.3733
    with pytest.raises(MetricNotAvailableError) as info:
        small.evaluate_string(BEST, "test_accuracy", dataset="cifar10-valid")
    assert str(info.value).endswith("It holds: test_accuracy (cifar10 @ 200)")


# ------------------------------------------------------------------ nats_bench backend
def test_nats_bench_missing_raises_missing_dependency(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nats_bench", None)     # import fails
    with pytest.raises(MissingDependencyError, match="pip install nats_bench"):
        NATSBench_Evaluator.from_nats_bench(tmp_path)
    with pytest.raises(MissingDependencyError):
        NATSBench_Evaluator(tmp_path, backend="nats_bench")


def test_nats_bench_backend_with_a_stand_in_api(monkeypatch, tmp_path):
    archs = [ALL_NONE, LISTING_3_3, BEST]
    calls = []

    class FakeAPI:
        meta_archs = archs

        def get_more_info(self, index, dataset, iepoch=None, hp="12", is_random=True):
            calls.append((index, dataset, hp, is_random))
            info = {"train-loss": 0.1, "train-accuracy": 99.0, "train-all-time": 1000.0 + index,
                    "test-loss": 0.3, "test-accuracy": 90.0 + index}
            if dataset != "cifar10":
                info.update({"valid-loss": 0.2, "valid-accuracy": 80.0 + index,
                             "valid-per-time": 2.0})
            return info

        def get_cost_info(self, index, dataset, hp="12"):
            return {"flops": 10.0, "params": 0.5, "latency": 0.01}

    fake = types.ModuleType("nats_bench")
    fake.create = lambda path, space, fast_mode=False, verbose=True: FakeAPI()
    monkeypatch.setitem(sys.modules, "nats_bench", fake)
    ev = NATSBench_Evaluator.from_nats_bench(tmp_path)
    assert ev.backend == "nats_bench" and len(ev) == 3
    assert ev.descriptor_evaluate(listing_3_3(), ["validation_accuracy", "time_cost"]) == [
        81.0, 1003.0]
    assert calls[-1] == (1, "cifar10-valid", "200", False)
    assert ev.query(2, ["latency", "params", "test_accuracy"], epochs=12) == [0.01, 0.5, 92.0]
    with pytest.raises(MetricNotAvailableError, match="no validation split"):
        ev.query(2, "validation_accuracy", dataset="cifar10")
    with pytest.raises(NotInTableError):
        ev.evaluate_string("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert ev.best("test_accuracy")[:2] == (2, BEST)
    assert ev.queries == 2
