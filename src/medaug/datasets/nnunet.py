"""The nnU-Net v2 dataset layout: reading ``dataset.json`` and writing ``medaug expand --layout nnunet``.

An nnU-Net dataset folder holds ``imagesTr/`` (one file per case and input
channel, ``CASE_XXXX.nii.gz`` with the four-digit channel number),
``labelsTr/`` (``CASE.nii.gz``: integer class maps, 0 the background) and a
``dataset.json`` with ``channel_names`` (``{"0": "CT", ...}``), ``labels``
(``{"background": 0, "liver": 1, ...}``; a region may list several values),
``numTraining`` and ``file_ending``.  See nnU-Net's
``documentation/dataset_format.md``.

In a medaug sample the channels of a case are the channels of one
multi-channel image ``image`` (:func:`~medaug.datasets.cases.load_case` stacks
the files); the label map is ``label``.

``medaug expand INPUT OUTPUT --layout nnunet`` writes every augmented case as
``imagesTr/{case}_aug{k:03d}_{channel:04d}.nii.gz`` and
``labelsTr/{case}_aug{k:03d}.nii.gz`` (originals with ``--include-originals``:
``{case}_orig``), the manifest as usual, and, at the end of each run, a
``dataset.json`` computed from the committed manifest rows (so it always
describes exactly the finished files), written atomically.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from .cases import Case
from .jobs import write_json_atomic
from .writing import NIFTI_GZ

__all__ = [
    "DATASET_JSON", "DatasetInfo", "read_dataset_json", "cases_from_files", "output_folder", "check_cases",
    "check_dataset_name", "write_dataset_json",
]

DATASET_JSON = "dataset.json"
_DATASET_NAME = re.compile(r"^Dataset(\d{3})_([A-Za-z0-9][A-Za-z0-9_\-]*)$")
#: dataset.json keys of the input that do not carry over to an expanded dataset.
_NOT_COPIED = ("numTraining", "numTest", "file_ending", "overwrite_image_reader_writer", "training", "test", "modality",
               "tensorImageSize")


@dataclass(frozen=True)
class DatasetInfo:
    """What a ``dataset.json`` says (nnU-Net v2; v1/MSD ``modality`` and int-keyed ``labels`` are converted)."""

    path: Path
    channel_names: dict[str, str]
    labels: dict[str, Any]
    file_ending: str | None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    def allowed_labels(self) -> tuple[int, ...]:
        """Every label value ``labels`` mentions (regions contribute all their values)."""
        values: set[int] = set()
        for v in self.labels.values():
            values.update(int(x) for x in (v if isinstance(v, (list, tuple)) else [v]))
        return tuple(sorted(values))


def read_dataset_json(folder: str | Path) -> DatasetInfo | None:
    """Read ``folder/dataset.json``; None when there is none.

    Raises
    ------
    ParameterError
        The file is not JSON, or ``channel_names``/``labels`` are missing or malformed.
    """
    path = Path(folder) / DATASET_JSON
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParameterError(f"cannot read dataset.json: {exc}", path=path) from None
    if not isinstance(raw, dict):
        raise ParameterError("dataset.json must hold a JSON object", path=path)
    channels = raw.get("channel_names", raw.get("modality"))
    if not isinstance(channels, dict) or not channels:
        raise ParameterError("dataset.json needs 'channel_names', e.g. {\"0\": \"CT\"}", path=path)
    try:
        order = sorted(int(k) for k in channels)
    except ValueError:
        raise ParameterError(
            f"dataset.json 'channel_names' keys must be channel numbers \"0\", \"1\" ..., got {list(channels)}",
            path=path,
        ) from None
    if order != list(range(len(order))):
        raise ParameterError(
            f"dataset.json 'channel_names' must number the channels 0, 1, 2 ... without gaps, got {order}", path=path
        )
    channel_names = {str(k): str(channels[str(k)] if str(k) in channels else channels[k]) for k in order}
    labels = raw.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise ParameterError("dataset.json needs 'labels', e.g. {\"background\": 0, \"tumour\": 1}", path=path)
    if all(isinstance(v, str) for v in labels.values()):  # v1 / MSD: {"0": "background", "1": "tumour"}
        try:
            labels = {name: int(k) for k, name in labels.items()}
        except ValueError:
            raise ParameterError(f"dataset.json 'labels' is not understood: {labels}", path=path) from None
    for name, v in labels.items():
        vals = v if isinstance(v, (list, tuple)) else [v]
        if not vals or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in vals):
            raise ParameterError(
                f"dataset.json label {name!r}: expected a non-negative integer (or a list of them for a region), "
                f"got {v!r}",
                path=path,
            )
    ending = raw.get("file_ending")
    if ending is not None and (not isinstance(ending, str) or not ending.startswith(".")):
        raise ParameterError(f"dataset.json 'file_ending' must look like \".nii.gz\", got {ending!r}", path=path)
    return DatasetInfo(path, channel_names, dict(labels), ending, raw)


_CHANNEL_SUFFIX = re.compile(r"^(.*)_(\d{4})$")


def _stem(p: Path, ending: str | None) -> str:
    from ..data.io import SUPPORTED_FORMATS

    name = p.name
    if ending is not None and name.endswith(ending):
        return name[: -len(ending)]
    for ext in sorted(SUPPORTED_FORMATS, key=len, reverse=True):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return name


def cases_from_files(
    folder: Path, images: Path, labels: Path, image_files: Sequence[Path], label_files: Iterable[Path]
) -> list[Case]:
    """Group a dataset folder's image files into cases, channels by their ``_XXXX`` suffix.

    With a ``dataset.json`` (nnU-Net): only files ending in its ``file_ending``
    count; every image must be ``CASE_XXXX`` with XXXX a channel of
    ``channel_names``, every case must have all channels, and, when the
    labels folder exists, a label ``CASE{file_ending}``.  Without one: files
    ``CASE_0000``, ``CASE_0001`` ... (at least two, numbered from 0000
    without a gap) are the channels of ``CASE``; any other file is a
    single-channel case whose id drops a trailing ``_XXXX``.

    Raises
    ------
    ParameterError
        Naming the file: a missing channel, a channel not in ``channel_names``,
        a file without a channel suffix, a missing label.
    """
    info = read_dataset_json(folder)
    ending = info.file_ending if info else None
    if ending is not None:
        image_files = [p for p in image_files if p.name.endswith(ending)]
        label_files = [p for p in label_files if p.name.endswith(ending)]
    exact = {_stem(p, ending): p for p in label_files}
    stripped = {}
    for p in label_files:
        m = _CHANNEL_SUFFIX.match(_stem(p, ending))
        stripped.setdefault(m.group(1) if m else _stem(p, ending), p)
    groups: dict[str, list[tuple[int | None, Path]]] = {}
    for p in image_files:
        m = _CHANNEL_SUFFIX.match(_stem(p, ending))
        cid, ch = (m.group(1), int(m.group(2))) if m else (_stem(p, ending), None)
        groups.setdefault(cid or "case", []).append((ch, p))
    shown = ending or "<ext>"
    out: list[Case] = []
    for cid, items in groups.items():
        if info is not None:
            have: dict[int, Path] = {}
            for ch, p in items:
                if ch is None:
                    raise ParameterError(
                        f"nnU-Net image files are named CASE_XXXX{shown} (XXXX: the channel) but this one has no "
                        "channel number: rename it (e.g. CASE_0000), or, for a Medical Segmentation Decathlon task, "
                        "give dataset.json its 'training' list of image/label pairs",
                        path=p,
                    )
                if ch >= info.n_channels:
                    raise ParameterError(f"channel {ch:04d} is not in dataset.json's channel_names "
                                         f"({', '.join(f'{int(k):04d}' for k in info.channel_names)})", path=p)
                have[ch] = p
            missing = [k for k in range(info.n_channels) if k not in have]
            if missing:
                first = images / f"{cid}_{missing[0]:04d}{shown}"
                raise ParameterError(
                    f"missing: case '{cid}' has channel(s) {', '.join(f'{k:04d}' for k in sorted(have))} but not "
                    f"{', '.join(f'{k:04d}' for k in missing)}; dataset.json lists {info.n_channels} channel(s) "
                    f"({', '.join(info.channel_names.values())}) and every case needs all of them", path=first)
            paths = [have[k] for k in range(info.n_channels)]
        elif len(items) > 1 and sorted(ch if ch is not None else -1 for ch, _ in items) == list(range(len(items))):
            paths = [p for _, p in sorted(items, key=lambda item: item[0])]
        else:  # single-channel case(s); read_cases reports ids that collide
            for ch, p in items:
                out.append(Case(cid, p, exact.get(_stem(p, ending)) if ch is None else stripped.get(cid)))
            continue
        label = exact.get(cid) or (stripped.get(cid) if info is None else None)
        if label is None and info is not None and labels.is_dir():
            raise ParameterError(f"case '{cid}' has no label file {labels / (cid + shown)}", path=paths[0])
        names = tuple(info.channel_names[str(k)] for k in range(info.n_channels)) if info is not None else None
        out.append(Case(cid, paths[0], label, channel_files=tuple(paths[1:]), channel_names=names,
                        allowed_labels=info.allowed_labels() if info is not None else None))
    return out


def output_folder(out: Path, dataset_name: str | None) -> Path:
    """Where the nnU-Net dataset goes: ``OUTPUT/DatasetXXX_Name`` with a name (unless OUTPUT is already so named)."""
    if dataset_name is None:
        return out
    check_dataset_name(dataset_name)
    return out if out.name == dataset_name else out / dataset_name


def check_dataset_name(name: str) -> re.Match[str]:
    m = _DATASET_NAME.match(name)
    if m is None or int(m.group(1)) == 0:
        raise ParameterError(
            f"--dataset-name {name!r}: nnU-Net dataset folders are named DatasetXXX_Name, XXX a three-digit id from "
            "001 to 999 (custom datasets: 500 or above), e.g. Dataset501_LiverAug"
        )
    return m


def check_cases(cases: Sequence[Case]) -> None:
    """Refuse an nnU-Net export that nnU-Net could not use: cases without labels, unequal channels.

    Output identifiers (``{case}_aug{k:03d}``, ``{case}_orig``) cannot clash:
    case ids are unique (:func:`~medaug.datasets.cases.read_cases`) and can be
    read back from the identifiers, which never end in a ``_XXXX`` channel suffix.

    Raises
    ------
    ParameterError
        Naming the case (and its image file).
    """
    channels = {len(c.image_files) for c in cases}
    if len(channels) > 1:
        raise ParameterError(
            f"the cases have different numbers of channels ({sorted(channels)}); "
            "nnU-Net needs the same channels in every case"
        )
    for c in cases:
        if c.label is None:
            raise ParameterError(f"case '{c.case_id}' has no label map; the nnunet layout writes training cases "
                                 "(imagesTr + labelsTr), each needs one", path=c.image)
        if "/" in c.case_id or "\\" in c.case_id or not c.case_id.strip():
            raise ParameterError(f"case id {c.case_id!r} cannot be an nnU-Net identifier (a file name)", path=c.image)


def _channel_names_for(n: int, pipeline: Any) -> dict[str, str]:
    modality = pipeline.get("modality") if isinstance(pipeline, Mapping) else None
    name = {"ct": "CT", None: "image"}.get(modality, str(modality).upper())
    return {str(k): name for k in range(n)}


def write_dataset_json(
    out: Path,
    rows: Iterable[Mapping[str, Any]],
    *,
    source: str | Path,
    pipeline: Any = None,
    dataset_name: str | None = None,
) -> dict[str, Any]:
    """Write ``out/dataset.json`` for the committed rows (atomically) and return it.

    ``channel_names`` and ``labels`` come from the input's ``dataset.json``
    when it has one (its other descriptive keys are kept); otherwise the
    channels are named after the pipeline's modality (``CT`` for CT, which
    selects nnU-Net's CT normalisation) and the labels are
    ``{"background": 0, "label_1": 1, ...}`` up to the largest value written.

    Raises
    ------
    ParameterError
        A written label value is not in the input's ``labels``.
    """
    rows = list(rows)
    src = Path(source)
    info = read_dataset_json(src) if src.is_dir() else None
    n_channels = max((len(r.get("output_channels") or [r["output_image"]]) for r in rows), default=1)
    found = sorted({int(v) for r in rows for v in r.get("label_values", [])})
    doc: dict[str, Any] = {k: v for k, v in (info.raw if info else {}).items() if k not in _NOT_COPIED}
    if info is not None:
        bad = sorted(set(found) - set(info.allowed_labels()))
        if bad:
            raise ParameterError(f"label value(s) {bad} were written but are not in the input's labels {info.labels}",
                                 path=info.path)
        doc["channel_names"], doc["labels"] = info.channel_names, info.labels
    else:
        top = max(found, default=0)
        doc["channel_names"] = _channel_names_for(n_channels, pipeline)
        doc["labels"] = {"background": 0, **{f"label_{v}": v for v in range(1, top + 1)}}
    doc["numTraining"] = len(rows)
    doc["file_ending"] = NIFTI_GZ
    if dataset_name:
        doc["name"] = check_dataset_name(dataset_name).group(2)
    doc.setdefault("description",
                   f"augmented by medaug expand from {src.name}; every applied parameter is in manifest.csv")
    write_json_atomic(out / DATASET_JSON, doc, indent=2)
    return doc
