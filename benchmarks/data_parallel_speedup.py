"""Epoch time of data-parallel training on 2 ranks against 1 rank, in both modes.

DistributedEvaluator trains a compiled small CNN (Adam, batch 64 per rank) on
a share of Fashion-MNIST, each rank a gloo process limited to one thread, so
2 ranks use 2 cores where 1 rank uses one. ``allreduce`` averages gradients
every step (thesis Algorithm 2), ``average`` averages weights once per epoch
(Algorithm 1). Each rank processes half the epoch's samples; the speedup is
1-rank epoch time / 2-rank epoch time (ideal 2.0), the median of ``--rounds``
evaluations after a warm-up one.

Run: python benchmarks/data_parallel_speedup.py [--percentage 0.2] [--rounds 3] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from nord.neural_nets.distributed import MODES, DistributedEvaluator, destroy_process_group
from training_throughput import small_cnn  # the same network as the throughput benchmark


def rank_main(rank: int, world_size: int, port: int, args, out: str) -> None:
    """One rank: every mode, a warm-up evaluation then ``rounds`` timed ones."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                            world_size=world_size, rank=rank)
    try:
        base = DistributedEvaluator("adam", {}, batch_size=args.batch, seed=0, device="cpu")
        timings = {}
        for mode in MODES:
            evaluator = base.with_settings({**base.settings(), "mode": mode})
            epoch_seconds, scores = [], None
            for round_ in range(args.rounds + 1):
                result = evaluator.descriptor_evaluate(small_cnn(), args.epochs, "fashion-mnist",
                                                       args.percentage)
                if round_:  # the first one warms up (data, lazy imports, allocator)
                    epoch_seconds.append(result.train_seconds / args.epochs)
                scores = {"loss": result.loss, "accuracy": result.metrics["accuracy"]}
            timings[mode] = {"epoch_seconds": epoch_seconds, **scores}
        if rank == 0:
            Path(out, f"world{world_size}.json").write_text(json.dumps(timings))
    finally:
        destroy_process_group()


def measure(world_size: int, args, out: str) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(rank_main, args=(world_size, port, args, out), nprocs=world_size, join=True)
    return json.loads(Path(out, f"world{world_size}.json").read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--percentage", type=float, default=0.2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)

    print(f"torch {torch.__version__}; 1 thread per rank; Fashion-MNIST share "
          f"{args.percentage:g}, batch {args.batch} per rank, {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as out:
        results = {world_size: measure(world_size, args, out) for world_size in (1, 2)}
    speedups = {}
    for mode in MODES:
        one, two = (statistics.median(results[w][mode]["epoch_seconds"]) for w in (1, 2))
        speedups[mode] = one / two
        print(f"{mode:9s}: 1 rank {one:.2f} s/epoch, 2 ranks {two:.2f} s/epoch: speedup "
              f"{speedups[mode]:.2f} (ideal 2.00); validation accuracy "
              f"{results[1][mode]['accuracy']:.4f} / {results[2][mode]['accuracy']:.4f}, "
              f"loss {results[1][mode]['loss']:.4f} / {results[2][mode]['loss']:.4f}")
    return speedups


if __name__ == "__main__":
    main()
