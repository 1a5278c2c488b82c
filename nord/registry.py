"""Named registries: search spaces, strategies, objectives and executors.

A :class:`Registry` maps a name (what the command line and the settings of a
run use) to a class or factory. Entries may be given as ``"module:attribute"``
strings, imported only when first used, so listing the names (``nord search
--help``) imports nothing heavy. An unknown name raises
:class:`~nord.errors.UnknownNameError` with the closest registered names::

    >>> from nord.registry import Registry
    >>> colours = Registry("colour")
    >>> colours.register("red", "builtins:str")
    'builtins:str'
    >>> colours.names()
    ['red']
    >>> colours["rde"]
    Traceback (most recent call last):
    ...
    nord.errors.UnknownNameError: unknown colour 'rde' (did you mean 'red'?); available: red

Each kind has its own ``register_*`` function beside its registry
(:func:`nord.design.spaces.register_space`,
:func:`nord.design.strategies.register_strategy`,
:func:`nord.execution.objectives.register_objective`,
:func:`nord.execution.executors.register_executor`); what is registered there
appears in ``nord search --help`` and is accepted by ``nord search``.
"""

from __future__ import annotations

import difflib
import importlib
import re
from typing import Any, Dict, Iterator, List, Mapping, Union

from nord.errors import RegistrationError, UnknownNameError

__all__ = ["Registry"]

_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")
_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class Registry(Mapping[str, Any]):
    """Names of one kind of thing (``kind``: "search space", "strategy", ...),
    in the order they were registered.

    ``registry[name]`` is the registered object (importing a ``"module:attr"``
    entry the first time); ``name in registry`` and ``registry.names()`` never
    import anything. ``how_to_add`` ends the unknown-name message (for
    example: "register one with nord.design.spaces.register_space()").
    """

    def __init__(self, kind: str, how_to_add: str = "") -> None:
        self.kind = kind
        self.how_to_add = how_to_add
        self._entries: Dict[str, Union[str, Any]] = {}
        self._summaries: Dict[str, str] = {}

    # ------------------------------------------------------------ registering
    def register(self, name: str, target: Any = None, *, summary: str = "",
                 replace: bool = False) -> Any:
        """Register ``target`` (an object, or a ``"module:attribute"`` string
        imported on first use) as ``name``; without ``target``, a decorator.

        ``summary`` is a one-line description (``--help`` shows it). Registering
        a taken name raises :class:`~nord.errors.RegistrationError` unless
        ``replace=True``.
        """
        if target is None:
            def decorator(obj: Any) -> Any:
                self.register(name, obj, summary=summary, replace=replace)
                return obj
            return decorator
        if not isinstance(name, str) or not _NAME.match(name):
            raise RegistrationError(f"{self.kind} name {name!r} must be lower-case letters, "
                                    f"digits, '_' or '-', starting with a letter (it is typed "
                                    f"on the command line)")
        if isinstance(target, str) and not _REFERENCE.match(target):
            raise RegistrationError(f"{self.kind} {name!r}: {target!r} is not a "
                                    f"'package.module:attribute' reference")
        taken = self._entries.get(name)
        if taken is not None and not replace and taken is not target and taken != target:
            raise RegistrationError(f"a {self.kind} named {name!r} is already registered "
                                    f"({_label(taken)}); pass replace=True to replace it, or "
                                    f"choose another name")
        self._entries[name] = target
        self._summaries[name] = summary or (self._summaries.get(name, "") if replace else "")
        return target

    def unregister(self, name: str) -> None:
        """Remove ``name`` (an unknown name raises :class:`~nord.errors.UnknownNameError`)."""
        if name not in self._entries:
            raise self.unknown(name)
        del self._entries[name]
        self._summaries.pop(name, None)

    # ---------------------------------------------------------------- reading
    def __getitem__(self, name: str) -> Any:
        try:
            entry = self._entries[name]
        except (KeyError, TypeError):
            raise self.unknown(name) from None
        if isinstance(entry, str):
            entry = self._import(name, entry)
            self._entries[name] = entry
        return entry

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def names(self) -> List[str]:
        """The registered names, in registration order (imports nothing)."""
        return list(self._entries)

    def summary(self, name: str) -> str:
        """The one-line description ``name`` was registered with ('' if none)."""
        if name not in self._entries:
            raise self.unknown(name)
        return self._summaries.get(name, "")

    def reference(self, name: str) -> str:
        """Where ``name`` lives, as ``"module:attribute"`` (imports nothing)."""
        if name not in self._entries:
            raise self.unknown(name)
        return _label(self._entries[name])

    def unknown(self, name: Any) -> UnknownNameError:
        """The error for an unregistered ``name``: the closest names, then all of them."""
        matches = difflib.get_close_matches(str(name), self.names(), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""
        available = ", ".join(self.names()) or "none registered"
        tail = f"; {self.how_to_add}" if self.how_to_add else ""
        return UnknownNameError(f"unknown {self.kind} {name!r}{hint}; available: "
                                f"{available}{tail}", name=name, choices=self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"

    # -------------------------------------------------------------- internals
    def _import(self, name: str, reference: str) -> Any:
        module_name, _, attribute = reference.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise RegistrationError(f"the {self.kind} {name!r} is registered as {reference}, "
                                    f"but {module_name} cannot be imported ({error})") from error
        try:
            return getattr(module, attribute)
        except AttributeError:
            raise RegistrationError(f"the {self.kind} {name!r} is registered as {reference}, "
                                    f"but {module_name} has no {attribute}") from None


def _label(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    module = getattr(entry, "__module__", None) or type(entry).__module__
    qualified = getattr(entry, "__qualname__", None) or type(entry).__qualname__
    return f"{module}:{qualified}"
