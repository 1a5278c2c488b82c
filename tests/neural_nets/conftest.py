"""Fixtures shared by the NAS-Bench-101 test modules."""

import pytest
from nasbench101_cases import data_root_or_skip

from nord.neural_nets.benchmarks.nasbench101 import CSV_NAME


@pytest.fixture(scope="module")
def data_root():
    return data_root_or_skip()


@pytest.fixture(scope="module")
def csv_path(data_root):
    return data_root / "nasbench101" / CSV_NAME
