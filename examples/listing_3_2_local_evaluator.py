"""Thesis listing 3.2: train and score a descriptor with LocalEvaluator.

Run: python examples/listing_3_2_local_evaluator.py [--dataset cifar10] [--epochs 2] [--percentage 1.0]

The listing's typos are fixed: ``opt``, ``nn`` and ``conv`` are defined, the
pooling layer is ``MaxPool2d`` (images are 2-D) and ``dataset`` is set.
"""

import argparse

import torch.nn as nn
import torch.optim as opt

from nord.neural_nets import LocalEvaluator, NeuralDescriptor


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="cifar10", help="cifar10 (thesis) or fashion-mnist")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--percentage", type=float, default=1.0, help="share of the training set")
    parser.add_argument("--split", default="test", choices=["validation", "test"],
                        help="where to score (the thesis printed test metrics)")
    args = parser.parse_args(argv)
    dataset = args.dataset

    evaluator = LocalEvaluator(optimizer_class=opt.Adam,
                               optimizer_params={}, split=args.split)

    conv = nn.Conv2d
    # in_channels are 3 for the first layer, as CIFAR-10
    # is in RGB format (NORD infers them from the data and graph anyway)
    conv_params = {'in_channels': 3,
                   'out_channels': 5, 'kernel_size': 3}
    conv_2_params = {'in_channels': 5,
                     'out_channels': 10, 'kernel_size': 3}
    pool = nn.MaxPool2d
    pool_params = {'kernel_size': 2, 'stride': 2}

    d = NeuralDescriptor()
    d.add_layer(conv, conv_params)
    d.add_layer_sequential(conv, conv_2_params)
    d.add_layer_sequential(pool, pool_params)

    loss, metrics, total_time = evaluator.descriptor_evaluate(
        descriptor=d, epochs=args.epochs, dataset=dataset, data_percentage=args.percentage)

    # Print the results
    print('Train time: %.2f' % total_time)
    print('Test metrics: ', [(key+' : %.2f' % value)
                             for key, value in metrics.items()])
    print('Test loss: %.2f' % loss)
    return loss, metrics, total_time


if __name__ == "__main__":
    main()
