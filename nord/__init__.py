"""NORD: parallel and distributed Neural Architecture Search on PyTorch.

Package faces (``nord.neural_nets``, ``nord.data_curators``, ...) load their
public names on first use (:func:`lazy_exports`), so importing a light module
such as :mod:`nord.neural_nets.neural_descriptor` does not pay for torch.
"""

import importlib
import sys
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

__version__ = "0.1.0"


def lazy_exports(package: str, sources: Mapping[str, Sequence[str]]
                 ) -> Tuple[Callable[[str], object], Callable[[], List[str]]]:
    """PEP 562 ``__getattr__`` and ``__dir__`` for a package face.

    ``sources`` maps a module (absolute, or relative to ``package`` when it
    starts with a dot) to the public names it provides; a name is imported
    from its module the first time it is used and then kept in the package's
    namespace. Usage, in a package's ``__init__.py``::

        __getattr__, __dir__ = lazy_exports(__name__, {".neural_builder": ["NeuralNet"]})

    An unknown attribute raises :class:`AttributeError` naming the package
    (with close matches), as a plain module would.
    """
    homes: Dict[str, str] = {name: module for module, names in sources.items() for name in names}

    def __getattr__(name: str) -> object:
        module = homes.get(name)
        if module is None:
            import difflib
            matches = difflib.get_close_matches(name, homes, n=3)
            hint = f"; did you mean {', '.join(map(repr, matches))}?" if matches else ""
            raise AttributeError(f"module {package!r} has no attribute {name!r}{hint}",
                                 name=name, obj=sys.modules.get(package))
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> List[str]:
        return sorted(set(vars(sys.modules[package])) | set(homes))

    return __getattr__, __dir__
