"""Activity recognition windows on generated files in the official CSV format."""

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import nord.data_curators.activity_recognition as activity
from nord.data_curators.activity_recognition import (
    load_activity_recognition,
    participant_windows,
    read_participant_csv,
)
from nord.errors import DamagedDataError, DataNotFoundError

NESTED = "Activity Recognition from Single Chest-Mounted Accelerometer"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    for name in ("NORD_ALLOW_DOWNLOAD", "NORD_DATA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NORD_CACHE", str(tmp_path / "user-cache"))


def _write(folder: Path, participant: int, xyz, labels) -> Path:
    """One participant file, rows ``sequential_number,x,y,z,label``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{participant}.csv"
    lines = [f"{i},{x:g},{y:g},{z:g},{label}"
             for i, ((x, y, z), label) in enumerate(zip(xyz, labels))]
    path.write_text("\n".join(lines) + "\n")
    return path


def _recording(participant: int, labels):
    """x = row number, y = participant, z = a pseudo-random signal."""
    rows = len(labels)
    z = np.random.default_rng(participant).integers(1500, 2500, rows)
    return np.stack([np.arange(rows), np.full(rows, participant), z], axis=1), list(labels)


def _labels(participant: int):
    """Unlabelled start, then blocks of three activities of uneven length."""
    first, second, third = participant % 7 + 1, (participant + 3) % 7 + 1, 7
    return ([0] * 17 + [first] * (60 + participant) + [0] * 5 + [second] * 90
            + [third] * (41 + 2 * participant))


@pytest.fixture
def dataset(tmp_path):
    """Participants 1, 2, 3, 9 and 10 (so numeric order differs from text order)."""
    folder = tmp_path / "activity"
    recordings = {}
    for participant in (1, 2, 3, 9, 10):
        xyz, labels = _recording(participant, _labels(participant))
        _write(folder, participant, xyz, labels)
        recordings[participant] = (xyz, labels)
    return folder, recordings


def _reference_windows(xyz, labels, window, step, differentiate):
    """A plain loop over every window position (independent of the library code)."""
    xyz, labels = np.asarray(xyz, float), list(labels)
    if differentiate:
        xyz, labels = xyz[1:] - xyz[:-1], labels[1:]
    out, out_labels = [], []
    for start in range(0, len(labels) - window + 1, step):
        chunk = labels[start:start + window]
        if len(set(chunk)) == 1 and chunk[0] != 0:
            out.append(xyz[start:start + window].T)
            out_labels.append(chunk[0] - 1)
    return np.array(out).reshape(-1, 3, window), out_labels


def test_hand_computed_windows_without_differencing():
    t = np.arange(10)
    signals = np.stack([t, 10 + t, 100 + t], axis=1).astype(float)
    labels = np.array([0, 1, 1, 1, 1, 1, 2, 2, 2, 2])
    windows, window_labels = participant_windows(signals, labels, window=3, step=2,
                                                 differentiate=False)
    # Starts 0, 2, 4, 6: [0,1,1] and [1,1,2] mix labels, [1,1,1] and [2,2,2] do not.
    assert windows.tolist() == [[[2, 3, 4], [12, 13, 14], [102, 103, 104]],
                                [[6, 7, 8], [16, 17, 18], [106, 107, 108]]]
    assert window_labels.tolist() == [0, 1]


def test_hand_computed_windows_with_differencing():
    t = np.arange(12)
    signals = np.stack([t ** 2, 2 * t, np.full(12, 5)], axis=1).astype(float)
    labels = np.array([1] * 6 + [3] * 6)
    windows, window_labels = participant_windows(signals, labels, window=4, step=3)
    # Differences: x 1, 3, 5, ..., 21; y 2; z 0; labels [1]*5 + [3]*6; starts 0, 3, 6.
    assert windows.tolist() == [[[1, 3, 5, 7], [2, 2, 2, 2], [0, 0, 0, 0]],
                                [[13, 15, 17, 19], [2, 2, 2, 2], [0, 0, 0, 0]]]
    assert window_labels.tolist() == [0, 2]


def test_too_short_recording_gives_no_windows():
    windows, labels = participant_windows(np.zeros((5, 3)), np.ones(5, dtype=np.int64),
                                          window=6, step=1, differentiate=False)
    assert windows.shape == (0, 3, 6) and labels.shape == (0,)


def test_files_are_read_exactly(dataset):
    folder, recordings = dataset
    signals, labels = read_participant_csv(folder / "9.csv")
    assert signals.tolist() == recordings[9][0].tolist()
    assert labels.tolist() == recordings[9][1] and labels.dtype == np.int64


@pytest.mark.parametrize("differentiate", [False, True])
def test_windows_match_a_reference_loop(dataset, differentiate):
    folder, recordings = dataset
    train, train_labels = load_activity_recognition(
        "train", folder, window=20, step=7, differentiate=differentiate,
        test_participants=2, normalize=False)
    expected = [_reference_windows(*recordings[p], 20, 7, differentiate) for p in (1, 2, 3)]
    assert train.dtype == torch.float32 and train_labels.dtype == torch.int64
    assert train.shape == (sum(len(e[1]) for e in expected), 3, 20)
    assert np.array_equal(train.numpy(), np.concatenate([e[0] for e in expected]))
    assert train_labels.tolist() == sum((e[1] for e in expected), [])


def test_participant_split_is_numeric_and_no_window_mixes_labels(dataset):
    folder, recordings = dataset
    train, train_labels = load_activity_recognition(
        "train", folder, window=16, step=5, differentiate=False, test_participants=2,
        normalize=False)
    test, test_labels = load_activity_recognition(
        "test", folder, window=16, step=5, differentiate=False, test_participants=2,
        normalize=False)
    # Channel y holds the participant number: 9 and 10 are the highest-numbered.
    assert sorted(set(train[:, 1].flatten().tolist())) == [1, 2, 3]
    assert sorted(set(test[:, 1].flatten().tolist())) == [9, 10]
    for windows, labels in ((train, train_labels), (test, test_labels)):
        for window, label in zip(windows, labels):
            participant = int(window[1, 0])
            rows = window[0].long()  # channel x holds the row number
            assert torch.equal(rows, torch.arange(rows[0], rows[0] + 16))
            assert rows[0] % 5 == 0
            row_labels = {recordings[participant][1][r] for r in rows.tolist()}
            assert row_labels == {label.item() + 1}
    assert set(train_labels.tolist()) | set(test_labels.tolist()) <= set(range(7))


def test_labels_one_to_seven_map_to_zero_to_six(tmp_path):
    labels = [label for label in range(1, 8) for _ in range(10)] + [0] * 10
    xyz = np.zeros((len(labels), 3))
    for participant in (1, 2):
        _write(tmp_path, participant, xyz, labels)
    _, window_labels = load_activity_recognition(
        "train", tmp_path, window=10, step=10, differentiate=False, test_participants=1,
        normalize=False)
    assert window_labels.tolist() == [0, 1, 2, 3, 4, 5, 6]


def test_standardization_uses_training_statistics_only(dataset):
    folder, _ = dataset
    kwargs = dict(window=26, step=13, test_participants=2, differentiate=False)
    raw_train, _ = load_activity_recognition("train", folder, normalize=False, **kwargs)
    raw_test, _ = load_activity_recognition("test", folder, normalize=False, **kwargs)
    train, _ = load_activity_recognition("train", folder, **kwargs)
    test, _ = load_activity_recognition("test", folder, **kwargs)
    mean = raw_train.double().mean(dim=(0, 2), keepdim=True)
    std = raw_train.double().std(dim=(0, 2), keepdim=True, correction=0)
    assert torch.allclose(train.double(), (raw_train.double() - mean) / std, atol=1e-5)
    assert torch.allclose(test.double(), (raw_test.double() - mean) / std, atol=1e-5)
    standardized = train.double()
    assert torch.allclose(standardized.mean(dim=(0, 2)), torch.zeros(3, dtype=torch.float64),
                          atol=1e-5)
    assert torch.allclose(standardized.std(dim=(0, 2), correction=0),
                          torch.ones(3, dtype=torch.float64), atol=1e-5)
    # The test participants have other statistics, so their windows are not centred.
    assert test[:, 1].mean().abs() > 1


def test_constant_channel_does_not_divide_by_zero(tmp_path):
    for participant in (1, 2):
        _write(tmp_path, participant, np.ones((40, 3)), [1] * 40)
    windows, _ = load_activity_recognition("train", tmp_path, window=10, step=10,
                                           test_participants=1)
    assert windows.shape == (3, 3, 10) and torch.equal(windows, torch.zeros(3, 3, 10))


@pytest.mark.parametrize("text,where", [
    ("0,1,2,3,1\n1,1,2,3,1\n2,1,2,3\n", r"line 3 has 4 columns, expected 5"),
    ("0,1,2,3,1\n1,1,abc,3,1\n", r"line 2 has a non-numeric value 'abc'"),
    ("0,1,2,3,1\n\n2,1,2,3,1,7\n", r"line 3 has 6 columns, expected 5"),
    ("0,1,2,3,1\n1,1,2,3,8\n", r"line 2 has label '8', expected an integer 0..7"),
    ("0,1,2,3,1.5\n", r"line 1 has label '1.5'"),
])
def test_malformed_csv_names_file_and_line(tmp_path, text, where):
    _write(tmp_path, 1, np.zeros((60, 3)), [1] * 60)
    (tmp_path / "2.csv").write_text(text)
    with pytest.raises(DataNotFoundError, match=where) as caught:
        load_activity_recognition("test", tmp_path, test_participants=1)
    assert str(tmp_path / "2.csv") in str(caught.value)


def test_found_through_nord_data_and_in_a_nested_folder(dataset, monkeypatch, tmp_path):
    folder, _ = dataset
    data = tmp_path / "data" / "activity_recognition"
    data.mkdir(parents=True)
    folder.rename(data / NESTED)
    monkeypatch.setenv("NORD_DATA", str(tmp_path / "data"))
    windows, _ = load_activity_recognition("test", window=20, step=10)
    assert windows.shape[1:] == (3, 20) and len(windows) > 0


def test_missing_data_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NORD_DATA", str(tmp_path / "data"))
    with pytest.raises(DataNotFoundError) as caught:
        load_activity_recognition()
    message = str(caught.value)
    for needed in (str(tmp_path / "data" / "activity_recognition"),
                   str(tmp_path / "user-cache" / "activity_recognition"),
                   activity.ACTIVITY_RECOGNITION_URL, "NORD_ALLOW_DOWNLOAD=1", "root="):
        assert needed in message
    with pytest.raises(DataNotFoundError, match="no <participant>.csv files in"):
        load_activity_recognition(root=tmp_path)


def test_official_zip_is_downloaded_and_extracted_when_allowed(dataset, tmp_path,
                                                               monkeypatch):
    folder, recordings = dataset
    bundle = tmp_path / "server" / "activity.zip"
    bundle.parent.mkdir()
    with zipfile.ZipFile(bundle, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"{NESTED}/{path.name}")
        archive.writestr(f"{NESTED}/README", "about the data")
    monkeypatch.setattr(activity, "ACTIVITY_RECOGNITION_URL", bundle.as_uri())
    windows, labels = load_activity_recognition("test", window=20, step=7,
                                                test_participants=2, normalize=False,
                                                allow_download=True)
    expected = [_reference_windows(*recordings[p], 20, 7, True) for p in (9, 10)]
    assert np.array_equal(windows.numpy(), np.concatenate([e[0] for e in expected]))
    extracted = tmp_path / "user-cache" / "activity_recognition" / NESTED
    assert sorted(p.name for p in extracted.iterdir()) == [
        "1.csv", "10.csv", "2.csv", "3.csv", "9.csv", "README"]
    bundle.unlink()  # found in the cache from now on
    again, _ = load_activity_recognition("test", window=20, step=7, test_participants=2,
                                         normalize=False)
    assert torch.equal(again, windows)


@pytest.mark.parametrize("kwargs,match", [
    (dict(split="valid"), "split must be 'train' or 'test'"),
    (dict(test_participants=5), r"test_participants must be an int in 0..4"),
    (dict(test_participants=-1), r"test_participants must be an int in 0..4"),
    (dict(window=0), "window must be a positive int"),
    (dict(step=2.5), "step must be a positive int"),
])
def test_bad_arguments_are_value_errors(dataset, kwargs, match):
    folder, _ = dataset
    with pytest.raises(ValueError, match=match):
        load_activity_recognition(root=folder, **kwargs)


def test_an_image_handed_as_a_participant_file_fails_at_load(tmp_path):
    _write(tmp_path, 1, np.zeros((60, 3)), [1] * 60)
    (tmp_path / "2.csv").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200))
    with pytest.raises(DamagedDataError) as caught:
        load_activity_recognition("test", tmp_path, test_participants=1)
    assert str(caught.value) == (f"{tmp_path / '2.csv'} is a JPEG image, not a participant CSV "
                                 f"file (rows sequential_number,x,y,z,label); replace it with "
                                 f"the official file")
