"""NATSBench_Evaluator: thesis listing 3.3, known cells, lookups, datasets and counters."""

import math

import numpy as np
import pytest
from nasbench201_cases import (ALL_NONE, BEST, LISTING_3_3, TABLE, chain, evaluator_or_skip,
                               listing_3_3)

from nord.errors import (NordError, NotInTableError, OutOfSearchSpaceError,
                         UnknownDatasetError)
from nord.neural_nets.benchmarks import (nasbench201, nasbench201_cells,
                                         nasbench201_descriptors, nasbench201_tables)
from nord.neural_nets.benchmarks.nasbench201 import (MetricNotAvailableError,
                                                     NATSBench_Evaluator, arch_to_descriptor,
                                                     descriptor_to_arch)

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
    return evaluator_or_skip()


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
    accuracy, seconds = cifar100.descriptor_evaluate(d)  # listing 3.7's pair
    assert accuracy == 45.5 and math.isnan(seconds)  # the table holds no training times
    assert cifar100.evaluate_string(descriptor_to_arch(d))[0] == 45.5
    assert cifar100.descriptor_evaluate(d, ["validation_accuracy"]) == [45.5]


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


def test_sampling_without_a_generator_follows_the_evaluators_seed(evaluator):
    same, other = (NATSBench_Evaluator(TABLE, seed=s) for s in (0, 0))
    draws = [same.sample() for _ in range(5)]
    assert draws == [other.sample() for _ in range(5)] and len(set(draws)) == 5
    assert draws != [NATSBench_Evaluator(TABLE, seed=1).sample() for _ in range(5)]




# ------------------------------------------------------------------ the module's names
def test_names_of_the_parts_are_reexported_by_nasbench201():
    for name in nasbench201.__all__:
        assert hasattr(nasbench201, name), name
    for part in (nasbench201_cells, nasbench201_descriptors, nasbench201_tables):
        for name in part.__all__:
            # helpers the parts share with each other
            if name not in ("IN_LAYER", "OUT_LAYER", "OP_INDEX", "EDGES", "N_CELLS",
                            "code_of_digits", "digits_of_code", "parse_arch"):
                assert getattr(nasbench201, name) is getattr(part, name), name
