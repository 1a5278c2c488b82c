"""One rank of a data-parallel DARTS search run by test_parallel.py.

Run: python darts_ranks.py --rank R --world-size W --port P --algorithm A --out DIR
Writes DIR/rank<R>.pt: the final supernet state and every epoch's metrics.
"""

import argparse
import datetime
from pathlib import Path

import torch
import torch.distributed as dist

from nord.darts.parallel import ParallelDartsSearch
from nord.darts.search import DartsSettings
from nord.neural_nets.distributed.collectives import RankGroup, destroy_process_group
from tests.darts.darts_data import TINY, synthetic


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("rank", "world-size", "port", "epochs"):
        parser.add_argument(f"--{name}", type=int, default=2 if name == "epochs" else None)
    parser.add_argument("--algorithm", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}",
                            rank=args.rank, world_size=args.world_size,
                            timeout=datetime.timedelta(seconds=60))
    try:
        search = ParallelDartsSearch(DartsSettings(**TINY, epochs=args.epochs, seed=1),
                                     synthetic(), args.algorithm, RankGroup())
        metrics = [search.run_epoch() for _ in range(args.epochs)]
        torch.save({"model": search.model.state_dict(), "metrics": metrics},
                   Path(args.out) / f"rank{args.rank}.pt")
    finally:
        destroy_process_group()


if __name__ == "__main__":
    main()
