"""UCI "Activity Recognition from Single Chest-Mounted Accelerometer", as windows.

The data set is a folder of ``<participant>.csv`` files (participants 1..15),
each row ``sequential_number,x,y,z,label`` sampled at 52 Hz, labels 1..7 (rows
labelled 0 are unlabelled). :func:`load_activity_recognition` cuts each
participant's recording into fixed-length windows of one activity:

1. optionally first-difference x, y, z (``d[t] = s[t+1] - s[t]``, labelled like
   ``s[t+1]``; the first row is dropped);
2. cut windows of ``window`` consecutive samples every ``step`` samples, starting
   at the first sample, and keep only those whose samples all carry the same
   non-zero label, so unlabelled rows never reach a window;
3. the label of a window is its activity minus one (0..6);
4. standardize each channel with the mean and standard deviation of the
   training windows (never of the test participants).

The test split is the ``test_participants`` highest-numbered participants.

Where the files are looked for, in order: an explicit ``root``;
``$NORD_DATA/activity_recognition``; the user cache
(``cache_dir()/activity_recognition``), where the official zip is downloaded and
extracted when downloads are allowed.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from nord.data_curators.download import cache_dir, downloads_allowed, fetch, safe_extract_zip
from nord.data_curators.fashion_mnist import sniff_format
from nord.errors import DamagedDataError, DataNotFoundError, SettingsError

__all__ = ["ACTIVITY_RECOGNITION_CLASSES", "ACTIVITY_RECOGNITION_URL",
           "read_participant_csv", "find_activity_recognition", "participant_windows",
           "load_activity_recognition"]

logger = logging.getLogger(__name__)

ACTIVITY_RECOGNITION_CLASSES = (
    "Working at Computer", "Standing Up, Walking and Going up/down stairs", "Standing",
    "Walking", "Going Up/Down Stairs", "Walking and Talking with Someone",
    "Talking while Standing")
ACTIVITY_RECOGNITION_URL = (
    "https://archive.ics.uci.edu/ml/machine-learning-databases/00287/"
    "Activity%20Recognition%20from%20Single%20Chest-Mounted%20Accelerometer.zip")
_ZIP_NAME = "Activity Recognition from Single Chest-Mounted Accelerometer.zip"
_NESTED_DIR = "Activity Recognition from Single Chest-Mounted Accelerometer"
_COLUMNS = 5
_SPLITS = ("train", "test")


def _label_is_valid(value: float) -> bool:
    return value == int(value) and 0 <= value <= 7


def _first_bad_line(path: Path) -> str:
    """Describe the first malformed line of a CSV file (slow; error path only)."""
    with open(path, "r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = [field.strip() for field in line.split(",")]
            if len(fields) != _COLUMNS:
                return f"line {number} has {len(fields)} columns, expected {_COLUMNS}"
            for field in fields:
                try:
                    float(field)
                except ValueError:
                    return f"line {number} has a non-numeric value {field!r}"
            if not _label_is_valid(float(fields[-1])):
                return f"line {number} has label {fields[-1]!r}, expected an integer 0..7"
    return "unreadable contents"


def _malformed(path: Path) -> DamagedDataError:
    return DamagedDataError(
        f"{path} is malformed: {_first_bad_line(path)} (rows must be "
        f"sequential_number,x,y,z,label); replace it with the official file")


def read_participant_csv(path: os.PathLike) -> Tuple[np.ndarray, np.ndarray]:
    """Signals ``(T, 3)`` float64 (x, y, z) and labels ``(T,)`` int64 (0..7) of one file."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            kind = sniff_format(handle.read(16))
    except OSError as error:
        raise DataNotFoundError(f"{path} could not be read ({error}); check the path and "
                                f"its permissions") from error
    if kind:
        raise DamagedDataError(f"{path} is {kind}, not a participant CSV file (rows "
                               f"sequential_number,x,y,z,label); replace it with the "
                               f"official file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            table = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise _malformed(path) from error
    if table.size == 0:
        return np.zeros((0, 3)), np.zeros((0,), dtype=np.int64)
    labels = table[:, -1]
    if table.shape[1] != _COLUMNS or not np.all((labels == np.round(labels))
                                                & (labels >= 0) & (labels <= 7)):
        raise _malformed(path)
    return table[:, 1:4].copy(), labels.astype(np.int64)


def _participant_files(directory: Path) -> Dict[int, Path]:
    """``{participant number: csv path}`` for files named ``<integer>.csv``."""
    files = {}
    if directory.is_dir():
        for entry in directory.iterdir():
            if entry.suffix.lower() == ".csv" and entry.stem.isdigit() and entry.is_file():
                files[int(entry.stem)] = entry
    return dict(sorted(files.items()))


def _detect(path: Path) -> Optional[Path]:
    for folder in (path, path / _NESTED_DIR):
        if _participant_files(folder):
            return folder
    return None


def find_activity_recognition(root: Optional[os.PathLike] = None, *,
                              allow_download: Optional[bool] = None) -> Path:
    """The folder holding the participant CSV files (see module docs)."""
    if root is not None:
        found = _detect(Path(root))
        if found is None:
            raise DataNotFoundError(f"no <participant>.csv files in {root} (nor in its "
                                    f"'{_NESTED_DIR}' subfolder)")
        return found
    looked = []
    cached = cache_dir() / "activity_recognition"
    candidates = [cached]
    if os.environ.get("NORD_DATA"):
        candidates.insert(0, Path(os.environ["NORD_DATA"]) / "activity_recognition")
    for candidate in candidates:
        looked.append(str(candidate))
        found = _detect(candidate)
        if found is not None:
            return found
    archive = cached / _ZIP_NAME
    if not downloads_allowed(allow_download) and not archive.is_file():
        raise DataNotFoundError(
            f"the activity recognition data set was not found (looked in: "
            f"{', '.join(looked)}). Set NORD_ALLOW_DOWNLOAD=1 (or pass "
            f"allow_download=True) to download {ACTIVITY_RECOGNITION_URL} into "
            f"{cached}; or unzip it by hand into $NORD_DATA/activity_recognition "
            f"or pass root= the folder holding 1.csv .. 15.csv")
    fetch(ACTIVITY_RECOGNITION_URL, archive, allow_download=allow_download,
          looked_in=looked)
    safe_extract_zip(archive, cached)
    found = _detect(cached)
    if found is None:
        raise DataNotFoundError(f"{archive} holds no <participant>.csv files; delete it "
                                f"and download it again from {ACTIVITY_RECOGNITION_URL}")
    return found


def participant_windows(signals: np.ndarray, labels: np.ndarray, window: int = 52,
                        step: int = 26, differentiate: bool = True
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """Single-activity windows ``(N, 3, window)`` and labels ``(N,)`` (0..6) of one recording.

    See steps 1-3 of the module docs.
    """
    if differentiate:
        signals, labels = np.diff(signals, axis=0), labels[1:]
    count = len(labels) - window + 1
    if count <= 0:
        return np.zeros((0, 3, window)), np.zeros((0,), dtype=np.int64)
    starts = np.arange(0, count, step)
    # A window holds one label when no label changes inside it.
    changes = np.concatenate([[0], np.cumsum(labels[1:] != labels[:-1])])
    uniform = changes[starts + window - 1] == changes[starts]
    starts = starts[uniform & (labels[starts] != 0)]
    index = starts[:, None] + np.arange(window)[None, :]
    return signals[index].transpose(0, 2, 1), labels[starts] - 1


def _check_arguments(split, window, step):
    if split not in _SPLITS:
        raise SettingsError(f"split must be 'train' or 'test', got {split!r}")
    if not isinstance(window, int) or window < 1:
        raise SettingsError(f"window must be a positive int, got {window!r}")
    if not isinstance(step, int) or step < 1:
        raise SettingsError(f"step must be a positive int, got {step!r}")


def _check_test_participants(test_participants, participants):
    if not isinstance(test_participants, int) or not 0 <= test_participants < participants:
        raise SettingsError(f"test_participants must be an int in 0..{participants - 1} "
                            f"(there are {participants} participants), got "
                            f"{test_participants!r}")


def _windows_of(files: Sequence[Path], window, step, differentiate):
    images: List[np.ndarray] = [np.zeros((0, 3, window))]
    labels: List[np.ndarray] = [np.zeros((0,), dtype=np.int64)]
    for path in files:
        signals, raw_labels = read_participant_csv(path)
        windows, window_labels = participant_windows(signals, raw_labels, window, step,
                                                     differentiate)
        images.append(windows)
        labels.append(window_labels)
    return np.concatenate(images), np.concatenate(labels)


def load_activity_recognition(split: str = "train", root: Optional[os.PathLike] = None,
                              window: int = 52, step: int = 26,
                              differentiate: bool = True, test_participants: int = 4,
                              normalize: bool = True, *,
                              allow_download: Optional[bool] = None
                              ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Windows ``(N, 3, window)`` float32 (x, y, z) and labels ``(N,)`` int64 (0..6).

    ``normalize`` standardizes each channel with the training windows' statistics.

    Example::

        x, y = load_activity_recognition("test", root="data/activity")
    """
    _check_arguments(split, window, step)
    directory = find_activity_recognition(root, allow_download=allow_download)
    files = list(_participant_files(directory).values())
    _check_test_participants(test_participants, len(files))
    cut = len(files) - test_participants
    train_files, test_files = files[:cut], files[cut:]
    logger.debug("activity recognition: train %s, test %s",
                 [p.stem for p in train_files], [p.stem for p in test_files])
    windows, labels = _windows_of(train_files if split == "train" else test_files,
                                  window, step, differentiate)
    if normalize:
        train = windows if split == "train" else _windows_of(train_files, window, step,
                                                              differentiate)[0]
        if len(train) == 0:
            raise DataNotFoundError(f"the training participants in {directory} give no "
                                    f"windows of {window} samples to standardize with")
        mean = train.mean(axis=(0, 2), keepdims=True)
        std = train.std(axis=(0, 2), keepdims=True)
        windows = (windows - mean) / np.where(std > 0, std, 1.0)
    return (torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)),
            torch.from_numpy(labels.astype(np.int64)))
