"""Exporting a compiled network: descriptor, weights, TorchScript, torch.export and source.

:func:`export_network` writes, into one folder:

* ``descriptor.json`` — the architecture (``NeuralDescriptor.to_json``);
* ``weights.pt`` — the state dict with what the network was compiled with
  (classes, input shape, channels, size policy, head), the versions of NORD,
  torch and this format, and an integrity record: the sha256 of the weights
  and of ``descriptor.json``;
* ``model.torchscript.pt`` — a traced TorchScript module (no NORD needed to run it);
* ``model.pt2`` — a ``torch.export`` program of the network, exported with the
  same example input as the TorchScript trace, its batch dimension left
  dynamic where torch.export allows (no NORD needed:
  ``torch.export.load('model.pt2').module()(x)``). TorchScript is deprecated
  upstream; this is its successor. Should torch.export fail for an
  architecture, the other files are still written, an :class:`ExportWarning`
  gives the reason and the manifest records it;
* ``model.py`` — readable Python source of an equivalent ``nn.Module``
  (``ExportedNet``) whose ``load()`` reads ``weights_plain.pt``, the same weights
  keyed by its attribute names;
* ``manifest.json`` — what each file is and how to load it, the example input
  shape, and whether (or why not) ``model.pt2`` was written;
* ``SHA256SUMS`` — the sha256 of every file above (``sha256sum -c SHA256SUMS``).

Every export is checked before it is returned: the TorchScript module, the
``torch.export`` program and the generated source, loaded with the exported
weights, must give the compiled network's outputs on an example batch.
:func:`load_network` rebuilds the compiled network from the folder, after
checking the hashes, refusing NaN or infinite weights, and resolving whatever
the files name (layer classes, the head builder) through allow-lists only: no
code a file names is imported or called unless NORD already knows it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import torch

import nord
from nord.errors import ExportWarning, SerializationError, TamperedExportError, UntrustedHeadError
from nord.neural_nets.export_source import ExportError, network_source
from nord.neural_nets.neural_builder import NeuralNet, default_head

__all__ = ["export_network", "load_network", "network_source", "register_head", "ExportError",
           "ExportWarning", "UntrustedHeadError", "TamperedExportError", "ExportedFiles",
           "EXPORT_FORMAT", "state_dict_sha256", "refuse_non_finite_weights", "write_checksums",
           "check_checksums", "read_verified_export"]

logger = logging.getLogger(__name__)

#: bumped whenever the files :func:`load_network` reads change (2: integrity record and
#: SHA256SUMS); files added beside them (``model.pt2``, ``manifest.json``) keep it
EXPORT_FORMAT = 2
DESCRIPTOR, WEIGHTS, TORCHSCRIPT, SOURCE, PLAIN_WEIGHTS, CHECKSUMS = (
    "descriptor.json", "weights.pt", "model.torchscript.pt", "model.py", "weights_plain.pt",
    "SHA256SUMS")
PROGRAM, MANIFEST = "model.pt2", "manifest.json"
#: the manifest's description of each file: what it is and how to load it
FILE_GUIDE = {
    DESCRIPTOR: "the architecture: NeuralDescriptor.from_file('descriptor.json')",
    WEIGHTS: "state dict, build settings and integrity record: "
             "nord.neural_nets.export.load_network(folder) rebuilds the network",
    TORCHSCRIPT: "traced TorchScript module, no NORD needed: "
                 "torch.jit.load('model.torchscript.pt')(x)",
    PROGRAM: "torch.export program, no NORD needed: "
             "torch.export.load('model.pt2').module()(x)",
    SOURCE: "readable source of an equivalent nn.Module: ExportedNet.load('weights_plain.pt')",
    PLAIN_WEIGHTS: "the weights keyed by model.py's attribute names",
    MANIFEST: "this file",
    CHECKSUMS: "sha256 of every other file: sha256sum -c SHA256SUMS",
}
_BUILD_KEYS = ("num_classes", "input_shape", "input_channels", "policy", "channels", "head",
               "interpolation")


@dataclass(frozen=True)
class ExportedFiles:
    """The paths :func:`export_network` wrote (see the module docstring for each file).

    ``program`` is ``None`` when torch.export could not export the network
    (``program_note`` then says why, as the manifest does).
    """

    folder: Path
    descriptor: Path
    weights: Path
    torchscript: Path
    source: Path
    plain_weights: Path
    checksums: Path
    manifest: Path
    program: Optional[Path]
    program_note: Optional[str] = None


# ------------------------------------------------------------------ heads
_HEADS: Dict[str, Callable] = {}


def register_head(factory: Callable) -> Callable:
    """Let :func:`load_network` rebuild exports whose head ``factory`` built
    (a module-level function or class; usable as a decorator). NORD's own heads
    and the ``dense_head`` of every registered dataset are known already."""
    _HEADS[_reference(factory)] = factory
    return factory


def _known_heads() -> Dict[str, Callable]:
    from nord.configurations.all import Configs
    from nord.neural_nets.remnet_layers import remnet_head

    known = {}
    configs = Configs()
    for factory in [default_head, remnet_head] + [configs[n].dense_head for n in configs.names()]:
        reference = _reference_or_none(factory)
        if reference is not None:
            known[reference] = factory
    known.update(_HEADS)
    return known


def _reference_or_none(obj) -> Optional[str]:
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
    if obj is None or not module or not name or "<" in name:
        return None
    return f"{module}:{name}"


def _reference(obj) -> str:
    """``module:qualname`` of a module-level function or class."""
    reference = _reference_or_none(obj)
    if reference is None:
        raise ExportError(f"the network's head {obj!r} is not a module-level function or class, "
                          f"so it cannot be named in an export; define it at module level")
    return reference


def _head_from(reference, given: Optional[Callable], where: Path) -> Optional[Callable]:
    if reference is None:
        return None
    if given is not None:
        if _reference_or_none(given) != reference:
            logger.info("%s names the head %s; using the head passed in, %s", where,
                        reference, _reference_or_none(given))
        return given
    known = _known_heads().get(reference) if isinstance(reference, str) else None
    if known is None:
        raise UntrustedHeadError(
            f"{where} names the head builder {str(reference)[:80]!r}, which is neither one of "
            f"NORD's heads, a registered dataset's dense_head, nor registered with "
            f"register_head(); it was not imported or called. If it is yours, pass "
            f"head=<function> to load_network or register_head(<function>) first")
    return known


# ------------------------------------------------------------------ integrity
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def state_dict_sha256(state: Dict[str, torch.Tensor]) -> str:
    """The sha256 of a state dict: every key, dtype, shape and the raw bytes, in key order."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def refuse_non_finite_weights(state: Dict[str, torch.Tensor], where: str) -> None:
    """Raise :class:`TamperedExportError` if a floating-point tensor holds NaN or inf."""
    for key, tensor in state.items():
        if not (tensor.is_floating_point() or tensor.is_complex()):
            continue
        if bool(torch.isfinite(tensor.sum())):  # a NaN or inf makes the sum one too
            continue
        bad = int((~torch.isfinite(tensor)).sum())  # 0 when only the sum overflowed
        if bad:
            raise TamperedExportError(
                f"{where}: the weights {key!r} hold {bad} NaN or infinite value(s); the "
                f"network diverged, so train it again (a lower learning rate helps)")


