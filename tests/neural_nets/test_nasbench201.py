"""NATSBench_Evaluator: NAS-Bench-201 lookups, cell conversion, table loading."""

import os
import random
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from nord.errors import (
    CycleError,
    DataNotFoundError,
    MissingDependencyError,
    NordError,
    NotInTableError,
    OutOfSearchSpaceError,
    UnknownDatasetError,
    UnknownOpError,
)
from nord.neural_nets.benchmarks.nasbench201 import (
    OPS,
    MetricNotAvailableError,
    NATSBench_Evaluator,
    arch_to_descriptor,
    arch_to_ops,
    descriptor_to_arch,
    isomorphism_key,
    ops_to_arch,
)
from nord.neural_nets.neural_descriptor import NeuralDescriptor

DATA_ROOT = Path(os.environ.get("NORD_DATA",
                                Path(__file__).resolve().parents[3] / "shared" / "data"))
TABLE = DATA_ROOT / "nasbench201" / "nb201_tables.csv"

LISTING_3_3 = ("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+"
               "|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|")
BEST = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
HEADER = ("index,arch_str,params_M,cifar10_valid_valid_200ep,cifar10_valid_test_200ep,"
          "cifar10_test_200ep,cifar100_test_200ep,imagenet16_test_200ep,"
          "cifar10_valid_valid_12ep,cifar10_test_12ep,cifar100_valid_12ep,"
          "cifar100_test_12ep,imagenet16_valid_12ep,imagenet16_test_12ep")

# Rows copied from nb201_tables.csv: index, arch_str, then
# (metric, dataset, epochs) -> value.
KNOWN = [
    (0, "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
        "skip_connect~2|",
     {("validation_accuracy", "cifar10-valid", 200): 81.9827,
      ("test_accuracy", "cifar10", 200): 85.8633,
      ("test_accuracy", "ImageNet16-120", 12): 17.0,
      ("params", "cifar10", 200): 0.1293}),
    (4952, LISTING_3_3,
     {("validation_accuracy", "cifar10-valid", 200): 88.598,
      ("test_accuracy", "cifar10-valid", 200): 88.475,
      ("test_accuracy", "cifar100", 200): 67.08,
      ("validation_accuracy", "cifar100", 12): 45.5}),
    (6111, BEST,
     {("validation_accuracy", "cifar10-valid", 200): 91.6067,
      ("test_accuracy", "cifar10", 200): 94.3733,
      ("test_accuracy", "cifar10", 12): 88.79,
      ("validation_accuracy", "ImageNet16-120", 12): 37.1333}),
    (1651, ALL_NONE,
     {("validation_accuracy", "cifar10-valid", 200): 9.712,
      ("test_accuracy", "cifar100", 200): 1.0}),
    (6960, "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
     {("validation_accuracy", "cifar10-valid", 200): 88.484,
      ("validation_accuracy", "cifar10-valid", 12): 76.006}),
]


@pytest.fixture(scope="module")
def evaluator():
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


# ------------------------------------------------------------------ thesis API
def test_available_ops_are_the_official_five_in_order(evaluator):
    assert evaluator.get_available_ops() == ["none", "skip_connect", "nor_conv_1x1",
                                             "nor_conv_3x3", "avg_pool_3x3"]
    evaluator.get_available_ops().append("x")           # a copy each time
    assert len(NATSBench_Evaluator.get_available_ops()) == 5


def test_listing_3_3_converts_to_its_cell_and_evaluates(evaluator):
    d = listing_3_3()
    assert descriptor_to_arch(d) == LISTING_3_3
    assert evaluator.index_of(d) == 4952
    assert evaluator.descriptor_evaluate(d, metrics=["validation_accuracy"]) == [88.598]
    val, test = evaluator.descriptor_evaluate(d, ["validation_accuracy", "test_accuracy"])
    assert (val, test) == (88.598, 88.475)
    assert evaluator.descriptor_evaluate(d, "test_accuracy", dataset="cifar10") == 92.385


def test_listing_3_3_thesis_metrics_need_nats_bench(evaluator):
    with pytest.raises(MetricNotAvailableError) as info:
        evaluator.descriptor_evaluate(listing_3_3(), metrics=["validation_accuracy",
                                                              "time_cost"])
    message = str(info.value)
    assert "'time_cost'" in message and "from_nats_bench" in message
    assert "validation_accuracy (cifar10-valid @ 12/200" in message
    assert "test_accuracy" in message and "params" in message
    assert isinstance(info.value, KeyError) and isinstance(info.value, NordError)


