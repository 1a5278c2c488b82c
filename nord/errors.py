"""Typed errors raised by NORD.

Every error derives from :class:`NordError`, so ``except NordError`` catches
anything NORD raises on purpose. Errors about user input also derive from the
matching built-in (``ValueError``, ``KeyError``-like lookups raise
``LookupError`` subclasses) so generic handlers keep working.
"""

from __future__ import annotations

import pickle
from typing import Iterable, Sequence

__all__ = [
    "ExportWarning",
    "UsageError",
    "UnknownNameError",
    "RegistrationError",
    "StoreError",
    "ReadOnlyStoreError",
    "UnsafePickleError",
    "MissingChunksError",
    "DamagedPickleError",
    "NordError",
    "DescriptorError",
    "DuplicateLayerError",
    "UnknownLayerError",
    "InvalidDescriptorError",
    "CycleError",
    "DanglingConnectionError",
    "NoPathError",
    "UnknownOpError",
    "SerializationError",
    "UntrustedCodeError",
    "UntrustedLayerError",
    "IntegrityError",
    "CompilationError",
    "ShapeError",
    "NetworkTooLargeError",
    "DataNotFoundError",
    "DamagedDataError",
    "UnknownDatasetError",
    "EvaluationError",
    "NotInTableError",
    "MetricNotAvailableError",
    "MissingDependencyError",
    "SettingsError",
    "OutOfSearchSpaceError",
    "DartsError",
    "GenotypeError",
    "InvalidArgumentError",
    "NonFiniteLossError",
    "StrategyError",
    "StrategySettingsError",
    "RunNotFoundError",
    "ExportError",
    "UntrustedHeadError",
    "TamperedExportError",
    "TableFormatError",
    "TFRecordError",
    "TFRecordTruncatedError",
    "ProtobufError",
    "DistributedError",
    "DistributedConfigError",
    "ExecutorError",
    "WorkerStartError",
    "PortInUseError",
    "StatisticsInputError",
    "StudyError",
    "PredictorError",
    "GraphDatasetError",
    "GraphTooLargeError",
]


class NordError(Exception):
    """Base class of every error NORD raises on purpose."""


class UsageError(NordError):
    """The request itself is wrong (a setting that cannot work, an unknown name):
    changing the call or the command line fixes it. ``nord`` exits with status 2
    for these (as for a mistyped flag) and with 1 for other failures."""


class UnknownNameError(UsageError, LookupError):
    """A name that its registry (search spaces, strategies, objectives,
    executors) does not hold; the message lists the closest ones.
    ``name`` is what was asked for, ``choices`` the registered names."""

    def __init__(self, message: str, name: object = None, choices: Sequence[str] = ()):
        super().__init__(message)
        self.name = name
        self.choices = list(choices)

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RegistrationError(NordError, ValueError):
    """A registry entry that cannot be used: a taken or malformed name, or a
    ``"module:attribute"`` reference that does not import."""


class DescriptorError(NordError, ValueError):
    """A descriptor was used in a way it does not allow."""


class DuplicateLayerError(DescriptorError):
    """A layer name that is already taken was added again."""


class UnknownLayerError(DescriptorError, LookupError):
    """A layer name that the descriptor does not hold was referenced."""


class InvalidDescriptorError(DescriptorError):
    """The descriptor does not describe a network that can be built.

    ``problems`` holds one error per problem found, each of a more specific
    type (:class:`CycleError`, :class:`DanglingConnectionError`,
    :class:`NoPathError`, :class:`UnknownOpError`).
    """

    def __init__(self, message: str, layers: Sequence[str] = (),
                 problems: Iterable["InvalidDescriptorError"] = ()):
        super().__init__(message)
        self.layers = tuple(layers)
        self.problems = tuple(problems) or (self,)


class CycleError(InvalidDescriptorError):
    """The connections form a cycle; ``layers`` lists it in order."""


class DanglingConnectionError(InvalidDescriptorError):
    """A connection names a layer that is not in the descriptor."""


class NoPathError(InvalidDescriptorError):
    """No path leads from the input (first) layer to the output (last) layer."""


class UnknownOpError(InvalidDescriptorError):
    """A layer type is neither a known torch module nor a registered op."""


class SerializationError(DescriptorError):
    """A descriptor could not be written to or read from JSON."""


class UntrustedCodeError(NordError, ValueError):
    """A file names code (a layer class, a head builder) that is neither NORD's own,
    torch.nn's, nor registered; NORD refused it without importing or calling it."""


class UntrustedLayerError(SerializationError, UntrustedCodeError):
    """A descriptor file names a layer class outside torch.nn, NORD and the registry."""


class IntegrityError(NordError, ValueError):
    """A saved file does not match the hash recorded for it, or holds NaN/inf weights."""


class CompilationError(NordError):
    """A valid descriptor could not be turned into a network."""


class ShapeError(CompilationError, ValueError):
    """A layer cannot accept the shape of the tensor that reaches it."""


class NetworkTooLargeError(CompilationError, ValueError):
    """A network whose tensors or weights would be too large to allocate."""


class DataNotFoundError(NordError, FileNotFoundError):
    """A data set is missing or damaged; the message says how to get it."""


class DamagedDataError(DataNotFoundError):
    """A data file is there but wrong: truncated, cut short, or holding other data
    (an image where labels belong); the message names the file and what was expected."""