def write_checksums(folder: Path, names=(DESCRIPTOR, WEIGHTS, TORCHSCRIPT, SOURCE,
                                         PLAIN_WEIGHTS, PROGRAM, MANIFEST)) -> Path:
    """Write ``SHA256SUMS`` (``sha256sum -c`` reads it) for those of ``names`` in
    ``folder``."""
    names = [name for name in names if (folder / name).is_file()]
    lines = [f"{_sha256((folder / name).read_bytes())}  {name}" for name in names]
    (folder / CHECKSUMS).write_text("\n".join(lines) + "\n")
    return folder / CHECKSUMS


def check_checksums(folder: Path, contents: Dict[str, bytes]) -> None:
    """Compare the files read against ``SHA256SUMS`` where the export has one."""
    path = folder / CHECKSUMS
    if not path.is_file():
        return
    recorded = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        recorded[name.strip()] = digest.strip()
    for name, data in contents.items():
        if name in recorded and recorded[name] != _sha256(data):
            raise TamperedExportError(
                f"{folder / name} does not match its sha256 in {path}: it changed after the "
                f"export; restore it or export the network again")


# ------------------------------------------------------------------ export
def export_network(net: NeuralNet, descriptor, folder, example: Optional[torch.Tensor] = None,
                   atol: float = 1e-5) -> ExportedFiles:
    """Write the exports of ``net`` (compiled from ``descriptor``) into ``folder``."""
    folder = Path(folder)
    state = net.state_dict()
    refuse_non_finite_weights(state, "cannot export")
    settings = dict(net.build_settings)
    head = settings.pop("head")
    settings["head"] = _reference(head) if head is not None else None
    settings["input_shape"] = list(settings["input_shape"]) if not isinstance(
        settings["input_shape"], int) else settings["input_shape"]
    if example is None:
        example = _example_input(net)
    source, renames = network_source(net)
    folder.mkdir(parents=True, exist_ok=True)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            expected = net(example)
        descriptor_bytes = descriptor.to_json(indent=1).encode("utf-8")
        (folder / DESCRIPTOR).write_bytes(descriptor_bytes)
        integrity = {"algorithm": "sha256", "state_dict": state_dict_sha256(state),
                     "descriptor": _sha256(descriptor_bytes)}
        # Plain values only, so that torch.load's safe default (weights_only) reads it.
        torch.save({"format": EXPORT_FORMAT, "nord": nord.__version__,
                    "torch": str(torch.__version__), "build": settings,
                    "integrity": integrity, "state_dict": state}, folder / WEIGHTS)
        with _torchscript_quietly():
            traced = torch.jit.trace(net, example)
            traced.save(str(folder / TORCHSCRIPT))
        (folder / SOURCE).write_text(source, encoding="utf-8")
        torch.save({renames[k]: v for k, v in state.items()}, folder / PLAIN_WEIGHTS)
        _check(folder, example, expected, atol)
        program = _export_program(net, example, expected, folder / PROGRAM, atol)
        manifest = _write_manifest(folder, example, program)
        checksums = write_checksums(folder)
    finally:
        net.train(was_training)
    return ExportedFiles(folder, folder / DESCRIPTOR, folder / WEIGHTS, folder / TORCHSCRIPT,
                         folder / SOURCE, folder / PLAIN_WEIGHTS, checksums, manifest,
                         folder / PROGRAM if program["written"] else None, program.get("reason"))


