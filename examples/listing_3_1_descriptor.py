"""Thesis listing 3.1: describe the network of Figure 3.3 and compile it.

Run: python examples/listing_3_1_descriptor.py [--png graph.png]

The listing's ``in_channels`` values need not match the graph (conv3 says 5
but receives conv2's 10): the compiler infers input sizes from the graph.
``pool2`` has two inputs, reconciled by the minimum viable size policy.
"""

import argparse

import torch
import torch.nn as nn

from nord.neural_nets import NeuralDescriptor, NeuralNet


def build_descriptor() -> NeuralDescriptor:
    # Define layer presets
    conv = nn.Conv2d
    conv_params = {'in_channels': 3,
                   'out_channels': 5, 'kernel_size': 3}

    conv_2_params = {'in_channels': 5,
                     'out_channels': 10, 'kernel_size': 5}

    conv_3_params = {'in_channels': 5,
                     'out_channels': 10, 'kernel_size': 3}

    pool = nn.MaxPool2d
    pool_params = {'kernel_size': 2, 'stride': 2}

    pool2_params = {'kernel_size': 2, 'stride': 5}

    d = NeuralDescriptor()

    # Add layers and give them names
    d.add_layer(conv, conv_params, 'conv')
    d.add_layer(conv, conv_2_params, 'conv2')
    d.add_layer(conv, conv_3_params, 'conv3')
    d.add_layer(pool, pool_params, 'pool1')
    d.add_layer(pool, pool2_params, 'pool2')

    # Add Connections using names
    d.connect_layers('conv', 'conv2')
    d.connect_layers('conv2', 'conv3')
    d.connect_layers('conv3', 'pool2')
    d.connect_layers('conv2', 'pool1')
    d.connect_layers('pool1', 'pool2')
    return d


def main(argv=None) -> NeuralNet:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--png", help="also draw the descriptor graph to this PNG file")
    parser.add_argument("--size", type=int, default=32, help="input height/width (CIFAR-10: 32)")
    args = parser.parse_args(argv)

    d = build_descriptor()
    d.validate()
    net = NeuralNet(d, 10, (args.size, args.size), 3)
    print(net.summary())
    logits = net(torch.randn(4, 3, args.size, args.size))
    print(f"output for a batch of 4 images: {tuple(logits.shape)}")
    print(f"canonical hash: {d.canonical_hash()}")
    if args.png:
        d.plot(args.png)
        print(f"graph drawn to {args.png}")
    return net


if __name__ == "__main__":
    main()
