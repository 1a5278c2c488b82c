"""Optimizers by class or by name, including the seven of thesis chapter 4."""

from __future__ import annotations

import difflib
from typing import Any, Dict, Optional, Tuple, Type, Union

import torch

from nord.errors import SettingsError

__all__ = ["OPTIMIZERS", "resolve_optimizer"]

#: name → (optimizer class, default parameters). Chapter 4 compares these seven.
OPTIMIZERS: Dict[str, Tuple[Type[torch.optim.Optimizer], Dict[str, Any]]] = {
    "adadelta": (torch.optim.Adadelta, {}),
    "adam": (torch.optim.Adam, {}),
    "adamax": (torch.optim.Adamax, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "sgd": (torch.optim.SGD, {"lr": 0.01}),
    "sgd_momentum": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
    "sgd_nesterov": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    "adamw": (torch.optim.AdamW, {}),
}
_ALIASES = {"sgd-m": "sgd_momentum", "sgd-nm": "sgd_nesterov", "sgdm": "sgd_momentum",
            "sgdnm": "sgd_nesterov", "nesterov": "sgd_nesterov"}


def resolve_optimizer(optimizer: Union[str, Type[torch.optim.Optimizer]],
                      params: Optional[Dict[str, Any]] = None
                      ) -> Tuple[Type[torch.optim.Optimizer], Dict[str, Any]]:
    """``(class, parameters)`` for an optimizer class or name.

    Names (case-insensitive): ``adadelta``, ``adam``, ``adamax``, ``rmsprop``,
    ``sgd``, ``sgd_momentum`` (SGD-M), ``sgd_nesterov`` (SGD-NM), ``adamw``.
    A name's defaults are overridden by ``params``.
    """
    params = dict(params or {})
    if isinstance(optimizer, str):
        key = _ALIASES.get(optimizer.lower(), optimizer.lower())
        if key not in OPTIMIZERS:
            matches = difflib.get_close_matches(key, list(OPTIMIZERS), n=3)
            hint = f"did you mean {', '.join(repr(m) for m in matches)}? " if matches else ""
            raise SettingsError(f"unknown optimizer {optimizer!r}; {hint}known names: "
                             f"{', '.join(OPTIMIZERS)} (or pass a torch.optim class)")
        cls, defaults = OPTIMIZERS[key]
        return cls, {**defaults, **params}
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer, params
    raise TypeError(f"optimizer must be a torch.optim.Optimizer subclass or a name, "
                    f"got {optimizer!r}")