def _export_program(net: NeuralNet, example: torch.Tensor, expected: torch.Tensor, path: Path,
                    atol: float) -> Dict[str, Any]:
    """Write and check the ``torch.export`` program of ``net``; the manifest's record of it.

    torch.export cannot trace every module, and the other files do not need
    it, so a failure is not fatal: no ``model.pt2`` is left behind, an
    :class:`ExportWarning` states the reason, and the record holds it.
    """
    path.unlink(missing_ok=True)  # never leave a stale program of an earlier export
    try:
        program, fixed_because = _program(net, example)
        torch.export.save(program, str(path))
        with torch.no_grad():
            got = torch.export.load(str(path)).module()(example)
        if not torch.allclose(got, expected, atol=atol):
            raise ExportError(f"the program does not reproduce the network (max difference "
                              f"{float((got - expected).abs().max()):.3g})")
    except Exception as error:  # noqa: BLE001 - torch.export fails in many ways; report which
        path.unlink(missing_ok=True)
        reason = _one_line(error)
        warnings.warn(f"torch.export could not export this network, so {path} was not written "
                      f"(the other export files were): {reason}", ExportWarning, stacklevel=3)
        return {"written": False, "file": None, "reason": reason}
    record = {"written": True, "file": PROGRAM, "example_input_shape": list(example.shape),
              "dynamic_batch": fixed_because is None}
    if fixed_because is not None:
        record["batch_fixed_because"] = fixed_because
    return record


def _program(net: NeuralNet, example: torch.Tensor):
    """``(program, None)`` with a dynamic batch dimension, or, where torch.export
    cannot leave it dynamic, ``(program, reason)`` fixed to the example's batch size."""
    try:
        dynamic = ({0: torch.export.Dim("batch")},)
        return torch.export.export(net, (example,), dynamic_shapes=dynamic), None
    except Exception as error:  # noqa: BLE001 - retried with static shapes, reason recorded
        return torch.export.export(net, (example,)), _one_line(error)


