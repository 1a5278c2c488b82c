"""A genotype's final network, compiled from its descriptor, against a hand-wired one."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from nord.darts.final_network import compile_genotype, genotype_descriptor
from nord.darts.genotype import Genotype, random_genotype
from nord.errors import GenotypeError, SettingsError
from nord.neural_nets import NeuralDescriptor, NeuralNet
from nord.neural_nets.darts_ops import DilConv, FactorizedReduce, ReLUConvBN, SepConv

GENOTYPE = Genotype(
    normal=(("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_3x3", 1),
            ("max_pool_3x3", 2)),
    reduce=(("max_pool_3x3", 0), ("avg_pool_3x3", 1), ("skip_connect", 0),
            ("sep_conv_5x5", 2)))


class HandCell(nn.Module):
    """One cell wired by hand: two preprocessed inputs, each node the sum of its
    two edges, the output nodes concatenated (the compiled modules' weights)."""

    def __init__(self, net, k, genotype, reduction):
        super().__init__()
        self.pre0, self.pre1 = net.layer(f"c{k}_pre0"), net.layer(f"c{k}_pre1")
        self.ops = nn.ModuleList(net.layer(f"c{k}_n{i}_{m}")
                                 for i in range(genotype.steps) for m in range(2))
        self.inputs = [j for _, j in genotype.cell(reduction)]
        self.concat = genotype.concat(reduction)
        self.reduction = reduction

    def forward(self, s0, s1):
        states = [self.pre0(s0), self.pre1(s1)]
        for i in range(len(self.ops) // 2):
            a, b = 2 * i, 2 * i + 1
            states.append(self.ops[a](states[self.inputs[a]]) +
                          self.ops[b](states[self.inputs[b]]))
        return torch.cat([states[j] for j in self.concat], dim=1)


class HandNetwork(nn.Module):
    def __init__(self, net, genotype, cells, reductions):
        super().__init__()
        self.stem = nn.Sequential(net.layer("stem"), net.layer("stem_bn"))
        self.cells = nn.ModuleList(HandCell(net, k, genotype, k in reductions)
                                   for k in range(cells))
        self.classifier = net.head

    def forward(self, x):
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(s1, 1), 1))


def test_the_compiled_genotype_is_the_hand_wired_network():
    torch.manual_seed(0)
    net = compile_genotype(GENOTYPE, num_classes=10, channels=4, cells=5).eval()
    hand = HandNetwork(net, GENOTYPE, 5, (1, 3)).eval()
    x = torch.randn(3, 1, 28, 28)
    assert torch.allclose(net(x), hand(x), atol=1e-5)
    # the operations are the DARTS ones, strided where a reduction cell reads its inputs
    assert isinstance(net.layer("c0_n0_0"), SepConv) and net.layer("c0_n1_0")[1].stride == (1, 1)
    assert isinstance(net.layer("c1_n1_0"), FactorizedReduce)  # skip_connect, stride 2
    assert isinstance(net.layer("c1_n1_1"), SepConv)           # from node 2: stride 1
    assert net.layer("c1_n0_0").stride == 2                    # max pool from input 0
    assert isinstance(net.layer("c2_pre0"), FactorizedReduce)  # after a reduction cell
    assert isinstance(net.layer("c2_pre1"), ReLUConvBN)
    assert isinstance(net.layer("c0_n1_0"), DilConv)
    # channels: 4 -> 8 -> 16 at the reductions; each cell concatenates its 2 nodes
    shapes = {n.name: n.out_shape for n in net.plan.nodes}
    assert (shapes["c0_out"].channels, shapes["c1_out"].channels,
            shapes["c3_out"].channels) == (8, 16, 32)
    assert shapes["c1_out"].spatial == (14, 14) and shapes["c4_out"].spatial == (7, 7)


def test_a_genotype_descriptor_file_compiles_to_the_same_network():
    d = genotype_descriptor(random_genotype(np.random.default_rng(1), steps=3), channels=4,
                            cells=3)
    back = NeuralDescriptor.from_json(d.to_json())
    first = NeuralNet(d, 10, (16, 16), 1).eval()
    second = NeuralNet(back, 10, (16, 16), 1).eval()
    second.load_state_dict(first.state_dict())
    x = torch.randn(2, 1, 16, 16)
    assert torch.equal(first(x), second(x))


def test_bad_genotypes_and_settings():
    with pytest.raises(GenotypeError, match="unknown operation 'conv_9x9'"):
        Genotype(normal=(("conv_9x9", 0), ("skip_connect", 1)),
                 reduce=(("skip_connect", 0), ("skip_connect", 1)))
    with pytest.raises(GenotypeError, match="needs a Genotype"):
        genotype_descriptor({"normal": []})
    with pytest.raises(SettingsError, match="channels must be even"):
        genotype_descriptor(GENOTYPE, channels=5)
    with pytest.raises(SettingsError, match="cells must be"):
        genotype_descriptor(GENOTYPE, cells=0)
