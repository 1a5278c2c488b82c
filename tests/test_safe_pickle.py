"""Run state loads back as plain data, and nothing that could run code loads at all."""

import os
import pickle
import warnings

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


# --- one deserializer for every pickle NORD reads -----------------------------------

class Mkdir:
    """Unpickled by plain pickle, this creates ``target``: the proof that code ran."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def small_agent(episodes=6):
    from nord.design.spaces.nasbench101 import NASBench101Space
    from nord.design.strategies.reinforcement import DQNAgent
    agent = DQNAgent(NASBench101Space(), rng=5, memory_size=50)
    for _ in range(episodes):
        candidate = agent.ask()
        agent.tell(candidate.id, 0.5)
    return agent


def load_run_state(tmp_path, payload):
    import sqlite3

    from nord.execution.store import RunStore
    path = tmp_path / "run.sqlite"
    RunStore(path).close()
    db = sqlite3.connect(str(path))
    db.execute("INSERT INTO strategy_state (id, saved_at, state) VALUES (1, 0, ?)",
               (pickle.dumps({"population": [payload]}),))
    db.commit()
    db.close()
    with RunStore(path, create=False) as store:
        store.load_state()


def read_cifar_batch(tmp_path, payload):
    from nord.data_curators.cifar10 import read_cifar10_batch
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": payload, b"labels": []}, 2))
    read_cifar10_batch(tmp_path / "test_batch")


def load_rl_networks(tmp_path, payload):
    import io

    import torch
    agent = small_agent(2)
    state = agent.state_dict()
    buffer = io.BytesIO()
    torch.save({"policy": payload}, buffer)  # torch.save pickles the payload like any object
    state["networks"] = buffer.getvalue()
    agent.load_state_dict(state)


def load_rl_memory(tmp_path, payload):
    agent = small_agent(2)
    state = agent.state_dict()
    state["memory"] = pickle.dumps({"state": payload})  # how an older version held it
    agent.load_state_dict(state)


@pytest.mark.parametrize("entry_point, error", [
    (load_run_state, "StoreError"), (read_cifar_batch, "DamagedDataError"),
    (load_rl_networks, "UnsafePickleError"), (load_rl_memory, "UnsafePickleError")])
def test_a_code_carrying_pickle_is_refused_by_every_reader(tmp_path, entry_point, error):
    import nord.errors
    target = tmp_path / "pwned"
    with pytest.raises(getattr(nord.errors, error)) as refused:
        entry_point(tmp_path, Mkdir(target))
    chain = [refused.value, refused.value.__cause__]
    unsafe = [error for error in chain if isinstance(error, safe_pickle.UnsafePickleError)]
    assert unsafe and "refusing to load posix.mkdir" in str(unsafe[0])
    assert not target.exists()


def test_unsafe_pickle_errors_are_nord_errors_and_unpickling_errors():
    from nord.errors import NordError
    assert issubclass(safe_pickle.UnsafePickleError, NordError)
    assert issubclass(safe_pickle.UnsafePickleError, pickle.UnpicklingError)
    assert issubclass(safe_pickle.DamagedPickleError, NordError)


def test_a_torch_archive_reads_as_torch_load_reads_it_with_arrays_for_tensors():
    import io

    import torch
    networks = small_agent().state_dict()["networks"]
    buffer = io.BytesIO()
    base = torch.arange(24, dtype=torch.float64).reshape(4, 6)
    torch.save({"transposed": base.t(), "view": base[1:, 2:4], "empty": torch.empty(0, 3),
                "flags": torch.tensor([True, False]), "scalar": torch.tensor(7),
                "half": torch.ones(3, dtype=torch.float16), "plain": [1, (2.5, None), "x"]},
               buffer)
    for data in (networks, buffer.getvalue()):
        assert_same(safe_pickle.load_torch(data), torch.load(io.BytesIO(data), weights_only=True))


def assert_same(ours, reference):
    """``ours`` (numpy arrays) holds what ``reference`` (tensors) holds, of the same types."""
    import torch
    if isinstance(reference, torch.Tensor):
        assert isinstance(ours, np.ndarray) and ours.flags.writeable
        assert ours.dtype == reference.numpy().dtype and ours.shape == tuple(reference.shape)
        assert np.array_equal(ours, reference.numpy())
    elif isinstance(reference, dict):
        assert type(ours) is type(reference) and list(ours) == list(reference)
        for key in reference:
            assert_same(ours[key], reference[key])
    elif isinstance(reference, (list, tuple)):
        assert type(ours) is type(reference) and len(ours) == len(reference)
        for mine, theirs in zip(ours, reference):
            assert_same(mine, theirs)
    else:
        assert type(ours) is type(reference) and ours == reference


def handmade_archive(size, stride, offset=0, numel=4, stored=None):
    """A torch.save archive of one float32 tensor over a storage of ``numel`` elements
    (of which the archive holds ``stored``: all unless told)."""
    import collections
    import io
    import zipfile

    import torch

    storage = object()

    class Tensor:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2,
                    (storage, offset, size, stride, False, collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if obj is storage:
                return ("storage", torch.FloatStorage, "0", "cpu", numel)
            return None

    data = io.BytesIO()
    Pickler(data, protocol=2).dump({"t": Tensor()})
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        writer.writestr("archive/data.pkl", data.getvalue())
        writer.writestr("archive/byteorder", "little")
        writer.writestr("archive/data/0", np.arange(numel if stored is None else stored,
                                                    dtype=np.float32).tobytes())
    return archive.getvalue()


def test_a_tensor_reaching_outside_its_storage_is_refused():
    loaded = safe_pickle.load_torch(handmade_archive((2, 2), (1, 2)))
    assert loaded["t"].tolist() == [[0.0, 2.0], [1.0, 3.0]]
    for size, stride, offset in [((5,), (1,), 0), ((2,), (1,), 3), ((2, 2), (3, 1), 0),
                                 ((2,), (-1,), 1)]:
        with pytest.raises(safe_pickle.UnsafePickleError, match="refusing a tensor"):
            safe_pickle.load_torch(handmade_archive(size, stride, offset))


def test_a_damaged_torch_archive_is_a_damaged_pickle_error():
    with pytest.raises(safe_pickle.DamagedPickleError, match="not a torch.save archive"):
        safe_pickle.load_torch(b"not a zip file")
    with pytest.raises(safe_pickle.DamagedPickleError, match="holds 16 bytes, not the 8 "
                                                             "float32 elements"):
        safe_pickle.load_torch(handmade_archive((4,), (1,), numel=8, stored=4))


def test_a_cifar_style_pickle_of_numpy_1_loads_without_a_warning_and_only_as_such():
    data = pickle.dumps({b"data": np.arange(6, dtype=np.uint8).reshape(2, 3)}, protocol=2)
    numpy_1 = data.replace(b"numpy._core.", b"numpy.core.")  # the names numpy 1 wrote
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy 2 warns when numpy.core is imported
        loaded = safe_pickle.loads(numpy_1, allow=safe_pickle.NUMPY_ARRAYS, encoding="bytes")
    assert loaded[b"data"].tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(safe_pickle.UnsafePickleError, match="refusing to load _codecs.encode: "
                                                            "run state holds plain data only"):
        safe_pickle.loads(numpy_1)  # protocol-2 bytes are no part of run state
