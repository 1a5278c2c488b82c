"""Optimizers by class or by name, including the seven of thesis chapter 4."""

from __future__ import annotations

import difflib
import math
import numbers
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
_DEVICE_FLAGS = ("fused", "foreach", "capturable", "differentiable")
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
    if params is not None and not (isinstance(params, dict)
                                   and all(isinstance(k, str) for k in params)):
        raise SettingsError(f"optimizer parameters must be a dict of keyword arguments, "
                            f"got {params!r}")
    params = dict(params or {})
    if isinstance(optimizer, str):
        key = _ALIASES.get(optimizer.lower(), optimizer.lower())
        if key not in OPTIMIZERS:
            matches = difflib.get_close_matches(key, list(OPTIMIZERS), n=3)
            hint = f"did you mean {', '.join(repr(m) for m in matches)}? " if matches else ""
            raise SettingsError(f"unknown optimizer {optimizer!r}; {hint}known names: "
                             f"{', '.join(OPTIMIZERS)} (or pass a torch.optim class)")
        cls, defaults = OPTIMIZERS[key]
        return cls, _checked(cls, {**defaults, **params})
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer, _checked(optimizer, params)
    raise SettingsError(f"optimizer must be a torch.optim.Optimizer subclass or a name such "
                        f"as 'adam', got {optimizer!r}")


def _checked(cls: Type[torch.optim.Optimizer], params: Dict[str, Any]) -> Dict[str, Any]:
    """``params``, once the learning rate is a finite number >= 0 and (for torch's own
    optimizers) the class accepts them; else :class:`SettingsError`."""
    if "lr" in params:
        lr = params["lr"]
        if isinstance(lr, torch.Tensor) and lr.numel() == 1:
            lr = lr.item()
        if (isinstance(lr, bool) or not isinstance(lr, numbers.Real)
                or not math.isfinite(lr) or lr < 0):
            raise SettingsError(f"the learning rate must be a finite number >= 0, got "
                                f"lr={params['lr']!r} for {cls.__name__}; give a positive "
                                f"value such as lr=0.001")
    if cls.__module__.startswith("torch.optim"):
        # a CPU tensor stands in for the network: leave the device-bound flags out
        plain = {k: v for k, v in params.items() if k not in _DEVICE_FLAGS}
        try:
            cls([torch.zeros(1, requires_grad=True)], **plain)
        except (TypeError, ValueError) as error:
            raise SettingsError(f"{cls.__name__} does not accept the parameters {params}: "
                                f"{error}; fix or leave out the named parameter") from error
    return params
