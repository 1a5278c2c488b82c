"""Search spaces: ``get_space(name, **settings)``; see :class:`SearchSpace`."""

from __future__ import annotations

from nord.design.spaces.base import SearchSpace
from nord.errors import NordError, SettingsError

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
    import inspect
    try:
        module, cls = SPACES[name].split(":")
    except KeyError:
        raise NordError(f"unknown search space {name!r}; available: {sorted(SPACES)}") from None
    space_class = getattr(importlib.import_module(module), cls)
    parameters = inspect.signature(space_class).parameters
    accepted = [p for p in parameters if p != "self"]
    open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    unknown = [] if open_ended else sorted(set(settings) - set(accepted))
    if unknown:
        flags = ", ".join("--" + key.replace("_", "-") for key in unknown)
        raise SettingsError(f"the {name} space has no {', '.join(unknown)} option ({flags}); "
                            f"it takes: {', '.join(accepted) or 'no options'}")
    return space_class(**settings)
