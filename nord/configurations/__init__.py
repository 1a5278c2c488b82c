"""Dataset configurations (thesis §3.2.1 "Data Curators and Configurations")."""

from nord.configurations.all import Configs, DatasetConfig

__all__ = ["Configs", "DatasetConfig"]