def _one_line(error: BaseException, limit: int = 500) -> str:
    """``Type: first line of the message``, at most ``limit`` characters."""
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _write_manifest(folder: Path, example: torch.Tensor, program: Dict[str, Any]) -> Path:
    """``manifest.json``: each file's purpose and loader, and the torch.export record."""
    always = (MANIFEST, CHECKSUMS)  # written with, and right after, this file
    written = [name for name in FILE_GUIDE if name in always or (folder / name).is_file()]
    manifest = {"format": EXPORT_FORMAT, "nord": nord.__version__, "torch": str(torch.__version__),
                "example_input_shape": list(example.shape),
                "files": {name: FILE_GUIDE[name] for name in written},
                "torch_export": program}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return folder / MANIFEST


@contextlib.contextmanager
def _torchscript_quietly():
    """TorchScript is what deployment tools read today; torch >= 2.9 warns that it
    is deprecated in favour of ``torch.export``, which need not be heard per export."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        yield


def _example_input(net: NeuralNet) -> torch.Tensor:
    shape = net.build_settings["input_shape"]
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return torch.randn(2, net.build_settings["input_channels"], *shape,
                       generator=torch.Generator().manual_seed(0))


def _check(folder: Path, example, expected, atol: float) -> None:
    try:
        with _torchscript_quietly():
            scripted = torch.jit.load(str(folder / TORCHSCRIPT))
    except RuntimeError as error:  # TorchScript refuses what it wrote (an odd module name)
        raise ExportError(f"the TorchScript export in {folder} does not load back "
                          f"({_one_line(error)}); please report this architecture to the "
                          f"NORD developers") from error
    with torch.no_grad():
        got = scripted(example)
    if not torch.allclose(got, expected, atol=atol):
        raise ExportError(f"the TorchScript export in {folder} does not reproduce the network "
                          f"(max difference {float((got - expected).abs().max()):.3g})")
    module = _load_source(folder / SOURCE)
    generated = module.ExportedNet()
    generated.load_state_dict(torch.load(folder / PLAIN_WEIGHTS, weights_only=True))
    generated.eval()
    with torch.no_grad():
        got = generated(example)
    if not torch.allclose(got, expected, atol=atol):
        raise ExportError(f"the Python source export in {folder} does not reproduce the network "
                          f"(max difference {float((got - expected).abs().max()):.3g})")


def _load_source(path: Path):
    spec = importlib.util.spec_from_file_location(f"nord_export_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ loading
def load_network(folder, head: Optional[Callable] = None) -> Tuple[NeuralNet, object]:
    """The compiled network (weights loaded, eval mode) and its descriptor.

    ``head`` is the head builder to use where the export names one that is not
    NORD's, a registered dataset's, nor registered with :func:`register_head`.
    Raises :class:`TamperedExportError` for files that changed after the export
    or NaN/inf weights, :class:`UntrustedHeadError` /
    :class:`~nord.errors.UntrustedLayerError` for code the files name that NORD
    does not know, and :class:`ExportError` for anything else wrong.
    """
    folder = Path(folder)
    saved, descriptor = read_verified_export(folder, DESCRIPTOR, WEIGHTS, EXPORT_FORMAT,
                                             "network", "nord export or export_network")
    state = saved["state_dict"]
    build = _build_record(saved["build"], folder / WEIGHTS)
    factory = _head_from(build.pop("head"), head, folder / WEIGHTS)
    net = NeuralNet(descriptor, build.pop("num_classes"), build.pop("input_shape"),
                    build.pop("input_channels"), head=factory, **build)
    _check_state_keys(net, state, folder / WEIGHTS)
    net.load_state_dict(state)
    return net.eval(), descriptor


def read_verified_export(folder: Path, descriptor_name: str, weights_name: str,
                         file_format: int, what: str, writer: str):
    """``(saved, descriptor)`` of an export folder, every check done: both files
    present, ``SHA256SUMS`` (where there is one), the weights file read with
    ``weights_only`` at ``file_format``, its integrity record against the
    descriptor's and the weights' sha256, no NaN or infinite weights, and the
    descriptor parsed as untrusted input. ``what`` ("network", "ranker") and
    ``writer`` (what writes such a folder) word the errors."""
    from nord.neural_nets.serialization import descriptor_from_json

    for name in (descriptor_name, weights_name):
        if not (folder / name).is_file():
            raise ExportError(f"{folder / name} is missing; {folder} is not a complete export "
                              f"(write one with {writer})")
    contents = {name: (folder / name).read_bytes() for name in (descriptor_name, weights_name)}
    check_checksums(folder, contents)
    saved = _read_weights(folder / weights_name, file_format, what)
    state, integrity = saved["state_dict"], saved["integrity"]
    if integrity["descriptor"] != _sha256(contents[descriptor_name]):
        raise TamperedExportError(f"{folder / descriptor_name} does not match the sha256 "
                                  f"recorded in {weights_name}: it changed after the export; "
                                  f"restore it or export the {what} again")
    if integrity["state_dict"] != state_dict_sha256(state):
        raise TamperedExportError(f"the weights in {folder / weights_name} do not match their "
                                  f"recorded sha256: they changed after the export; export the "
                                  f"{what} again")
    refuse_non_finite_weights(state, str(folder / weights_name))
    try:
        descriptor = descriptor_from_json(contents[descriptor_name])
    except SerializationError as error:
        raise type(error)(f"{folder / descriptor_name}: {error}") from error
    return saved, descriptor


def _read_weights(path: Path, file_format: int, what: str) -> dict:
    try:
        saved = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:
        raise ExportError(f"{path} could not be read ({type(error).__name__}: "
                          f"{error}); export the {what} again") from error
    if not isinstance(saved, dict) or saved.get("format") != file_format:
        found = saved.get("format") if isinstance(saved, dict) else "none"
        raise ExportError(f"{path} has export format {str(found)[:20]}, this NORD "
                          f"({nord.__version__}) reads format {file_format}; export the "
                          f"{what} again with this version")
    integrity = saved.get("integrity")
    if (not isinstance(integrity, dict) or integrity.get("algorithm") != "sha256"
            or not all(isinstance(integrity.get(k), str) for k in ("state_dict", "descriptor"))):
        raise TamperedExportError(f"{path} has no valid integrity record; export the {what} "
                                  f"again")
    state = saved.get("state_dict")
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ExportError(f"{path}: 'state_dict' must map names to tensors; export the "
                          f"{what} again")
    return saved


def _build_record(build, path: Path) -> dict:
    """The build record's settings, checked to be the plain values NeuralNet takes."""
    if not isinstance(build, dict) or set(build) != set(_BUILD_KEYS):
        keys = sorted(build) if isinstance(build, dict) else type(build).__name__
        raise ExportError(f"{path}: the build record must hold exactly {list(_BUILD_KEYS)}, "
                          f"got {str(keys)[:200]}; export the network again")

    def whole(value, name, optional=False):
        if (value is None and optional) or (type(value) is int and value >= 1):
            return value
        raise ExportError(f"{path}: build setting {name!r} must be a positive integer"
                          f"{' or null' if optional else ''}, got {str(value)[:40]!r}")

    record = dict(build)
    whole(record["num_classes"], "num_classes", optional=True)
    whole(record["input_channels"], "input_channels")
    whole(record["channels"], "channels", optional=True)
    shape = record["input_shape"]
    if isinstance(shape, (list, tuple)):
        record["input_shape"] = tuple(whole(v, "input_shape") for v in shape)
    else:
        whole(shape, "input_shape")
    for name in ("policy", "interpolation"):
        if not isinstance(record[name], str):
            raise ExportError(f"{path}: build setting {name!r} must be a string, "
                              f"got {str(record[name])[:40]!r}")
    if record["head"] is not None and not isinstance(record["head"], str):
        raise ExportError(f"{path}: build setting 'head' must be 'module:name' or null")
    return record


def _check_state_keys(net: NeuralNet, state: Dict[str, torch.Tensor], path: Path) -> None:
    """Name the first missing, unexpected or wrongly shaped weight, if any."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        what = (f"lacks the weights {missing[:3]}" if missing
                else f"holds weights the network does not have: {unexpected[:3]}")
        raise ExportError(f"{path} {what} (of {len(expected)} expected); it does not belong "
                          f"to {DESCRIPTOR}, so export the network again")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ExportError(f"{path}: the weights {key!r} have shape "
                              f"{tuple(state[key].shape)}, the network needs "
                              f"{tuple(tensor.shape)}; export the network again")