def test_five_node_chain_is_out_of_search_space(evaluator):
    with pytest.raises(OutOfSearchSpaceError, match=r"needs 5 states .* has 4 \(IN, two "
                                                    r"intermediate, OUT\)"):
        evaluator.descriptor_evaluate(listing_3_3(extra_chain_op=True))
    with pytest.raises(OutOfSearchSpaceError, match="needs 6 states"):
        descriptor_to_arch(chain(*["nor_conv_3x3"] * 5))


def test_best_cell_is_6111(evaluator):
    assert evaluator.best("test_accuracy", "cifar10", 200)[:2] == (6111, BEST)
    index, arch, value = evaluator.best()                # cifar10-valid validation @200
    assert (index, arch, round(value, 2)) == (6111, BEST, 91.61)
    assert round(evaluator.best("test_accuracy", "cifar10")[2], 2) == 94.37
    assert evaluator.best("validation_accuracy", maximize=False)[2] == 9.712


@pytest.mark.parametrize("index,arch,expected", KNOWN, ids=[str(k[0]) for k in KNOWN])
def test_known_cells_by_string_index_and_descriptor(evaluator, index, arch, expected):
    assert evaluator.arch_str(index) == arch
    assert evaluator.index_of(arch) == index
    descriptor = arch_to_descriptor(arch)
    for (metric, dataset, epochs), value in expected.items():
        assert evaluator.evaluate_string(arch, metric, dataset, epochs) == value
        assert evaluator.query(index, [metric], dataset, epochs) == [value]
        assert evaluator.descriptor_evaluate(descriptor, [metric], dataset, epochs) == [value]


def test_every_cell_round_trips_through_its_descriptor(evaluator):
    assert len(evaluator) == 15625
    seen = set()
    for index, arch in evaluator:
        assert descriptor_to_arch(arch_to_descriptor(arch)) == arch, index
        seen.add(index)
    assert seen == set(range(15625))


def test_renamed_and_reordered_descriptors_give_the_same_cell(evaluator):
    rng = random.Random(201)
    d = listing_3_3()
    for _ in range(5):
        copy = scrambled(d, rng)
        assert descriptor_to_arch(copy) == LISTING_3_3
        assert evaluator.descriptor_evaluate(copy) == evaluator.descriptor_evaluate(d)
    archs = [arch for _, arch in evaluator]
    for arch in rng.sample(archs, 1500):
        assert descriptor_to_arch(scrambled(arch_to_descriptor(arch), rng)) == arch
        bare = arch_to_descriptor(arch, none_nodes=False)
        assert (descriptor_to_arch(scrambled(bare, rng)) == descriptor_to_arch(bare))


