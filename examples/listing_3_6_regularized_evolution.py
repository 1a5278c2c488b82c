"""Thesis listings 3.6 and 3.7: regularized evolution written out by hand on descriptors.

This is the listing's own loop (the library's version is
``nord.design.strategies.evolution.RegularizedEvolution``), with its defects
fixed: layer-name prefixes are compared as numbers (a node inserted between
"2_Layer" and "3_Layer" is "2.5_Layer"), the output layer is excluded as a
source by name (not by position), every random choice comes from one seeded
generator, and a failed evaluation is counted by its reason instead of being
swallowed. ``--benchmark nasbench201`` applies listing 3.7's changes.

The shipped NAS-Bench-101 table holds 30,001 of the 423,624 cells, so most
cells this loop proposes score 0 as "not in the table" (the thesis used the
full table: pass --table nasbench_only108.tfrecord). To search inside the
subset use ``nord search --space nasbench101``.

Run: python examples/listing_3_6_regularized_evolution.py [--benchmark nasbench101]
     [--population 20] [--sample 5] [--evolutions 100] [--seed 0] [--table PATH]
"""

from __future__ import annotations

import argparse
from collections import Counter, namedtuple
from copy import deepcopy

import numpy as np

from nord.errors import NotInTableError, OutOfSearchSpaceError
from nord.neural_nets import NASBench_101Evaluator, NATSBench_Evaluator, NeuralDescriptor

OUTPUT_LAYER_NAME = '9999'
Individual = namedtuple('Individual', 'descriptor fitness')


def prefix(name: str) -> float:
    return float(name.split('_')[0])


class ListingEvolution:
    def __init__(self, benchmark, table, rng, max_layers=5, add_connection_prob=0.5,
                 add_node_prob=0.5):
        if benchmark == 'nasbench101':
            self.evaluator = NASBench_101Evaluator(table)
            self.in_layer, self.out_layer = 'input', 'output'
        else:  # listing 3.7
            self.evaluator = NATSBench_Evaluator(table)
            self.in_layer, self.out_layer = 'IN', 'OUT'
        self.benchmark = benchmark
        self.ops = self.evaluator.get_available_ops()
        self.available_layers = len(self.ops)
        self.rng = rng
        self.max_layers = max_layers
        self.add_connection_prob = add_connection_prob
        self.add_node_prob = add_node_prob
        self.failures = Counter()

    def add_random_connection(self, descriptor: NeuralDescriptor):
        # Get a source, but don't get the output as source node
        sources = [x for x in descriptor.connections.keys() if x != OUTPUT_LAYER_NAME]
        from_ = sources[self.rng.integers(len(sources))]
        # NORD names layers with a number prefix; find later layers
        avail_to_layers = [x for x in descriptor.layers.keys() if prefix(from_) < prefix(x)]
        if len(avail_to_layers) > 0:
            to_ = avail_to_layers[self.rng.integers(len(avail_to_layers))]
            descriptor.connect_layers(from_, to_)
        return descriptor

    def mutate(self, descriptor: NeuralDescriptor):
        r = self.rng.uniform()
        # With the maximum number of hidden layers (+2 for input and output)
        # we can only add connections
        if r < self.add_connection_prob or len(descriptor.layers) == self.max_layers + 2:
            return self.add_random_connection(descriptor)
        if r < self.add_node_prob + self.add_connection_prob:
            sources = [x for x in descriptor.connections.keys()
                       if x != OUTPUT_LAYER_NAME and descriptor.connections[x]]
            from_ = sources[self.rng.integers(len(sources))]
            to_ = descriptor.connections[from_][self.rng.integers(len(descriptor.connections[from_]))]
            layer_index = self.rng.integers(self.available_layers)
            # a prefix larger than the source's and smaller than the destination's
            middle = (prefix(from_) + prefix(to_)) / 2
            while f'{middle:g}_Layer' in descriptor.layers:
                middle = (prefix(from_) + middle) / 2
            layer_name = descriptor.add_layer(self.ops[layer_index], {}, f'{middle:g}_Layer')
            descriptor.disconnect_layers(from_, to_)
            descriptor.connect_layers(from_, layer_name)
            descriptor.connect_layers(layer_name, to_)
            # adding a layer moves last_layer; point it back at the output layer
            descriptor.last_layer = OUTPUT_LAYER_NAME
        return descriptor

    def evaluate(self, descriptor) -> float:
        try:
            # as listing 3.6 writes it, for both benchmarks (listing 3.7)
            fitness, total_time = self.evaluator.descriptor_evaluate(descriptor)
        except (OutOfSearchSpaceError, NotInTableError) as error:
            self.failures[type(error).__name__] += 1
            return 0.0
        return float(fitness)

    def random_individual(self) -> Individual:
        d = NeuralDescriptor()
        # How many layers this individual will initially have; at least 1
        this_layers = 1 + self.rng.integers(self.max_layers - 1)
        d.add_layer_sequential(self.in_layer, {})
        for _ in range(this_layers + 1):
            layer_index = self.rng.integers(self.available_layers)
            d.add_layer_sequential(self.ops[layer_index], {})
            # Give a 1/7 probability to add a second connection
            if self.rng.uniform() < 1 / 7:
                d = self.add_random_connection(d)
        d.add_layer_sequential(self.out_layer, {}, OUTPUT_LAYER_NAME)
        return Individual(d, self.evaluate(d))

    def run(self, population_size, sample_sz, evolutions):
        population = [self.random_individual() for _ in range(population_size)]
        history = [p.fitness for p in population]
        for generation in range(evolutions):
            # Get the candidate parents and the best of them
            sample = self.rng.choice(len(population), size=sample_sz)
            sample = [population[x] for x in sample]
            parent = sample[int(np.argmax([x.fitness for x in sample]))]
            # Copy the parent's descriptor, mutate and evaluate
            offspring = self.mutate(deepcopy(parent.descriptor))
            population.append(Individual(offspring, self.evaluate(offspring)))
            # Discard the oldest individual
            population.pop(0)
            history.append(population[-1].fitness)
        return history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmark", choices=["nasbench101", "nasbench201"], default="nasbench101")
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--sample", type=int, default=5)
    parser.add_argument("--evolutions", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table", default=None, help="benchmark table (default: via $NORD_DATA)")
    args = parser.parse_args(argv)
    search = ListingEvolution(args.benchmark, args.table, np.random.default_rng(args.seed))
    history = search.run(args.population, args.sample, args.evolutions)
    failures = ", ".join(f"{n} {k}" for k, n in search.failures.items()) or "none"
    print(f"{args.benchmark}: {len(history)} evaluations, best fitness {max(history):.4f}; "
          f"scored 0: {failures}")
    return history, search.failures


if __name__ == "__main__":
    main()
