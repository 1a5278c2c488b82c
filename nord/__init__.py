"""NORD: parallel and distributed Neural Architecture Search on PyTorch."""

__version__ = "0.1.0"
