"""Final training of a found architecture (thesis §6.4.2) and its export.

A search scores candidates cheaply (few epochs, a share of the data, narrow
layers); the architecture it picks is then trained properly: its channels
widened (``channels``, for spaces that have a width), on the whole training
set with augmentation (random horizontal flip and random erasing), with
Adamax for 20 epochs, and scored once on the test set. The trained network is
exported (descriptor, weights, TorchScript, Python source).

With ``validation_fraction`` (chapter 8: 10 %), that share of the training set
is held out and scored after every epoch: ``curves.csv`` and ``curves.png``
hold the training and validation accuracy and loss per epoch (Figures
8.6/8.7), and ``final.json`` the same rows under ``"curve"``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from nord.errors import (
    EvaluationError,
    NordError,
    RunNotFoundError,
    SerializationError,
    SettingsError,
)
from nord.execution.store import RunStore

__all__ = ["FinalTrainingSettings", "train_final", "architecture_of", "FinalResult",
           "default_final_folder", "write_curves"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinalTrainingSettings:
    """Thesis §6.4.2 by default: 20 epochs of Adamax with flip and erasing, test-set score."""

    dataset: str = "fashion-mnist"
    epochs: int = 20
    optimizer: str = "adamax"
    optimizer_params: Dict[str, Any] = field(default_factory=dict)
    batch_size: int = 128
    augment: bool = True
    data_percentage: float = 1.0
    channels: Optional[int] = None
    seed: int = 0
    device: Optional[str] = None
    lr_schedule: Optional[str] = None
    #: share of the training set held out and scored after every epoch (0: none)
    validation_fraction: float = 0.0
    #: train in the channels-last memory format (faster convolutions; DARTS cells)
    channels_last: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise SettingsError(f"epochs must be at least 1 for a final training, got "
                                f"{self.epochs!r}; pass --epochs 1 or more (thesis: 20)")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
                or not 0 <= fraction < 1:
            raise SettingsError(f"validation_fraction must be in [0, 1) (the held-out share "
                                f"of the training set; chapter 8: 0.1), got {fraction!r}")


@dataclass(frozen=True)
class FinalResult:
    test_loss: float
    test_metrics: Dict[str, float]
    parameters: int
    seconds: float
    train_losses: Tuple[float, ...]
    export_folder: Path
    #: per epoch, with a validation split: train/validation loss and metrics
    curve: Tuple[Dict[str, float], ...] = ()

    def line(self) -> str:
        """One line for the terminal: test metrics, loss, size, time, where it went."""
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in self.test_metrics.items())
        return (f"test {metrics}, loss {self.test_loss:.4f}, {self.parameters:,} parameters, "
                f"{self.seconds:.1f} s; exported to {self.export_folder}")


def default_final_folder(source, channels: Optional[int] = None) -> Path:
    """Where ``nord train-final`` writes unless told: beside a run (``<run>/final``),
    else ``runs/final/<name>``; ``-C<channels>`` added when widened, so trainings
    of different sources or widths never overwrite each other."""
    suffix = f"-C{channels}" if channels else ""
    path = Path(str(source))
    if (path / "run.sqlite").exists():
        return path / f"final{suffix}"
    name = "remnet" if str(source) == "remnet" else path.stem
    return Path("runs") / "final" / f"{name}{suffix}"


def architecture_of(source, channels: Optional[int] = None, which: str = "best"):
    """The descriptor to train: from a run folder (its best evaluation), a descriptor
    JSON file, a REMNet genome JSON file (as a run store records it), or
    ``'remnet'`` (the REMNet of thesis §6.4.2). ``channels`` widens
    architectures of spaces that have a width."""
    if str(source) == "remnet":
        from nord.design.spaces.remnet import remnet_architecture
        return remnet_architecture(channels or 128)
    path = Path(source)
    if path.is_file():
        return _from_file(path, channels)
    if not (path / "run.sqlite").exists():
        raise RunNotFoundError(f"{path} is neither a run folder (no run.sqlite), a descriptor "
                               f"JSON file, nor 'remnet'")
    with RunStore(path / "run.sqlite", create=False) as store:
        meta, best = store.meta(), store.best()
    if best is None or best.status not in ("ok", "cached"):
        raise EvaluationError(f"the run in {path} has no successful evaluation to train")
    settings = meta.get("settings", {})
    space_settings = dict(meta.get("space_settings", {}))
    if channels is not None:
        if "channels" not in space_settings:
            raise SettingsError(f"the {settings.get('space')} space has no channel width to widen; "
                                f"leave --channels out")
        space_settings["channels"] = int(channels)
    from nord.design.spaces import get_space
    space = get_space(settings["space"], **space_settings)
    return space.to_descriptor(space.decode(best.architecture))


def _from_file(path: Path, channels: Optional[int]):
    """A descriptor JSON file, or a REMNet genome as a run store holds it."""
    from nord.neural_nets import NeuralDescriptor
    from nord.neural_nets.serialization import read_json
    text = path.read_bytes()
    try:
        value = read_json(text, "its text")
    except NordError as error:
        raise SerializationError(f"{path} is not a descriptor JSON file (nor a genome): it "
                                 f"does not parse as JSON ({error})") from error
    if isinstance(value, dict) and {"layers", "connections", "input", "output"} <= set(value):
        from nord.design.spaces.remnet import RemNetSpace
        space = RemNetSpace(channels=channels or 16)
        try:
            return space.to_descriptor(space.decode(value))
        except (NordError, KeyError, TypeError, ValueError) as error:
            raise SerializationError(f"{path} looks like a REMNet genome but does not decode: "
                                     f"{type(error).__name__}: {error}") from error
    try:
        return NeuralDescriptor.from_json(text)
    except NordError as error:
        raise SerializationError(f"{path} is not a descriptor JSON file (nor a genome): "
                                 f"{error}") from error


def train_final(descriptor, settings: FinalTrainingSettings, out) -> FinalResult:
    """Train ``descriptor`` as ``settings`` say, score it on the test set, export it."""
    from nord.neural_nets import LocalEvaluator
    from nord.neural_nets.export import export_network

    out = Path(out)
    fraction = float(settings.validation_fraction)
    evaluator = LocalEvaluator(settings.optimizer, settings.optimizer_params, verbose=True,
                               batch_size=settings.batch_size, lr_schedule=settings.lr_schedule,
                               seed=settings.seed, device=settings.device, split="test",
                               augment=settings.augment,
                               monitor="validation" if fraction > 0 else None,
                               channels_last=settings.channels_last,
                               data_options={"validation_fraction": fraction})
    # seeded as a search's evaluation: same seed, same numbers as descriptor_evaluate
    net, result = evaluator.train_network(descriptor, settings.epochs, settings.dataset,
                                          settings.data_percentage)
    if result.failed:
        raise EvaluationError(f"final training failed: {result.error}")
    files = export_network(net.cpu(), descriptor, out / "model")
    summary = {"test_loss": result.loss, "test_metrics": result.metrics,
               "parameters": result.parameters, "seconds": result.total_time,
               "train_losses": list(result.train_losses), "settings": asdict(settings),
               "curve": [dict(row) for row in result.curve]}
    (out / "final.json").write_text(json.dumps(summary, indent=1))
    if result.curve:
        write_curves(result.curve, out)
    return FinalResult(result.loss, dict(result.metrics), result.parameters, result.total_time,
                       tuple(result.train_losses), files.folder, tuple(result.curve))


def write_curves(curve, out) -> Tuple[Path, Path]:
    """``curves.csv`` (one row per epoch) and ``curves.png`` (accuracy and loss,
    training against validation) of a final training, in ``out``."""
    import csv

    from nord.analysis.figures import plot_epoch_curves
    out = Path(out)
    columns = list(curve[0])
    table = out / "curves.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows([row.get(c, "") for c in columns] for row in curve)
    panels = {}
    for measure in ("accuracy", "loss"):
        lines = {name: [row[f"{split}_{measure}"] for row in curve]
                 for name, split in (("training", "train"), ("validation", "validation"))
                 if f"{split}_{measure}" in curve[0]}
        if lines:
            panels[measure] = lines
    figure = out / "curves.png"
    plot_epoch_curves(panels, figure, title="final training per epoch (Figures 8.6/8.7)")
    return table, figure