class UnknownDatasetError(UsageError, LookupError):
    """A dataset name that the configuration registry does not hold."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0]) if self.args else ""


class EvaluationError(NordError):
    """An evaluation could not be carried out (bad settings, bad data)."""


class NotInTableError(NordError, LookupError):
    """A valid architecture that the loaded benchmark table does not hold."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MetricNotAvailableError(UsageError, KeyError):
    """A metric (or dataset/epochs combination) the loaded benchmark does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class MissingDependencyError(NordError, ImportError):
    """An optional dependency is needed; the message says how to install it."""


class SettingsError(UsageError, ValueError):
    """Settings that cannot work (a share outside (0, 1], an unknown optimizer,
    an option the chosen space does not have, ...) or that contradict a run
    being resumed. The message says what to change."""


class OutOfSearchSpaceError(NordError, ValueError):
    """An architecture lies outside a benchmark's search space."""


class InvalidArgumentError(UsageError, TypeError):
    """An argument of the wrong type (a list where a name belongs, a number for a flag)."""


class NonFiniteLossError(NordError, ArithmeticError):
    """The training loss became NaN or infinite."""


class StrategyError(NordError, ValueError):
    """A strategy was used against its contract (unknown id, bad settings)."""


class StrategySettingsError(StrategyError, SettingsError):
    """A strategy (or the run loop) was given settings that cannot work: a usage
    error, so ``nord`` exits with status 2."""


class StatisticsInputError(UsageError, ValueError):
    """Values a statistic cannot be computed from: rank lists of different lengths,
    fewer than two values, NaNs, a confidence or a target outside its range."""


class StudyError(NordError):
    """A study folder that is not a study (empty, another kind of run, damaged), or a
    study that cannot reach what it was asked (a target tau no budget reaches)."""


class PredictorError(NordError):
    """A performance predictor (chapter 7) that cannot be built, trained or used:
    a genome outside the GCN space, a model asked about graphs it never saw."""


class GraphDatasetError(PredictorError, UsageError, ValueError):
    """An architecture dataset that cannot train or test a predictor: empty, a
    single architecture, a train/test split that leaves a side empty, a run store
    of another search space, labels that are not finite."""


class GraphTooLargeError(GraphDatasetError):
    """A graph with more nodes than a fixed-size predictor (ReNAS's 7 x 7 tensor)
    takes."""


class DartsError(NordError):
    """A DARTS search (chapter 8) that cannot be built, run or resumed."""


class GenotypeError(DartsError, UsageError, ValueError):
    """A genotype that is not a DARTS cell pair: an unknown operation, an edge from
    a node that does not exist yet, a node without exactly two inputs."""


class RunNotFoundError(NordError, FileNotFoundError):
    """A path that should hold a run folder, a descriptor or a genome holds none of them."""


class ExportError(NordError):
    """A network that cannot be exported, or an export folder that cannot be read."""


class UntrustedHeadError(ExportError, UntrustedCodeError):
    """``weights.pt`` names a head builder that is neither NORD's nor registered."""


class TamperedExportError(ExportError, IntegrityError):
    """An export's files do not match their recorded hashes, or hold NaN/inf weights."""


class TableFormatError(NordError, ValueError):
    """A benchmark table row or field that does not parse; the reader adds the file and line."""


class TFRecordError(DamagedDataError):
    """A TFRecord file is damaged: a bad checksum, a truncated record, bad contents."""


class TFRecordTruncatedError(TFRecordError):
    """A TFRecord file ends inside a record; ``records`` complete ones come before it."""

    def __init__(self, message: str, records: int):
        super().__init__(message)
        self.records = records


class ProtobufError(NordError, ValueError):
    """Bytes that are not a well-formed protobuf message."""


class DistributedError(NordError, RuntimeError):
    """The process group could not form, or a rank was lost or stopped responding.

    After this error during an evaluation the ranks are out of step: leave the
    :class:`~nord.neural_nets.distributed.environment.Environment` block.
    """


class DistributedConfigError(NordError, ValueError):
    """The distributed configuration is missing or invalid; the message says how to fix it."""


class ExecutorError(NordError, RuntimeError):
    """An executor used against its state (a closed pool) or a cluster that cannot be reached."""


class WorkerStartError(NordError):
    """Worker processes of a pool keep dying before they can evaluate anything."""


class PortInUseError(NordError, OSError):
    """``nord dashboard`` cannot listen on the port asked for: another program holds it."""


class StoreError(NordError):
    """The run store is missing, from another run, from an unknown schema version, or inconsistent."""


class ReadOnlyStoreError(StoreError, PermissionError):
    """The run store (or its folder) cannot be written."""


class UnsafePickleError(NordError, pickle.UnpicklingError):
    """Serialized data names something other than plain data; it was not loaded."""


class MissingChunksError(StoreError):
    """Saved state refers to array chunks that are not in the store (a damaged store)."""


class ExportWarning(NordError, UserWarning):
    """One of an export's optional files (the ``torch.export`` program) could not be
    written; the others were, and the export's manifest says why (a warning category)."""


class DamagedPickleError(NordError, pickle.UnpicklingError):
    """Serialized data that does not read back: truncated, or not in the format it
    should be (a ``torch.save`` archive that is not one); nothing was loaded."""
