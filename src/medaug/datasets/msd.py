"""The Medical Segmentation Decathlon layout (MSD, nnU-Net v1), as downloaded.

A task folder (``Task01_BrainTumour/``) holds ``imagesTr/`` and ``labelsTr/``
(one file per case: ``BRATS_001.nii.gz``; a 4D NIfTI when the task has several
input channels, e.g. FLAIR, T1w, T1gd, T2w), ``imagesTs/`` (test images, no
labels) and a ``dataset.json`` such as::

    {"name": "BrainTumour", "tensorImageSize": "4D",
     "modality": {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
     "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
     "numTraining": 484, "numTest": 266,
     "training": [{"image": "./imagesTr/BRATS_457.nii.gz", "label": "./labelsTr/BRATS_457.nii.gz"}, ...],
     "test": ["./imagesTs/BRATS_557.nii.gz", ...]}

``training`` pairs the images with their labels; ``modality`` names the
channels; ``labels`` names the label values, and a label file holding another
value is an error naming the file and the value.  The downloads also carry
macOS ``._*`` resource files, which are skipped.

``medaug expand`` writes an MSD task back as MSD: ``imagesTr/{case}_aug{k}.nii.gz``
(4D when there are several channels), ``labelsTr/`` and a ``dataset.json``
listing the written cases (:func:`write_msd_json`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from .cases import Case, case_id_from_path
from .jobs import write_json_atomic
from .nnunet import DATASET_JSON, DatasetInfo, check_dataset_name

__all__ = ["is_msd", "cases_from_msd", "write_msd_json"]


def is_msd(info: DatasetInfo | None) -> bool:
    """Whether a ``dataset.json`` is in the MSD (nnU-Net v1) form: it lists ``training`` pairs."""
    return info is not None and isinstance(info.raw.get("training"), list)


def _member(folder: Path, entry: Any, where: str, path: Path) -> Path:
    """A file named by ``dataset.json``, refused unless it stays inside the task folder."""
    if not isinstance(entry, str) or not entry.strip():
        raise ParameterError(f"{where}: expected a relative file name such as './imagesTr/case_001.nii.gz', "
                             f"got {entry!r}", path=path)
    norm = posixpath.normpath(entry.strip().replace("\\", "/"))
    if posixpath.isabs(norm) or norm == ".." or norm.startswith("../") or "\x00" in norm:
        raise ParameterError(f"{where}: {entry!r} lies outside the task folder; dataset.json may name only files "
                             "inside it", path=path)
    file = folder / norm
    if not file.exists():
        raise ParameterError(f"{where}: {entry!r} does not exist ({file})", path=path)
    return file


def cases_from_msd(folder: Path, info: DatasetInfo, *, include_test: bool = False) -> list[Case]:
    """The cases an MSD ``dataset.json`` lists: ``training`` (image + label), and ``test`` when asked.

    Raises
    ------
    ParameterError
        Naming dataset.json and the entry: a malformed entry, a file outside
        the task folder or missing.
    """
    path = info.path
    names = tuple(info.channel_names[str(k)] for k in range(info.n_channels))
    allowed = info.allowed_labels()
    out = []
    for i, entry in enumerate(info.raw["training"]):
        where = f"training[{i}]"
        if not isinstance(entry, Mapping) or "image" not in entry:
            raise ParameterError(f"{where}: expected {{\"image\": ..., \"label\": ...}}, got {entry!r}", path=path)
        image = _member(folder, entry["image"], where, path)
        label = _member(folder, entry["label"], where, path) if entry.get("label") is not None else None
        out.append(Case(case_id_from_path(image), image, label, channel_names=names, allowed_labels=allowed))
    if include_test:
        test = info.raw.get("test", [])
        if not isinstance(test, list):
            raise ParameterError(f"'test' must be a list of file names, got {type(test).__name__}", path=path)
        for i, entry in enumerate(test):
            image = _member(folder, entry.get("image") if isinstance(entry, Mapping) else entry, f"test[{i}]", path)
            out.append(Case(case_id_from_path(image), image, None, channel_names=names))
    return out


def write_msd_json(
    out: Path, rows: Iterable[Mapping[str, Any]], *, source: DatasetInfo | None, channel_names: Mapping[str, str],
    dataset_name: str | None = None,
) -> dict[str, Any]:
    """Write ``out/dataset.json`` in the MSD form for the committed rows (atomically) and return it.

    The descriptive keys of the input's ``dataset.json`` are kept; ``training``
    (labelled cases), ``test`` (unlabelled ones, written to ``imagesTs/``), their
    counts and ``tensorImageSize`` describe the written cases.

    Raises
    ------
    ParameterError
        A written label value is not in the input's ``labels``.
    """
    rows = list(rows)
    doc: dict[str, Any] = {k: v for k, v in (source.raw if source else {}).items()
                           if k not in ("training", "test", "numTraining", "numTest")}
    found = sorted({int(v) for r in rows for v in r.get("label_values", [])})
    if source is not None:
        bad = sorted(set(found) - set(source.allowed_labels()))
        if bad:
            raise ParameterError(f"label value(s) {bad} were written but are not in the input's labels "
                                 f"{source.labels}", path=source.path)
        labels = {str(v): name for name, v in source.labels.items() if not isinstance(v, (list, tuple))}
    else:
        labels = {"0": "background", **{str(v): f"label_{v}" for v in found if v}}
    doc["modality"] = dict(channel_names)
    doc["labels"] = labels
    doc["tensorImageSize"] = "4D" if len(channel_names) > 1 else "3D"
    if dataset_name:
        doc["name"] = check_dataset_name(dataset_name).group(2)
    training = [r for r in rows if r.get("output_label")]
    doc["numTraining"] = len(training)
    doc["training"] = [{"image": f"./{r['output_image']}", "label": f"./{r['output_label']}"} for r in training]
    doc["test"] = [f"./{r['output_image']}" for r in rows if not r.get("output_label")]
    doc["numTest"] = len(doc["test"])
    write_json_atomic(out / DATASET_JSON, doc, indent=2)
    return doc
