"""Saving a trained ranker and loading it back, with the checks of a network export.

:func:`export_ranker` writes, into one folder:

* ``descriptor.json`` — the ranker's genome as a descriptor
  (:meth:`~nord.design.predictors.egraph.GCNArchitecture.to_descriptor`: its
  GraphSAGE layers, pooling and head), readable and drawable by every
  descriptor tool (``NeuralDescriptor.from_file``, ``to_dot``);
* ``ranker.pt`` — the weights with what the model was built with (its genome,
  disabled genes included, the node vocabulary the ranker reads graphs in,
  ``bidirectional``), the versions of
  NORD, torch and this format, and an integrity record: the sha256 of the
  weights and of ``descriptor.json``;
* ``SHA256SUMS`` (``sha256sum -c SHA256SUMS``).

:func:`load_ranker` checks the hashes, refuses NaN or infinite weights, reads
the descriptor as untrusted input (only registered graph ops), rebuilds the
:class:`~nord.design.predictors.egraph.SiameseGCN` and returns it in eval mode
with its vocabulary, ready for
:func:`~nord.design.predictors.training.predict_scores` on new architectures.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence, Tuple

import torch

import nord
from nord.errors import TamperedExportError
from nord.neural_nets.export import (ExportError, read_verified_export,
                                     refuse_non_finite_weights, state_dict_sha256,
                                     write_checksums)

__all__ = ["export_ranker", "load_ranker", "RANKER_FORMAT"]

RANKER_FORMAT = 1
DESCRIPTOR, WEIGHTS = "descriptor.json", "ranker.pt"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def export_ranker(model, vocabulary: Sequence[str], folder) -> Path:
    """Write ``model`` (a :class:`~nord.design.predictors.egraph.SiameseGCN`) and the
    node ``vocabulary`` it reads graphs in (the training dataset's
    ``vocabulary``) into ``folder``; returns the folder."""
    from nord.design.predictors.egraph import SiameseGCN
    if not isinstance(model, SiameseGCN):
        raise ExportError(f"export_ranker saves SiameseGCN rankers, got {type(model).__name__}; "
                          f"export other networks with nord.neural_nets.export.export_network")
    vocabulary = [str(label) for label in vocabulary]
    if len(vocabulary) != model.num_features:
        raise ExportError(f"the vocabulary has {len(vocabulary)} labels but the ranker reads "
                          f"{model.num_features} node features; pass the vocabulary of the "
                          f"dataset it was trained on")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    refuse_non_finite_weights(state, "cannot export the ranker")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    descriptor_bytes = model.architecture.to_descriptor().to_json(indent=1).encode("utf-8")
    (folder / DESCRIPTOR).write_bytes(descriptor_bytes)
    torch.save({"format": RANKER_FORMAT, "nord": nord.__version__,
                "torch": str(torch.__version__), "vocabulary": vocabulary,
                "genome": model.architecture.to_json(),
                "bidirectional": bool(model.bidirectional),
                "integrity": {"algorithm": "sha256", "state_dict": state_dict_sha256(state),
                              "descriptor": _sha256(descriptor_bytes)},
                "state_dict": state}, folder / WEIGHTS)
    write_checksums(folder, (DESCRIPTOR, WEIGHTS))
    return folder


def load_ranker(folder) -> Tuple[object, Tuple[str, ...]]:
    """The ranker :func:`export_ranker` wrote (eval mode) and its vocabulary."""
    from nord.design.predictors.egraph import GCNArchitecture, SiameseGCN
    from nord.design.spaces.gcn import architecture_from_descriptor

    folder = Path(folder)
    saved, descriptor = read_verified_export(folder, DESCRIPTOR, WEIGHTS, RANKER_FORMAT,
                                             "ranker", "export_ranker")
    _check_ranker_record(saved, folder / WEIGHTS)
    state = saved["state_dict"]
    architecture = GCNArchitecture.from_json(saved["genome"])  # untrusted: checked field by field
    if architecture_from_descriptor(descriptor).active_order() != architecture.active_order() \
            or architecture.to_descriptor().to_json(indent=1) != descriptor.to_json(indent=1):
        raise TamperedExportError(f"the genome in {folder / WEIGHTS} is not the network "
                                  f"{folder / DESCRIPTOR} describes; export the ranker again")
    vocabulary = tuple(saved["vocabulary"])
    model = SiameseGCN(architecture, len(vocabulary), bidirectional=saved["bidirectional"])
    expected = set(model.state_dict())
    if set(state) != expected:
        missing, unknown = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ExportError(f"{folder / WEIGHTS} does not fit its descriptor (missing "
                          f"{missing[:5]}, unexpected {unknown[:5]}); export the ranker again")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ExportError(f"{folder / WEIGHTS} does not fit its descriptor: "
                          f"{str(error).splitlines()[0]}; export the ranker again") from error
    return model.eval(), vocabulary


def _check_ranker_record(saved: dict, path: Path) -> None:
    """What a ranker file holds beyond a network export's weights and integrity."""
    vocabulary = saved.get("vocabulary")
    if (not isinstance(vocabulary, list) or not vocabulary
            or not all(isinstance(v, str) for v in vocabulary)
            or len(set(vocabulary)) != len(vocabulary)):
        raise ExportError(f"{path}: 'vocabulary' must be a list of distinct labels")
    if not isinstance(saved.get("genome"), dict):
        raise ExportError(f"{path}: 'genome' must be the ranker's genome (a JSON object)")
    if not isinstance(saved.get("bidirectional"), bool):
        raise ExportError(f"{path}: 'bidirectional' must be true or false")
