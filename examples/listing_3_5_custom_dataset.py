"""Thesis listing 3.5: register a custom dataset and evaluate a descriptor on it.

Run: python examples/listing_3_5_custom_dataset.py [--epochs 2] [--percentage 1.0]

The listing used torchvision's MNIST; here an MNIST-like dataset is fed from the
Fashion-MNIST IDX files (torchvision is not a NORD dependency), and, like the
listing, ``get_mnist`` returns (train loader, test loader, classes). Unlike the
listing's toy loader, ``percentage`` is honoured.
"""

import argparse

import torch
import torch.nn as nn

from nord.configurations.all import Configs
from nord.data_curators import load_fashion_mnist
from nord.neural_nets import LocalEvaluator, NeuralDescriptor


# Percentage dictates what percentage of the trainset
# will be used while training (not train/test split percentages).
def get_mnist(percentage: float = 1):
    print('Loading MNIST-like data (Fashion-MNIST files).')
    train_x, train_y = load_fashion_mnist('train')
    keep = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(0))
    keep = keep[:int(len(keep) * percentage)]
    trainset = torch.utils.data.TensorDataset(train_x[keep], train_y[keep])

    trainloader = torch.utils.data.DataLoader(trainset,
                                              batch_size=128,
                                              num_workers=0,
                                              shuffle=True,
                                              generator=torch.Generator().manual_seed(0))

    testset = torch.utils.data.TensorDataset(*load_fashion_mnist('test'))
    testloader = torch.utils.data.DataLoader(testset, batch_size=128,
                                             shuffle=False,
                                             num_workers=0)

    classes = ('0', '1', '2', '3', '4',
               '5', '6', '7', '8', '9')

    return trainloader, testloader, classes


def descriptor() -> NeuralDescriptor:
    d = NeuralDescriptor()
    d.add_layer(nn.Conv2d, {'in_channels': 1, 'out_channels': 8, 'kernel_size': 3})
    d.add_layer_sequential(nn.ReLU, {})
    d.add_layer_sequential(nn.MaxPool2d, {'kernel_size': 2})
    return d


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--percentage", type=float, default=1.0)
    args = parser.parse_args(argv)

    # Instantiate the Configs singleton and add the dataset
    conf = Configs()
    # data_organization is optional, defaults to 'matrix' i.e. image
    conf.add_classification_dataset(name='MNIST', num_classes=10,
                                    input_shape=(28, 28), channels=1,
                                    data_load=get_mnist)

    d = descriptor()
    evaluator = LocalEvaluator(torch.optim.Adam, {}, verbose=True)
    loss, metrics, total_time = evaluator.descriptor_evaluate(
        d, epochs=args.epochs, dataset='MNIST', data_percentage=args.percentage)
    print(f'test loss {loss:.4f}, test accuracy {metrics["accuracy"]:.4f}, {total_time:.1f} s')
    return loss, metrics, total_time


if __name__ == "__main__":
    main()
