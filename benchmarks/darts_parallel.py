"""Data-parallel DARTS (chapter 8): epoch time on 1 and 2 ranks with each algorithm.

Each rank is a gloo process limited to one torch thread, so 2 ranks use 2
cores where 1 rank uses one; every rank searches its half of the same
Fashion-MNIST share. Algorithm 1 (``weights``) averages weights, architecture
weights and BN statistics once per epoch; Algorithm 2 (``gradients``)
averages the gradients every step. Printed per algorithm: the epoch time on
1 and 2 ranks (the median of ``--rounds`` epochs after a warm-up one), the
speed-up (thesis: 1.82 at 2 GPUs, Algorithm 1), the all-reduce calls and
bytes of an epoch on 2 ranks, and their ratio (the thesis's reduction factor
N / B: the steps of an epoch; 937.5 for the whole of Fashion-MNIST at batch 64).

Run: python benchmarks/darts_parallel.py [--share 0.02] [--rounds 2]
     [--channels 4 --cells 3 --steps 2 --batch 32]
On GPUs (NCCL, one rank per GPU, launched by torchrun; benchmarks/darts_device_check.sh):
     torchrun --nproc-per-node N benchmarks/darts_parallel.py --torchrun --out F.json
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

from nord.darts.parallel import ALGORITHMS, ParallelDartsSearch
from nord.darts.search import DartsSettings, load_search_data
from nord.neural_nets.distributed import destroy_process_group
from nord.neural_nets.distributed.collectives import RankGroup


def settings_of(args) -> DartsSettings:
    return DartsSettings(share=args.share, channels=args.channels, cells=args.cells,
                         steps=args.steps, multiplier=args.steps, batch_size=args.batch,
                         epochs=args.rounds + 1, seed=0)


def rank_main(rank: int, world_size: int, port: int, args, out: str,
              device: str = "cpu") -> None:
    torch.set_num_threads(1)
    if device == "cpu":
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                                world_size=world_size, rank=rank)
    else:  # torchrun set the rendezvous variables
        torch.cuda.set_device(torch.device(device))
        dist.init_process_group("nccl")
    try:
        settings = settings_of(args)
        data = load_search_data(settings)
        results = {}
        for algorithm in ALGORITHMS:
            search = ParallelDartsSearch(settings, data, algorithm, RankGroup(device=device),
                                         device=device)
            epochs = [search.run_epoch() for _ in range(settings.epochs)]
            timed = epochs[1:]  # the first one warms up
            results[algorithm] = {
                "epoch_seconds": statistics.median(m["seconds"] for m in timed),
                "batches": timed[0]["batches"],
                "all_reduce_calls": timed[0]["all_reduce_calls"],
                "all_reduce_bytes": timed[0]["all_reduce_bytes"],
                "valid_accuracy": timed[-1]["valid_accuracy"]}
        if rank == 0:
            Path(out, f"world{world_size}.json").write_text(json.dumps(results))
            if device != "cpu":
                print(json.dumps({"world_size": world_size, "device": device, **results}))
    finally:
        destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--share", type=float, default=0.02)
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--cells", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    parser.add_argument("--torchrun", action="store_true",
                        help="this process is one rank of a torchrun launch on GPUs (NCCL): "
                        "time it and write world<N>.json into the --out folder")
    args = parser.parse_args()
    if args.torchrun:
        import os
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        Path(args.out).mkdir(parents=True, exist_ok=True)
        rank_main(rank, world, 0, args, args.out, f"cuda:{os.environ.get('LOCAL_RANK', 0)}")
        return
    with tempfile.TemporaryDirectory() as out:
        for world_size in (1, 2):
            mp.spawn(rank_main, args=(world_size, free_port(), args, out), nprocs=world_size)
        one, two = (json.loads(Path(out, f"world{w}.json").read_text()) for w in (1, 2))
    n = int(60000 * args.share) // 2
    print(f"DARTS supernet C={args.channels}, {args.cells} cells, {args.steps} nodes, batch "
          f"{args.batch}, {n} + {n} search images; median of {args.rounds} epochs")
    print(f"{'algorithm':<12}{'1 rank s':>10}{'2 ranks s':>11}{'speed-up':>10}"
          f"{'calls/epoch':>13}{'MB/epoch':>10}")
    summary = {}
    for algorithm in ALGORITHMS:
        a, b = one[algorithm], two[algorithm]
        speedup = a["epoch_seconds"] / b["epoch_seconds"]
        print(f"{algorithm:<12}{a['epoch_seconds']:>10.2f}{b['epoch_seconds']:>11.2f}"
              f"{speedup:>10.2f}{b['all_reduce_calls']:>13}"
              f"{b['all_reduce_bytes'] / 2 ** 20:>10.2f}")
        summary[algorithm] = {"one_rank": a, "two_ranks": b, "speedup": speedup}
    calls = two["gradients"]["all_reduce_calls"] / two["weights"]["all_reduce_calls"]
    steps = two["weights"]["batches"]
    print(f"\nAlgorithm 2 / Algorithm 1 all-reduce calls: {calls:.1f} ({steps} steps an epoch "
          f"per rank; the thesis's N/B for the whole of Fashion-MNIST at batch 64: 937.5)")
    print("speed-up at 2 ranks, Algorithm 1: "
          f"{summary['weights']['speedup']:.2f} (thesis, 2 GPUs: 1.82)")
    if args.out:
        Path(args.out).write_text(json.dumps({"settings": vars(args), **summary}, indent=1))


if __name__ == "__main__":
    main()
