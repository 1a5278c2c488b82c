"""LocalEvaluator on synthetic datasets registered through Configs."""

import math

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from nord.configurations.all import Configs
from nord.data_curators.splits import make_splits
from nord.errors import EvaluationError, NoPathError, UnknownDatasetError
from nord.neural_nets import EvaluationResult, LocalEvaluator, NeuralDescriptor
from nord.neural_nets.layers import register_layer, same_shape
from nord.neural_nets.optimizers import OPTIMIZERS


def stripes(n, seed):
    """Class 0: bright top half; class 1: bright bottom half; plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.5
    x[y == 0, :, :4] += 1.0
    x[y == 1, :, 4:] += 1.0
    return x, y


def stripes_data(percentage=1.0):
    train_x, train_y = stripes(400, 1)
    test_x, test_y = stripes(200, 2)
    return make_splits(train_x, train_y, test_x, test_y, percentage=percentage)


def linear_data(percentage=1.0):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(600, 2, 4, generator=g)
    w = torch.linspace(-1, 1, 8).reshape(2, 4)
    y = (x * w).sum(dim=(1, 2)) + 0.5
    return make_splits(x[:400], y[:400], x[400:], y[400:], percentage=percentage)


@pytest.fixture
def configs():
    c = Configs(isolated=True)
    c.add_classification_dataset("stripes", 2, (8, 8), 1, stripes_data)
    c.add_regression_dataset("linear", 4, 2, linear_data)
    return c


def small_cnn():
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": 4, "kernel_size": 3, "padding": 1})
    d.add_layer_sequential(nn.ReLU, {})
    d.add_layer_sequential(nn.MaxPool2d, {"kernel_size": 2})
    return d


def test_classification_learns_and_unpacks_like_the_thesis(configs):
    evaluator = LocalEvaluator(torch.optim.Adam, {"lr": 0.01}, configs=configs, batch_size=32)
    loss, metrics, total_time = evaluator.descriptor_evaluate(small_cnn(), epochs=3, dataset="stripes")
    assert metrics["accuracy"] > 0.95
    assert 0 < loss < 0.3 and total_time > 0
    result = evaluator.descriptor_evaluate(small_cnn(), epochs=3, dataset="stripes")
    assert isinstance(result, EvaluationResult) and not result.failed
    assert result.split == "validation" and len(result.train_losses) == 3
    assert result.parameters == 40 + 4 * 4 * 4 * 2 + 2
    assert tuple(result) == (result.loss, result.metrics, result.total_time)


def test_same_seed_same_result_and_global_rng_untouched(configs):
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = LocalEvaluator("sgd_momentum", {}, configs=configs, seed=7).descriptor_evaluate(
        small_cnn(), 2, "stripes")
    b = LocalEvaluator("sgd_momentum", {}, configs=configs, seed=7).descriptor_evaluate(
        small_cnn(), 2, "stripes")
    c = LocalEvaluator("sgd_momentum", {}, configs=configs, seed=8).descriptor_evaluate(
        small_cnn(), 2, "stripes")
    assert (a.loss, a.metrics, a.train_losses) == (b.loss, b.metrics, b.train_losses)
    assert a.train_losses != c.train_losses
    assert torch.equal(torch.random.get_rng_state(), before)


def test_regression_dataset_is_a_real_regression(configs):
    d = NeuralDescriptor()
    d.add_layer(nn.Flatten, {})
    config = configs["linear"]
    assert (config.num_outputs, config.task, config.metrics) == (1, "regression", ("mse", "mae", "r2"))
    assert isinstance(config.criterion(), nn.MSELoss)
    result = LocalEvaluator("adam", {"lr": 0.05}, configs=configs, batch_size=16).descriptor_evaluate(
        d, 30, "linear")
    assert result.metrics["r2"] > 0.99
    assert result.metrics["mse"] == pytest.approx(result.loss, rel=1e-6)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_named_optimizer_trains(configs, name):
    result = LocalEvaluator(name, {}, configs=configs).descriptor_evaluate(small_cnn(), 1, "stripes")
    assert not result.failed and math.isfinite(result.loss)


@pytest.mark.parametrize("schedule", ["cosine", "one_cycle"])
def test_learning_rate_schedules(configs, schedule):
    evaluator = LocalEvaluator("sgd", {"lr": 0.1}, configs=configs, lr_schedule=schedule)
    net = evaluator.build_network(small_cnn(), "stripes")
    result = evaluator.net_evaluate(net, 2, "stripes")
    assert not result.failed and result.metrics["accuracy"] > 0.8


def test_diverging_training_is_a_failed_result_not_an_exception(configs):
    @register_layer(output_shape=same_shape, replace=True)
    class Explode(nn.Module):
        def forward(self, x):
            return x * float("inf")

    d = small_cnn()
    d.add_layer_sequential(Explode, {})
    loss, metrics, _ = result = LocalEvaluator("adam", {}, configs=configs).descriptor_evaluate(
        d, 2, "stripes")
    assert result.failed and "NonFiniteLossError" in result.error
    assert "epoch 1, batch 1" in result.error
    assert math.isnan(loss) and math.isnan(metrics["accuracy"])


def test_unknown_dataset_lists_registered_names(configs):
    with pytest.raises(UnknownDatasetError, match=r"'stripe'.*did you mean 'stripes'.*registered "
                       r"datasets: fashion-mnist, cifar10, activity_recognition, graph-nasbench3, "
                       r"graph-nasbench1, graph-f-mnist3, graph-f-mnist1, stripes, linear"):
        LocalEvaluator("adam", {}, configs=configs).descriptor_evaluate(small_cnn(), 1, "stripe")


def test_invalid_descriptor_raises_its_typed_error(configs):
    d = NeuralDescriptor()
    d.add_layer("input", None, "in")
    d.add_layer("output", None, "out")
    with pytest.raises(NoPathError, match="'in'.*'out'"):
        LocalEvaluator("adam", {}, configs=configs).descriptor_evaluate(d, 1, "stripes")


def test_thesis_loader_format_scores_on_test(configs):
    x, y = stripes(256, 3)

    def loaders(percentage=1.0):
        train = DataLoader(TensorDataset(x[:192], y[:192]), batch_size=32, shuffle=False)
        test = DataLoader(TensorDataset(x[192:], y[192:]), batch_size=32)
        return train, test, ("top", "bottom")

    configs.add_classification_dataset("loaders", 2, (8, 8), 1, loaders)
    result = LocalEvaluator("adam", {"lr": 0.01}, configs=configs).descriptor_evaluate(
        small_cnn(), 3, "loaders")
    assert result.split == "test" and result.metrics["accuracy"] > 0.9


def test_test_split_and_data_cache(configs):
    calls = []

    def counted(percentage=1.0):
        calls.append(percentage)
        return stripes_data(percentage)

    configs.add_classification_dataset("counted", 2, (8, 8), 1, counted)
    evaluator = LocalEvaluator("adam", {}, configs=configs, split="test")
    evaluator.descriptor_evaluate(small_cnn(), 1, "counted", data_percentage=0.5)
    result = evaluator.descriptor_evaluate(small_cnn(), 1, "counted", data_percentage=0.5)
    assert calls == [0.5] and result.split == "test"


def test_dimension_keeping_dataset_compiles_with_fixed_channels(configs):
    configs.add_classification_dataset("kept", 2, (8, 8), 1, stripes_data, dimension_keeping=6)
    net = LocalEvaluator("adam", {}, configs=configs).build_network(small_cnn(), "kept")
    assert net.layers["L0_Layer"].out_channels == 6


@pytest.mark.parametrize("kwargs, message", [
    ({"split": "valid"}, "split must be one of"),
    ({"lr_schedule": "step"}, "lr_schedule must be"),
    ({"batch_size": 0}, "batch sizes must be positive"),
])
def test_bad_settings_are_rejected(kwargs, message):
    with pytest.raises(EvaluationError, match=message):
        LocalEvaluator("adam", {}, **kwargs)


def test_bad_optimizer_names_suggest():
    with pytest.raises(ValueError, match="did you mean 'adamax'"):
        LocalEvaluator("adamx", {})


def test_bad_percentage(configs):
    with pytest.raises(ValueError, match=r"share of the training set in \(0, 1\]"):
        LocalEvaluator("adam", {}, configs=configs).descriptor_evaluate(small_cnn(), 1, "stripes", 10)


def test_verbose_training_logs_each_epoch_with_the_time_left(configs, caplog):
    import logging
    from nord.neural_nets.evaluators import _duration
    with caplog.at_level(logging.INFO, logger="nord.neural_nets.evaluators"):
        LocalEvaluator("adam", {}, verbose=True, configs=configs).descriptor_evaluate(
            small_cnn(), epochs=3, dataset="stripes")
    epochs = [r.getMessage() for r in caplog.records if " epoch " in r.getMessage()]
    assert [m.split(":")[0] for m in epochs] == [f"stripes epoch {i}/3" for i in (1, 2, 3)]
    assert "to go)" in epochs[0] and "to go)" in epochs[1] and "to go" not in epochs[2]
    assert [_duration(s) for s in (12.34, 600, 7200)] == ["12.3 s", "10.0 min", "2.0 h"]


@pytest.mark.parametrize("optimizer", ["sgd_momentum", "adamax"])
def test_scores_read_off_one_run_equal_shorter_trainings(configs, optimizer):
    evaluator = LocalEvaluator(optimizer, configs=configs, batch_size=32, seed=3)
    long = evaluator.descriptor_evaluate(small_cnn(), 3, "stripes", score_at=(1, 2, 3))
    assert sorted(long.checkpoints) == [1, 2, 3]
    for epochs in (1, 2):
        short = evaluator.descriptor_evaluate(small_cnn(), epochs, "stripes")
        assert long.checkpoints[epochs]["accuracy"] == short.metrics["accuracy"]
        assert long.checkpoints[epochs]["loss"] == short.loss
    assert long.checkpoints[3]["accuracy"] == long.metrics["accuracy"]
    plain = evaluator.descriptor_evaluate(small_cnn(), 3, "stripes")  # checkpoints change nothing
    assert (plain.loss, plain.metrics) == (long.loss, long.metrics)
    seconds = [long.checkpoints[e]["train_seconds"] for e in (1, 2, 3)]
    assert 0 < seconds[0] < seconds[1] < seconds[2] <= long.train_seconds + 1e-6
    with pytest.raises(EvaluationError, match="score_at epochs must lie in 1..3"):
        evaluator.descriptor_evaluate(small_cnn(), 3, "stripes", score_at=(4,))
    scheduled = LocalEvaluator(optimizer, configs=configs, lr_schedule="cosine")
    with pytest.raises(EvaluationError, match="depends on the total epochs"):
        scheduled.descriptor_evaluate(small_cnn(), 3, "stripes", score_at=(1,))


def test_monitored_split_gives_one_curve_row_per_epoch_and_changes_nothing(configs):
    plain = LocalEvaluator("sgd_momentum", configs=configs, batch_size=32, seed=3)
    reference = plain.descriptor_evaluate(small_cnn(), 3, "stripes", score_at=(1, 2, 3))
    watched = LocalEvaluator("sgd_momentum", configs=configs, batch_size=32, seed=3,
                             monitor="validation").descriptor_evaluate(small_cnn(), 3, "stripes")
    assert (watched.loss, watched.metrics) == (reference.loss, reference.metrics)
    assert [row["epoch"] for row in watched.curve] == [1, 2, 3]
    assert set(watched.curve[0]) == {"epoch", "train_loss", "train_accuracy",
                                     "validation_loss", "validation_accuracy"}
    for row in watched.curve:  # the epoch-e row is the score of an e-epoch training
        assert row["validation_accuracy"] == reference.checkpoints[row["epoch"]]["accuracy"]
        assert row["validation_loss"] == reference.checkpoints[row["epoch"]]["loss"]
    assert [row["train_loss"] for row in watched.curve] == list(reference.train_losses)
    assert reference.curve == ()  # nothing monitored, no curve


def test_training_accuracy_is_the_running_accuracy_over_the_epoch(configs):
    # with a learning rate of 0 the network never changes: every epoch's running
    # accuracy is the untrained network's accuracy on the whole training split
    frozen = LocalEvaluator("sgd", {"lr": 0.0}, configs=configs, batch_size=32, seed=1,
                            split="train", monitor="validation")
    result = frozen.descriptor_evaluate(small_cnn(), 2, "stripes")
    assert [row["train_accuracy"] for row in result.curve] == [result.metrics["accuracy"]] * 2


def test_monitor_is_checked(configs):
    with pytest.raises(EvaluationError, match="monitor must be None or one of"):
        LocalEvaluator("adam", configs=configs, monitor="valid")
    flat = NeuralDescriptor()
    flat.add_layer(nn.Flatten, {})
    regression = LocalEvaluator("adam", configs=configs, monitor="validation")
    row = regression.descriptor_evaluate(flat, 1, "linear").curve[0]
    assert set(row) == {"epoch", "train_loss", "validation_loss", "validation_mse",
                        "validation_mae", "validation_r2"}
    configs.add_classification_dataset("plain", 2, (8, 8), 1, lambda percentage=1.0: make_splits(
        *stripes(64, 1), *stripes(32, 2), validation_fraction=0.0))
    with pytest.raises(EvaluationError, match="loaded without a validation split"):
        LocalEvaluator("adam", configs=configs, split="test",
                       monitor="validation").descriptor_evaluate(small_cnn(), 1, "plain")


def test_channels_last_trains_the_same_network_in_another_memory_format(configs):
    def run(channels_last):
        evaluator = LocalEvaluator("sgd_momentum", configs=configs, batch_size=32, seed=2,
                                   channels_last=channels_last, monitor="validation")
        return evaluator.train_network(small_cnn(), 2, "stripes")

    (_, plain), (fast_net, fast) = run(False), run(True)
    conv = [m for m in fast_net.modules() if isinstance(m, nn.Conv2d)][0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert fast.loss == pytest.approx(plain.loss, rel=1e-4)
    assert fast.train_losses == pytest.approx(plain.train_losses, rel=1e-4)
    assert [r["train_accuracy"] for r in fast.curve] == [r["train_accuracy"] for r in plain.curve]
