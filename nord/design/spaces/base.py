"""What a search space provides to strategies and to the run loop."""

from __future__ import annotations

import abc
from typing import Any, Optional

import numpy as np

__all__ = ["SearchSpace"]


class SearchSpace(abc.ABC):
    """Architectures a strategy can sample and mutate, and their descriptors.

    An *architecture* is whatever value the space finds convenient (a cell
    string, a descriptor, a genome); strategies treat it as opaque. The run
    loop stores ``encode(architecture)`` (a JSON-ready value) and evaluates
    ``to_descriptor(architecture)``. All randomness comes from the generator
    passed in.
    """

    #: the name ``get_space`` and the command line know the space by
    name: str = ""
    #: spatial dimensions of the data its networks take (2: images), None: any
    input_rank: Optional[int] = None

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> Any:
        """A random architecture."""

    @abc.abstractmethod
    def mutate(self, architecture: Any, rng: np.random.Generator) -> Any:
        """A mutated copy; ``architecture`` itself is left unchanged."""

    @abc.abstractmethod
    def to_descriptor(self, architecture: Any):
        """The :class:`~nord.neural_nets.NeuralDescriptor` to evaluate."""

    def descriptor_from_json(self, text: str):
        """What :meth:`to_descriptor` gave, read back from the ``to_json()`` text a
        run store keeps (a resumed run evaluates it again)."""
        from nord.neural_nets import NeuralDescriptor
        return NeuralDescriptor.from_json(text)

    def encode(self, architecture: Any) -> Any:
        """A JSON-ready value that :meth:`decode` turns back into the architecture."""
        return architecture

    def decode(self, value: Any) -> Any:
        return value

    def identity(self, architecture: Any) -> str:
        """What makes two architectures one evaluation: strategies that never ask
        twice (local search, guided evolution) remember these. By default the
        exact encoding (JSON text); a space whose benchmark stores one entry per
        isomorphism class (NAS-Bench-101) gives that class's key."""
        import json
        return json.dumps(self.encode(architecture), sort_keys=True)

    def to_graph(self, architecture: Any):
        """The :class:`~nord.design.predictors.graphs.ArchitectureGraph` a predictor
        sees (node labels from ``graph_vocabulary``). Spaces with a graph form
        (NAS-Bench-101, NAS-Bench-201, the chapter-6 space) define both; the
        others raise :class:`~nord.errors.GraphDatasetError`."""
        from nord.errors import GraphDatasetError
        raise GraphDatasetError(f"the {self.name or type(self).__name__} space has no graph "
                                f"form for predictors; spaces with one: nasbench101, "
                                f"nasbench201, remnet")

    def describe(self, architecture: Any) -> str:
        """A short human-readable text (reports, logs)."""
        return str(self.encode(architecture))

    def settings(self) -> dict:
        """Constructor arguments, recorded with a run (JSON-ready)."""
        return {}
