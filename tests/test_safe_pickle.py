"""Run state loads back as plain data, and nothing that could run code loads at all."""

import os
import pickle

import numpy as np
import pytest

from nord import safe_pickle


def test_plain_data_and_numpy_arrays_round_trip():
    state = {"population": [(1, "a", 0.5), (2, "b", None)], "flags": {True, False},
             "rng": np.random.default_rng(3).bit_generator.state, "blob": b"\x00\x01",
             "memory": np.arange(12, dtype=np.float32).reshape(3, 4),
             "actions": np.array([1, 2], dtype=np.int64), "scalar": np.float64(2.5)}
    loaded = safe_pickle.loads(safe_pickle.dumps(state))
    assert loaded["population"] == state["population"] and loaded["flags"] == {True, False}
    assert loaded["rng"] == state["rng"] and loaded["blob"] == b"\x00\x01"
    assert np.array_equal(loaded["memory"], state["memory"])
    assert loaded["memory"].dtype == np.float32 and loaded["scalar"] == 2.5


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_data_that_names_a_function_is_refused_not_run():
    with pytest.raises(safe_pickle.UnsafePickleError, match="refusing to load .*system"):
        safe_pickle.loads(pickle.dumps({"state": Exploit()}))


def test_a_run_store_with_a_code_carrying_state_is_a_clear_error(tmp_path):
    import sqlite3

    from nord.execution.store import RunStore, StoreError
    RunStore(tmp_path / "run.sqlite").close()
    db = sqlite3.connect(str(tmp_path / "run.sqlite"))
    db.execute("INSERT INTO strategy_state VALUES (1, 0, ?)", (pickle.dumps(Exploit()),))
    db.commit()
    db.close()
    with RunStore(tmp_path / "run.sqlite", create=False) as store:
        with pytest.raises(StoreError, match="UnsafePickleError"):
            store.load_state()
