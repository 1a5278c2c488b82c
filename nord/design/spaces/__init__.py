"""Search spaces: ``get_space(name, **settings)``; see :class:`SearchSpace`."""

from __future__ import annotations

from nord.design.spaces.base import SearchSpace
from nord.errors import NordError

__all__ = ["SearchSpace", "get_space", "SPACES"]

#: space name -> "module:class", imported on demand
SPACES = {
    "nasbench101": "nord.design.spaces.nasbench101:NASBench101Space",
    "nasbench201": "nord.design.spaces.nasbench201:NASBench201Space",
    "remnet": "nord.design.spaces.remnet:RemNetSpace",
    "deepneat": "nord.design.spaces.deepneat:DeepNEATSpace",
}


def get_space(name: str, **settings) -> SearchSpace:
    """The search space registered as ``name``, built with ``settings``."""
    import importlib
    try:
        module, cls = SPACES[name].split(":")
    except KeyError:
        raise NordError(f"unknown search space {name!r}; available: {sorted(SPACES)}") from None
    return getattr(importlib.import_module(module), cls)(**settings)
