"""One rank of a multi-process scenario run by test_distributed.py.

Run: python distributed_script.py SCENARIO --rank R --world-size W --port P --out DIR
Each rank writes what the test checks into DIR (JSON results, weights, marker files).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import sys
import time
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn as nn

from nord.configurations.all import Configs
from nord.data_curators.splits import DatasetSplits, TensorData, make_splits
from nord.errors import EvaluationError
from nord.neural_nets import NeuralDescriptor
from nord.neural_nets.layers import register_layer, same_shape
from nord.neural_nets.distributed import DistributedEvaluator, destroy_process_group
from nord.neural_nets.distributed.environment import DistributedConfig, Environment
from nord.neural_nets.distributed.errors import DistributedError

OUT: Optional[Path] = None  # set by main(); None when the tests import this module
RANK = 0


# -------------------------------------------------------------------- data and networks
def stripes(n, seed):
    """Class 0: bright top half; class 1: bright bottom half; plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.randn(n, 1, 8, 8, generator=g) * 1.5
    x[y == 0, :, :4] += 0.5
    x[y == 1, :, 4:] += 0.5
    return x, y


def stripes_data(percentage=1.0):
    if OUT is not None:
        (OUT / f"loading-rank{RANK}").touch()
    train_x, train_y = stripes(203, 1)
    test_x, test_y = stripes(100, 2)
    return make_splits(train_x, train_y, test_x, test_y, percentage=percentage)


def poisoned_data(percentage=1.0):
    """Sample 1 (rank 1's shard of two) is NaN: only rank 1's loss becomes NaN."""
    x, y = stripes(64, 3)
    x[1] = float("nan")
    return DatasetSplits(train=TensorData(x, y), test=TensorData(x[2:], y[2:]),
                         validation=TensorData(x[2:], y[2:]))


def make_configs() -> Configs:
    configs = Configs(isolated=True)
    configs.add_classification_dataset("stripes", 2, (8, 8), 1, stripes_data)
    configs.add_classification_dataset("poisoned", 2, (8, 8), 1, poisoned_data)
    return configs


def linear() -> NeuralDescriptor:
    d = NeuralDescriptor()
    d.add_layer(nn.Flatten, {})
    return d


def small_cnn(channels=4) -> NeuralDescriptor:
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {"out_channels": channels, "kernel_size": 3, "padding": 1})
    d.add_layer_sequential(nn.BatchNorm2d, {})
    d.add_layer_sequential(nn.ReLU, {})
    d.add_layer_sequential(nn.Dropout, {"p": 0.2})
    d.add_layer_sequential(nn.MaxPool2d, {"kernel_size": 2})
    return d


@register_layer(output_shape=same_shape, replace=True)
class Halve(nn.Module):
    """A custom layer; the roundtrip's worker deletes it to play a rank without it."""

    def forward(self, x):
        return x / 2


def write_json(name, value):
    (OUT / name).write_text(json.dumps(value))


def as_dict(result):
    return {"loss": result.loss, "metrics": result.metrics, "failed": result.failed,
            "error": result.error, "train_losses": list(result.train_losses)}


# -------------------------------------------------------------------- scenarios
def environment(args, **options) -> Environment:
    config = DistributedConfig("127.0.0.1", args.port, world_size=args.world_size,
                               world_rank=args.rank)
    return Environment(config, "adam", {"lr": 0.01}, configs=make_configs(), batch_size=16,
                       timeout=args.timeout, **options)


def roundtrip(args):
    if args.rank:  # as if the class were defined on the master only
        del sys.modules["__main__"].Halve
    results = []
    with environment(args, mode=args.mode) as e:
        (OUT / f"body-rank{args.rank}").touch()
        results.append(as_dict(e.descriptor_evaluate(small_cnn(4), 2, dataset="stripes")))
        # A dataset registered in the body exists on the master only.
        e.evaluator.configs.add_classification_dataset("master-only", 2, (8, 8), 1, stripes_data)
        try:
            e.descriptor_evaluate(small_cnn(4), 1, dataset="master-only")
        except EvaluationError as error:
            results.append({"setup_error": str(error)})
        results.append(as_dict(e.descriptor_evaluate(small_cnn(4), 1, dataset="poisoned")))
        custom = linear()
        custom.add_layer_sequential(Halve, {})
        try:
            e.descriptor_evaluate(custom, 1, dataset="stripes")
        except EvaluationError as error:
            results.append({"request_error": str(error)})
        loss, metrics, total_time = e.descriptor_evaluate(linear(), 2, dataset="stripes")
        results.append({"loss": loss, "metrics": metrics, "total_time": total_time})
        write_json("results.json", results)
    (OUT / f"after-rank{args.rank}").touch()


def body_raises(args):
    with environment(args) as e:
        (OUT / f"body-rank{args.rank}").touch()
        e.descriptor_evaluate(linear(), 1, dataset="stripes")
        raise RuntimeError("boom from the body")


def killed(args):
    """A long evaluation; the test SIGKILLs a rank while it trains."""
    start = time.perf_counter()
    try:
        with environment(args, collective_timeout=120) as e:
            e.descriptor_evaluate(small_cnn(8), 100_000, dataset="stripes")
    except DistributedError as error:
        write_json(f"error-rank{args.rank}.json",
                   {"message": str(error), "seconds": time.perf_counter() - start})
        raise


def join_only(args):
    """Form the process group and leave (wrong address, world-size mismatch)."""
    start = time.perf_counter()
    try:
        with environment(args):
            pass
    except DistributedError as error:
        write_json(f"error-rank{args.rank}.json", {
            "type": type(error).__name__, "message": str(error),
            "seconds": time.perf_counter() - start,
            "initialized": dist.is_initialized()})
        return
    write_json(f"joined-rank{args.rank}.json", {})


def spmd(args):
    """Every rank calls DistributedEvaluator itself (no Environment), in both modes."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}",
                            world_size=args.world_size, rank=args.rank)
    try:
        for mode in ("allreduce", "average"):
            evaluator = DistributedEvaluator(torch.optim.SGD, {"lr": 0.1}, mode=mode,
                                             configs=make_configs(), batch_size=16, seed=5)
            for name, descriptor in (("linear", linear()), ("cnn", small_cnn(4))):
                torch.manual_seed(5)  # as descriptor_evaluate does; rank 0's weights win anyway
                net = evaluator.build_network(descriptor, "stripes")
                result = evaluator.net_evaluate(net, 2, dataset="stripes")
                torch.save({k: v.clone() for k, v in net.state_dict().items()},
                           OUT / f"{mode}-{name}-rank{args.rank}.pt")
                write_json(f"{mode}-{name}-rank{args.rank}.json", as_dict(result))
    finally:
        destroy_process_group()


SCENARIOS = {"roundtrip": roundtrip, "body_raises": body_raises, "killed": killed,
             "join_only": join_only, "spmd": spmd}


def main(argv=None):
    global OUT, RANK
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--world-size", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--mode", default="allreduce")  # of the Environment scenarios
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args(argv)
    OUT, RANK = Path(args.out), args.rank
    faulthandler.enable()  # a native crash prints every thread's Python stack
    torch.set_num_threads(1)
    SCENARIOS[args.scenario](args)


if __name__ == "__main__":
    sys.exit(main())
