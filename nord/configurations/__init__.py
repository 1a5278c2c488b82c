"""Dataset configurations (thesis §3.2.1 "Data Curators and Configurations").

``Configs`` and ``DatasetConfig`` are loaded on first use (they bring in torch).
"""

from typing import TYPE_CHECKING

from nord import lazy_exports

__all__ = ["Configs", "DatasetConfig"]

__getattr__, __dir__ = lazy_exports(__name__, {".all": ["Configs", "DatasetConfig"]})

if TYPE_CHECKING:
    from nord.configurations.all import Configs, DatasetConfig