# ------------------------------------------------------------------ conversion rule
def test_descriptors_without_none_nodes():
    # A chain of three ops: states 1 and 2 in order, missing edges are 'none'.
    assert descriptor_to_arch(chain("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")) == (
        "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|avg_pool_3x3~2|")
    # One intermediate state is state 1.
    assert descriptor_to_arch(chain("nor_conv_3x3", "skip_connect")) == (
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
    assert descriptor_to_arch(chain("nor_conv_3x3")) == (
        "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    # No path from IN to OUT: every op is inactive.
    d = NeuralDescriptor()
    d.add_layer("IN", None, "IN")
    d.add_layer("nor_conv_3x3", None, "dangling")
    d.connect_layers("IN", "dangling")
    d.add_layer("OUT", None, "OUT")
    assert descriptor_to_arch(d) == ALL_NONE


def test_inactive_layers_and_parallel_none_are_ignored():
    d = chain("nor_conv_3x3", "nor_conv_1x1")
    d.add_layer("avg_pool_3x3", None, "dead_end")          # reads op1, feeds nothing
    d.connect_layers("op1", "dead_end")
    d.add_layer("none", None, "parallel_none")              # same edge as op2
    d.connect_layers("op1", "parallel_none")
    d.connect_layers("parallel_none", "OUT")
    assert descriptor_to_arch(d) == (
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|nor_conv_1x1~1|none~2|")


def test_independent_intermediate_states_are_numbered_canonically():
    def two_paths(first, second):
        d = NeuralDescriptor()
        d.add_layer("IN", None, "IN")
        for k, (a, b) in enumerate((first, second)):
            d.add_layer(a, None, f"a{k}")
            d.add_layer(b, None, f"b{k}")
            d.connect_layers("IN", f"a{k}")
            d.connect_layers(f"a{k}", f"b{k}")
        d.add_layer("OUT", None, "OUT")
        d.connect_layers("b0", "OUT")
        d.connect_layers("b1", "OUT")
        return d

    one = descriptor_to_arch(two_paths(("nor_conv_3x3", "avg_pool_3x3"),
                                       ("skip_connect", "nor_conv_1x1")))
    two = descriptor_to_arch(two_paths(("skip_connect", "nor_conv_1x1"),
                                       ("nor_conv_3x3", "avg_pool_3x3")))
    assert one == two == ("|skip_connect~0|+|nor_conv_3x3~0|none~1|+"
                          "|none~0|nor_conv_1x1~1|avg_pool_3x3~2|")


@pytest.mark.parametrize("build,match", [
    (lambda: _with(chain("nor_conv_3x3"), ("skip_connect", "p", [("IN", "p"), ("p", "OUT")])),
     "both lie on the edge from state 0 to state 3"),
    (lambda: _connect(chain("nor_conv_3x3", "nor_conv_1x1"), ("IN", "op2")),
     "sums 'IN' with the op outputs"),
    (chain, "connects straight to 'OUT'"),
    (lambda: _connect(chain("nor_conv_3x3", "nor_conv_1x1"), ("op1", "OUT")),
     "op node 'op1' is summed into 2 different states"),
    (lambda: _with(chain("nor_conv_3x3"), ("IN", "IN2", [])), "2 layers of type 'IN'"),
    (lambda: _without(chain("nor_conv_3x3"), "OUT"), "no layer of type 'OUT'"),
])
def test_descriptors_outside_the_cell_say_why(build, match):
    with pytest.raises(OutOfSearchSpaceError, match=match):
        descriptor_to_arch(build())


def _with(d, spec):
    layer, name, edges = spec
    d.add_layer(layer, None, name)
    for a, b in edges:
        d.connect_layers(a, b)
    return d


def _connect(d, edge):
    d.connect_layers(*edge)
    return d


def _without(d, name):
    d.remove_layer(name)
    return d


def test_cycle_is_reported():
    d = chain("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3")
    d.disconnect_layers("op3", "OUT")
    d.connect_layers("op2", "OUT")
    d.connect_layers("op3", "op2")
    with pytest.raises(CycleError, match="op2 -> op3 -> op2|op3 -> op2 -> op3"):
        descriptor_to_arch(d)


def test_unknown_op_lists_the_available_ops(evaluator):
    d = chain("nor_conv_3x3", "conv3x3-bn-relu")
    with pytest.raises(UnknownOpError) as info:
        evaluator.descriptor_evaluate(d)
    for op in OPS:
        assert repr(op) in str(info.value)
    assert "'op2'" in str(info.value)
    with pytest.raises(UnknownOpError, match="skip_connect"):
        evaluator.evaluate_string("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_cell_strings():
    assert arch_to_ops(LISTING_3_3) == ("nor_conv_3x3", "skip_connect", "nor_conv_1x1",
                                        "nor_conv_3x3", "skip_connect", "avg_pool_3x3")
    assert ops_to_arch(arch_to_ops(LISTING_3_3)) == LISTING_3_3
    # edges within a state in another order are accepted and normalised
    shuffled = "|nor_conv_3x3~0|+|nor_conv_1x1~1|skip_connect~0|+" \
               "|avg_pool_3x3~2|nor_conv_3x3~0|skip_connect~1|"
    assert arch_to_ops(shuffled) == arch_to_ops(LISTING_3_3)
    for bad, match in [("|none~0|+|none~0|none~1|", "3 '\\+'-separated groups"),
                       ("|none~0|+|none~0|+|none~0|none~1|none~2|", "no op for input"),
                       ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "cannot take"),
                       ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "twice")]:
        with pytest.raises(OutOfSearchSpaceError, match=match):
            arch_to_ops(bad)


def test_isomorphism_classes(evaluator):
    keys = {isomorphism_key(arch) for _, arch in evaluator}
    assert len(keys) == 6466
    # state 1 is zero, so the op on edge 1 -> 3 does not matter
    a = "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
    b = "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
    members = evaluator.isomorphism_class(a)
    assert evaluator.index_of(a) in members and evaluator.index_of(b) in members
    assert evaluator.isomorphism_class(arch_to_descriptor(b)) == members
    assert evaluator.isomorphism_class(6111) == [6111]
    # isomorphic cells are separate rows with their own numbers
    assert evaluator.evaluate_string(a) != evaluator.evaluate_string(b)


# ------------------------------------------------------------------ lookups
def test_query_counter(evaluator):
    evaluator.reset_counter()
    evaluator.descriptor_evaluate(listing_3_3())
    evaluator.descriptor_evaluate(listing_3_3(), ["validation_accuracy", "test_accuracy"])
    evaluator.evaluate_string(BEST)
    evaluator.query(0)
    with pytest.raises(OutOfSearchSpaceError):
        evaluator.descriptor_evaluate(listing_3_3(extra_chain_op=True))
    evaluator.best()
    evaluator.sample(np.random.default_rng(0))
    assert evaluator.queries == 4
    assert evaluator.reset_counter() == 4 and evaluator.queries == 0


def test_datasets_epochs_and_metric_errors(evaluator):
    d = listing_3_3()
    assert evaluator.descriptor_evaluate(d, "test_accuracy", "imagenet16-120") == 38.8667
    with pytest.raises(UnknownDatasetError, match="ImageNet16-120"):
        evaluator.descriptor_evaluate(d, dataset="mnist")
    with pytest.raises(MetricNotAvailableError, match="12 or 200"):
        evaluator.descriptor_evaluate(d, epochs=100)
    with pytest.raises(MetricNotAvailableError, match="no validation accuracy.*cifar10-valid"):
        evaluator.descriptor_evaluate(d, dataset="cifar10")
    with pytest.raises(MetricNotAvailableError, match="no 'validation_accuracy' for "
                                                      "'cifar100' at 200 epochs"):
        evaluator.descriptor_evaluate(d, dataset="cifar100")
    with pytest.raises(NotInTableError, match="index 15625"):
        evaluator.query(15625)
    cifar100 = NATSBench_Evaluator(TABLE, dataset="cifar100", epochs=12)
    assert cifar100.descriptor_evaluate(d) == [45.5]


def test_iteration_sampling_and_descriptors(evaluator):
    first = next(iter(evaluator))
    assert first == (0, KNOWN[0][1])
    a = evaluator.sample(np.random.default_rng(7))
    assert a == evaluator.sample(np.random.default_rng(7)) == evaluator.sample(7)
    d = evaluator.sample(np.random.default_rng(7), as_descriptor=True)
    assert descriptor_to_arch(d) == a
    assert evaluator.index_of(evaluator.to_descriptor(6111)) == 6111
    assert BEST in evaluator and listing_3_3() in evaluator
    assert listing_3_3(extra_chain_op=True) not in evaluator


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


def test_table_found_through_nord_data_and_cache(no_default_data):
    tmp = no_default_data
    text = HEADER + "\n" + f"4952,{LISTING_3_3},0.5874,88.5980,88.4750,92.3850,67.0800," \
                           f"38.8667,73.6520,80.7800,45.5000,45.0600,27.1667,25.9000\n"
    cached = tmp / "xdg" / "nord" / "nasbench201" / "nb201_tables.csv"
    cached.parent.mkdir(parents=True)
    cached.write_text(text)
    partial = NATSBench_Evaluator()
    assert partial.source == str(cached) and len(partial) == 1
    assert partial.descriptor_evaluate(listing_3_3()) == [88.598]
    with pytest.raises(NotInTableError, match="does not hold it"):
        partial.evaluate_string(BEST)
    nord_data = tmp / "data" / "nasbench201" / "nb201_tables.csv"
    nord_data.parent.mkdir(parents=True)
    nord_data.write_text(text)
    assert NATSBench_Evaluator().source == str(nord_data)
    assert NATSBench_Evaluator(tmp / "data").source == str(nord_data)


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
