"""Thesis listing 3.4: evaluate a descriptor data-parallel inside an Environment.

Every process runs this script; the ``with`` block runs on the master (rank 0)
only, while the workers train alongside it and leave when it is done.

With torchrun (world size and rank from its variables):
    torchrun --standalone --nproc-per-node 2 examples/listing_3_4_environment.py \\
        --dataset fashion-mnist --epochs 1 --percentage 0.05
With an explicit DistributedConfig, one command per process (rank 0 listens at
master-ip:port):
    python examples/listing_3_4_environment.py --master-ip 127.0.0.1 --port 1234 \\
        --world-size 2 --rank 0 --dataset fashion-mnist &
    python examples/listing_3_4_environment.py --master-ip 127.0.0.1 --port 1234 \\
        --world-size 2 --rank 1 --dataset fashion-mnist
Under mpirun or srun, set MASTER_ADDR and MASTER_PORT, or pass --master-ip and --port.

The listing's gaps are filled: ``DistributedConfig`` is imported and the
descriptor is listing 3.2's network.
"""

import argparse
import logging

import torch
import torch.nn as nn

from nord.neural_nets import NeuralDescriptor
from nord.neural_nets.distributed.environment import DistributedConfig, Environment


def listing_3_2_descriptor() -> NeuralDescriptor:
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {'out_channels': 5, 'kernel_size': 3})
    d.add_layer_sequential(nn.Conv2d, {'out_channels': 10, 'kernel_size': 3})
    d.add_layer_sequential(nn.MaxPool2d, {'kernel_size': 2, 'stride': 2})
    return d


def config_from(args):
    """A DistributedConfig from the flags; None leaves it to torchrun's variables.

    With only --master-ip and --port, world size and rank are copied from the
    MPI or Slurm launcher's variables (thesis §3.2.1).
    """
    if args.world_size is not None or args.rank is not None:
        if None in (args.master_ip, args.port, args.world_size, args.rank):
            raise SystemExit("--world-size and --rank need --master-ip and --port too")
        return DistributedConfig(args.master_ip, args.port, world_size=args.world_size,
                                 world_rank=args.rank)
    if args.master_ip is not None or args.port is not None:
        return DistributedConfig.from_environment(master_ip=args.master_ip, port=args.port)
    return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="cifar10", help="cifar10 (thesis) or fashion-mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--percentage", type=float, default=1.0, help="share of the training set")
    parser.add_argument("--split", default="test", choices=["validation", "test"])
    parser.add_argument("--mode", default="allreduce", choices=["allreduce", "average"],
                        help="average gradients every step, or weights once per epoch")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--master-ip", help="rank 0's address (explicit DistributedConfig)")
    parser.add_argument("--port", type=int, help="rank 0's port")
    parser.add_argument("--world-size", type=int, help="number of processes")
    parser.add_argument("--rank", type=int, help="this process's rank")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for every rank to join")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    # Configuration: from the flags (e.g. master at localhost:1234 and
    # 4 workers), or from torchrun's / MPI's variables when none are given.
    config = config_from(args)
    descriptor = listing_3_2_descriptor()
    with Environment(config, torch.optim.Adam, {}, mode=args.mode, split=args.split,
                     timeout=args.timeout) as e:
        loss, metrics, total_time = e.descriptor_evaluate(
            descriptor=descriptor, epochs=args.epochs, dataset=args.dataset,
            data_percentage=args.percentage)
        print(f'Ranks: {e.world_size} ({e.evaluator.mode})')
        print('Train time: %.2f' % total_time)
        print('Test metrics: ', [(key + ' : %.2f' % value) for key, value in metrics.items()])
        print('Test loss: %.2f' % loss)
    return loss, metrics, total_time


if __name__ == "__main__":
    main()
