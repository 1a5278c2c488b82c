"""DistributedConfig, DistributedEvaluator and Environment.

Multi-process tests start 2-3 gloo ranks on localhost as subprocesses running
``distributed_script.py`` (one scenario each) on a tiny synthetic dataset; the
script writes what each rank saw into ``tmp_path``.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from nord.errors import EvaluationError
from nord.neural_nets import LocalEvaluator
from nord.neural_nets.distributed import DistributedEvaluator
from nord.neural_nets.distributed.data_parallel import (global_batch_sizes, rank_seed,
                                                        shard_batches, shard_indices)
from nord.neural_nets.distributed.environment import DistributedConfig, Environment
from nord.neural_nets.distributed.errors import DistributedConfigError, DistributedError

sys.path.insert(0, str(Path(__file__).parent))
import distributed_script as script  # noqa: E402  (the ranks' datasets and networks)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("distributed_script.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(scenario, out, world_size=2, ranks=None, port=None, **options):
    """Start one subprocess per rank; returns {rank: Popen}."""
    port = port or free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    extra = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    return {rank: subprocess.Popen(
        [sys.executable, str(SCRIPT), scenario, "--rank", str(rank), "--world-size",
         str(world_size), "--port", str(port), "--out", str(out), *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for rank in (range(world_size) if ranks is None else ranks)}


def finish(processes, timeout=60):
    """{rank: (exit code, output)}, killing every rank if one runs past ``timeout``."""
    deadline = time.monotonic() + timeout
    done = {}
    try:
        for rank, process in processes.items():
            output, _ = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
            done[rank] = (process.returncode, output)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    return done


def read_json(path):
    return json.loads(Path(path).read_text())


def wait_for(paths, timeout):
    deadline = time.monotonic() + timeout
    while not all(Path(p).exists() for p in paths):
        if time.monotonic() > deadline:
            raise AssertionError(f"{paths} did not appear within {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def configs():
    return script.make_configs()


# -------------------------------------------------------------------- DistributedConfig
def test_config_as_in_listing_3_4():
    config = DistributedConfig('127.0.0.1', '1234', world_size=4, world_rank=0)
    assert (config.master_ip, config.port, config.world_size, config.world_rank) == (
        "127.0.0.1", 1234, 4, 0)
    assert config.is_master and config.device_index == 0
    assert not DistributedConfig("h", 1, 4, 3, local_rank=1).is_master
    assert DistributedConfig("h", 1, 4, 3, local_rank=1).device_index == 1


@pytest.mark.parametrize("environ, expected", [
    ({"MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "8", "RANK": "5",
      "LOCAL_RANK": "1"}, ("10.0.0.1", 29500, 8, 5, 1)),
    ({"MASTER_ADDR": "m", "MASTER_PORT": "1", "OMPI_COMM_WORLD_SIZE": "4",
      "OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_LOCAL_RANK": "0"}, ("m", 1, 4, 2, 0)),
    ({"MASTER_ADDR": "m", "MASTER_PORT": "2", "PMI_SIZE": "3", "PMI_RANK": "1"},
     ("m", 2, 3, 1, None)),
    ({"MASTER_ADDR": "m", "MASTER_PORT": "3", "SLURM_NTASKS": "2", "SLURM_PROCID": "1",
      "SLURM_LOCALID": "1"}, ("m", 3, 2, 1, 1)),
])
def test_config_from_launcher_variables(environ, expected):
    c = DistributedConfig.from_environment(environ)
    assert (c.master_ip, c.port, c.world_size, c.world_rank, c.local_rank) == expected


def test_config_from_mpi_needs_the_master_address_or_arguments():
    mpi = {"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"}
    with pytest.raises(DistributedConfigError, match="MASTER_ADDR"):
        DistributedConfig.from_environment(mpi)
    c = DistributedConfig.from_environment(mpi, master_ip="node0", port=4000)
    assert (c.master_ip, c.port, c.world_size, c.world_rank) == ("node0", 4000, 2, 1)


@pytest.mark.parametrize("environ, message", [
    ({}, "no distributed configuration: pass DistributedConfig"),
    ({"RANK": "0", "MASTER_ADDR": "m", "MASTER_PORT": "1"}, "WORLD_SIZE is not set"),
    ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "m", "MASTER_PORT": "1"},
     r"world_rank must be in 0..1"),
    ({"WORLD_SIZE": "two", "RANK": "0", "MASTER_ADDR": "m", "MASTER_PORT": "1"},
     "WORLD_SIZE must be an integer"),
])
def test_config_errors_say_what_to_set(environ, message):
    with pytest.raises(DistributedConfigError, match=message):
        DistributedConfig.from_environment(environ)


def test_environment_without_configuration_is_a_clear_error(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
                 "PMI_SIZE", "PMI_RANK", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(DistributedConfigError, match="torchrun"):
        Environment()


@pytest.mark.parametrize("args, message", [
    (("", 1, 1, 0), "master_ip"), (("h", 0, 1, 0), "port must be in 1..65535"),
    (("h", "http", 1, 0), "port must be an integer"), (("h", 1, 0, 0), "world_size"),
    (("h", 1, 2, -1), "world_rank must be in 0..1"), (("h", 1, 2, 1.5), "integer"),
])
def test_config_rejects_bad_values(args, message):
    with pytest.raises(DistributedConfigError, match=message):
        DistributedConfig(*args)


def test_settings_are_checked_before_any_networking(configs):
    config = DistributedConfig("127.0.0.1", 1, 2, 0)
    with pytest.raises(EvaluationError, match="mode must be one of"):
        Environment(config, mode="sometimes", configs=configs)
    with pytest.raises(DistributedConfigError, match="timeout must be positive"):
        Environment(config, timeout=0, configs=configs)
    with pytest.raises(ValueError, match="unknown optimizer"):
        Environment(config, "adamm", configs=configs)
    environment = Environment(config, configs=configs)
    with pytest.raises(DistributedError, match="inside `with Environment"):
        environment.descriptor_evaluate(script.linear(), 1, "stripes")


# -------------------------------------------------------------------- sharding
def test_shards_are_disjoint_and_cover_the_training_split():
    assert [shard_indices(7, r, 3).tolist() for r in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]
    assert shard_indices(5, 0, 1).tolist() == [0, 1, 2, 3, 4]
    # 7 samples, 3 ranks of batch 2: shards 3, 2, 2 -> steps of 6 then 1 samples.
    assert global_batch_sizes(7, 3, 2) == [6, 1]
    assert global_batch_sizes(203, 1, 16) == [16] * 12 + [11]
    assert rank_seed(5, 0) == 5 and len({rank_seed(5, r) for r in range(8)}) == 8
    batches = shard_batches(shard_indices(7, 1, 3), 1, torch.Generator().manual_seed(0))
    assert sorted(int(b) for b in batches) == [1, 4]


# -------------------------------------------------------------------- one rank
ONE_RANK_SETTINGS = dict(batch_size=16, seed=3, augment=True, lr_schedule="cosine")


def assert_same_result(result, expected):
    assert not expected.failed and not result.failed
    assert result.loss == expected.loss
    assert result.metrics == expected.metrics
    assert result.train_losses == expected.train_losses
    assert result.parameters == expected.parameters


@pytest.fixture
def local_result(configs):
    evaluator = LocalEvaluator("sgd_momentum", {"lr": 0.05}, configs=configs, **ONE_RANK_SETTINGS)
    return evaluator.descriptor_evaluate(script.small_cnn(4), 3, "stripes")


@pytest.mark.parametrize("mode", ["allreduce", "average"])
def test_one_rank_equals_local_evaluator(configs, local_result, mode):
    """Batch order, augmentation, dropout and schedule all match: the same floats."""
    evaluator = DistributedEvaluator("sgd_momentum", {"lr": 0.05}, mode=mode, configs=configs,
                                     **ONE_RANK_SETTINGS)
    assert_same_result(evaluator.descriptor_evaluate(script.small_cnn(4), 3, "stripes"),
                       local_result)


def test_one_rank_environment_equals_local_evaluator(configs, local_result):
    config = DistributedConfig("127.0.0.1", free_port(), world_size=1, world_rank=0)
    for mode in ("allreduce", "average"):
        with Environment(config, "sgd_momentum", {"lr": 0.05}, mode=mode, configs=configs,
                         timeout=10, **ONE_RANK_SETTINGS) as e:
            assert dist.get_world_size() == 1 and e.is_master
            result = e.descriptor_evaluate(script.small_cnn(4), 3, dataset="stripes")
        assert not dist.is_initialized()
        assert_same_result(result, local_result)


def test_run_calls_the_search_on_the_master_and_shuts_down(configs):
    config = DistributedConfig("127.0.0.1", free_port(), world_size=1, world_rank=0)
    environment = Environment(config, configs=configs, timeout=10)

    def search(e, epochs):
        assert dist.is_initialized() and e is environment
        return e.descriptor_evaluate(script.linear(), epochs, "stripes").train_losses

    assert len(environment.run(search, 2)) == 2
    assert not dist.is_initialized()
    with pytest.raises(DistributedError, match="already been started"):
        environment.start()


def test_an_existing_process_group_is_not_taken_over(configs):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                            world_size=1)
    try:
        config = DistributedConfig("127.0.0.1", free_port(), world_size=1, world_rank=0)
        with pytest.raises(DistributedError, match="already initialised"):
            with Environment(config, configs=configs):
                pytest.fail("the block ran")
        # DistributedEvaluator works on the existing group instead.
        result = DistributedEvaluator(configs=configs).descriptor_evaluate(
            script.linear(), 1, "stripes")
        assert not result.failed
    finally:
        dist.destroy_process_group()


def test_loader_datasets_are_rejected_with_a_hint(configs):
    def loaders(percentage=1.0):
        data = [(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long))]
        return data, data

    configs.add_classification_dataset("loaders", 2, (8, 8), 1, loaders)
    with pytest.raises(EvaluationError, match="return nord.data_curators.DatasetSplits"):
        DistributedEvaluator(configs=configs, split="test").descriptor_evaluate(
            script.linear(), 1, "loaders")


def test_one_rank_failures_match_local_evaluator(configs):
    poisoned = DistributedEvaluator("sgd", {}, configs=configs).descriptor_evaluate(
        script.linear(), 1, "poisoned")
    expected = LocalEvaluator("sgd", {}, configs=configs).descriptor_evaluate(
        script.linear(), 1, "poisoned")
    assert poisoned.failed and poisoned.error == expected.error
    assert poisoned.error.startswith("NonFiniteLossError: training loss became nan at epoch 1")
    with pytest.raises(EvaluationError, match="epochs must be >= 0"):
        DistributedEvaluator(configs=configs).descriptor_evaluate(script.linear(), -1, "stripes")


# -------------------------------------------------------------------- errors forming the group
@pytest.mark.parametrize("master_ip", ["127.0.0.1", "no-such-host.invalid"])
def test_wrong_address_or_port_fails_within_the_timeout(configs, master_ip):
    config = DistributedConfig(master_ip, free_port(), world_size=2, world_rank=1)
    start = time.perf_counter()
    with pytest.raises(DistributedError, match="did not form") as caught:
        with Environment(config, configs=configs, timeout=1):
            pytest.fail("the block ran without a process group")
    assert time.perf_counter() - start < 8
    assert "master_ip:port" in str(caught.value) and "world_size" in str(caught.value)
    assert not dist.is_initialized()


@pytest.mark.slow
def test_world_size_larger_than_the_launched_ranks_fails_within_the_timeout(tmp_path):
    done = finish(launch("join_only", tmp_path, world_size=3, ranks=[0, 1], timeout=2), 40)
    for rank in (0, 1):
        assert done[rank][0] == 0, done[rank][1]
        error = read_json(tmp_path / f"error-rank{rank}.json")
        assert error["type"] == "DistributedError" and not error["initialized"]
        assert "process group of 3 ranks did not form" in error["message"]
        assert error["seconds"] < 10
    assert not list(tmp_path.glob("joined-*"))


# -------------------------------------------------------------------- Environment, 2 ranks
@pytest.mark.slow
def test_environment_round_trip_runs_the_block_on_the_master_only(tmp_path):
    done = finish(launch("roundtrip", tmp_path))
    for rank, (code, output) in done.items():
        assert code == 0, f"rank {rank}:\n{output}"
    assert (tmp_path / "body-rank0").exists() and not (tmp_path / "body-rank1").exists()
    # Workers leave the process inside __enter__: code after the block does not run there.
    assert (tmp_path / "after-rank0").exists() and not (tmp_path / "after-rank1").exists()
    assert (tmp_path / "loading-rank1").exists()  # the worker did train
    first, setup, poisoned, unreadable, last = read_json(tmp_path / "results.json")
    assert not first["failed"] and first["metrics"]["accuracy"] > 0.6
    assert len(first["train_losses"]) == 2 and first["train_losses"][1] < first["train_losses"][0]
    assert ("rank 1 of 2 could not set up the evaluation: UnknownDatasetError"
            in setup["setup_error"])
    assert "'master-only'" in setup["setup_error"]
    # Only rank 1's shard holds the NaN sample; every rank agrees the evaluation failed.
    assert poisoned["failed"] and "NonFiniteLossError" in poisoned["error"]
    assert "another rank" in poisoned["error"]
    # A layer class the worker cannot import: its request fails on every rank, in step.
    assert "rank 1 of 2 could not set up the evaluation: AttributeError" in unreadable[
        "request_error"] and "Halve" in unreadable["request_error"]
    # After each of those failures the environment still evaluates.
    assert last["metrics"]["accuracy"] > 0.6 and last["total_time"] > 0


@pytest.mark.slow
def test_an_exception_in_the_block_shuts_every_rank_down(tmp_path):
    done = finish(launch("body_raises", tmp_path))
    master_code, master_output = done[0]
    assert master_code == 1 and "RuntimeError: boom from the body" in master_output
    assert done[1][0] == 0, done[1][1]
    assert "boom" not in done[1][1]
    assert not (tmp_path / "body-rank1").exists()


@pytest.mark.slow
@pytest.mark.parametrize("victim", [1, 0], ids=["worker", "master"])
def test_a_killed_rank_is_an_error_within_bounded_time(tmp_path, victim):
    processes = launch("killed", tmp_path)
    try:
        wait_for([tmp_path / "loading-rank0", tmp_path / "loading-rank1"], 30)
        time.sleep(1.0)  # well inside the 100,000-epoch evaluation
        assert all(p.poll() is None for p in processes.values())
        processes[victim].send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        survivor = 1 - victim
        processes[survivor].wait(timeout=30)
        assert time.monotonic() - killed_at < 15
    finally:
        done = finish(processes, 5)
    code, output = done[survivor]
    assert code == 1, output
    assert "DistributedError" in output
    error = read_json(tmp_path / f"error-rank{survivor}.json")["message"]
    if victim == 1:
        assert "failed on rank 0 of 2" in error and "check every rank's log" in error
    else:
        assert "failed on rank 1 of 2" in error


# -------------------------------------------------------------------- data-parallel modes
def replay(configs, mode, world_size=2, epochs=2, batch_size=16, lr=0.1, seed=5):
    """The linear model trained by hand as Algorithm 1 or 2 prescribe, with plain SGD."""
    evaluator = LocalEvaluator(torch.optim.SGD, {"lr": lr}, configs=configs, seed=seed)
    torch.manual_seed(seed)
    net = evaluator.build_network(script.linear(), "stripes")
    train = evaluator.load_data("stripes").train
    shards = [shard_indices(len(train), r, world_size) for r in range(world_size)]
    generators = [torch.Generator().manual_seed(rank_seed(seed, r)) for r in range(world_size)]

    def sgd_step(model, index):
        model.zero_grad()
        F.cross_entropy(model(train.x[index]), train.y[index]).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad

    for _ in range(epochs):
        batches = [shard_batches(s, batch_size, g) for s, g in zip(shards, generators)]
        if mode == "allreduce":  # one step on the union of the ranks' batches
            for step in range(max(len(b) for b in batches)):
                sgd_step(net, torch.cat([b[step] for b in batches if step < len(b)]))
        else:  # every rank alone for an epoch, then the mean of the weights
            copies = []
            for rank_batches in batches:
                copy = evaluator.build_network(script.linear(), "stripes")
                copy.load_state_dict(net.state_dict())
                for index in rank_batches:
                    sgd_step(copy, index)
                copies.append(copy.state_dict())
            net.load_state_dict({k: sum(c[k] for c in copies) / world_size for k in copies[0]})
    return net.state_dict()


@pytest.fixture(scope="module")
def two_rank_training(tmp_path_factory):
    """Both modes trained by two ranks calling DistributedEvaluator themselves."""
    out = tmp_path_factory.mktemp("spmd")
    done = finish(launch("spmd", out))
    for rank, (code, output) in done.items():
        assert code == 0, f"rank {rank}:\n{output}"
    return out


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["allreduce", "average"])
def test_two_ranks_follow_the_algorithm_and_end_with_identical_weights(two_rank_training,
                                                                       configs, mode):
    out = two_rank_training
    states = {}
    for name in ("linear", "cnn"):
        states[name] = [torch.load(out / f"{mode}-{name}-rank{r}.pt") for r in (0, 1)]
        for key in states[name][0]:  # weights and BatchNorm buffers alike
            assert torch.equal(states[name][0][key], states[name][1][key]), (name, key)
        results = [read_json(out / f"{mode}-{name}-rank{r}.json") for r in (0, 1)]
        assert results[0] == results[1] and not results[0]["failed"]
        assert torch.isfinite(torch.tensor(results[0]["loss"]))
    expected = replay(configs, mode)
    for key, value in expected.items():
        torch.testing.assert_close(states["linear"][0][key], value, rtol=1e-5, atol=1e-6)
    # Rank 0 alone would have trained differently: the ranks really did combine.
    alone = DistributedEvaluator(torch.optim.SGD, {"lr": 0.1}, configs=configs, batch_size=16,
                                 seed=5)
    net = alone.build_network(script.linear(), "stripes")
    alone.net_evaluate(net, 2, "stripes")
    assert not torch.allclose(net.state_dict()["head.weight"], expected["head.weight"])


# -------------------------------------------------------------------- listing 3.4
from tests.fashion_mnist_data import fashion_mnist_available  # noqa: E402


@pytest.mark.slow
@pytest.mark.skipif(not fashion_mnist_available(), reason="Fashion-MNIST not installed")
def test_listing_3_4_runs_under_torchrun_on_two_processes(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", str(ROOT / "examples" / "listing_3_4_environment.py"),
               "--dataset", "fashion-mnist", "--epochs", "1", "--percentage", "0.02"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = finish({0: subprocess.Popen(command, cwd=tmp_path, env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)}, 120)
    code, output = done[0]
    assert code == 0, output
    assert output.count("Test metrics") == 1 and "Ranks: 2 (allreduce)" in output
    assert float(output.split("accuracy : ")[1].split("'")[0]) > 0.3  # chance is 0.1


def test_listing_3_4_flags_make_the_config():
    example = runpy.run_path(str(ROOT / "examples" / "listing_3_4_environment.py"))
    config_from = example["config_from"]

    def flags(**given):
        return argparse.Namespace(**{"master_ip": None, "port": None, "world_size": None,
                                     "rank": None, **given})

    assert config_from(flags(master_ip="10.0.0.1", port=1234, world_size=4, rank=3)) == \
        DistributedConfig("10.0.0.1", 1234, world_size=4, world_rank=3)
    with pytest.raises(SystemExit, match="need --master-ip and --port"):
        config_from(flags(world_size=4, rank=3))
    mpi = {"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in mpi.items():
            patch.setenv(name, value)
        for name in ("WORLD_SIZE", "RANK"):
            patch.delenv(name, raising=False)
        assert config_from(flags(master_ip="node0", port=99)) == DistributedConfig(
            "node0", 99, 2, 1)
    assert config_from(flags()) is None  # torchrun's variables, read by Environment
