"""Fuzzing the readers: mutated NIfTI (.nii, .nii.gz), DICOM, PNG and pipeline configs.

Each target starts from a valid file generated here (a small phantom saved by
medaug, SimpleITK or pydicom) and mutates it (see :mod:`mutations`).  The
property, for every input:

* the reader returns a usable :class:`~medaug.data.image.Image` -- 2D or 3D
  (with a channel axis for a 4D NIfTI), not empty, real-valued, **every voxel finite** (``load`` refuses NaN/Inf, so a
  non-finite voxel in a result is a bug), positive finite spacing, finite
  origin -- or raises a :class:`~medaug.errors.MedaugError` whose message
  names the file; nothing else (no other exception, no crash, no warning other
  than a ``UserWarning``);
* a pipeline config that is accepted also runs on a small 2D and 3D phantom:
  it returns finite voxels and a JSON record, or raises a one-line
  :class:`~medaug.errors.MedaugError` (never a crash at run time);
* within ``deadline`` (2 s) per input, with the address space capped while
  reading at the size the process had when the module was imported + 3 GiB
  (a fixed cap: a leak cannot raise it), so a header that asks for a huge
  allocation must be refused, not attempted.

The normal test run tries ``MEDAUG_FUZZ_EXAMPLES`` inputs per target (60 by
default, derandomized: the same inputs every run); ``make fuzz`` sets it to
5000 with random inputs.  No example database is written.
"""

from __future__ import annotations

import atexit
import copy
import gzip
import io
import json
import os
import re
import resource
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import SimpleITK as sitk
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from medaug.data.image import Image
from medaug.data.io import load, save
from medaug.data.phantoms import shepp_logan_2d, shepp_logan_3d
from medaug.engine.compose import Compose
from medaug.engine.config import _parameter_names, pipeline_from_config, pipeline_to_config, transform_names
from medaug.engine.registry import transform_class
from medaug.errors import MedaugError
from medaug.presets import preset_config

from .mutations import dicom_overrides, mutated_bytes, nifti_mutations, png_mutations

EXAMPLES = int(os.environ.get("MEDAUG_FUZZ_EXAMPLES", "60"))
LONG_RUN = "MEDAUG_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=2000,
    database=None,
    derandomize=not LONG_RUN,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
#: A hang inside native code cannot be interrupted by hypothesis' deadline: pytest-timeout's thread method
#: dumps the stacks and ends the run; the input is then left in WORK (the clean-up below does not run).
pytestmark = pytest.mark.timeout(max(300, EXAMPLES // 5), method="thread")
WORK = Path(tempfile.mkdtemp(prefix="medaug-fuzz-"))
atexit.register(shutil.rmtree, WORK, ignore_errors=True)


# ---------------------------------------------------------------- valid starting files
def _phantom(shape: tuple[int, ...], dtype: type, seed: int = 0) -> Image:
    rng = np.random.default_rng(seed)
    data = rng.integers(-1000, 1000, shape).astype(dtype)
    nd = len(shape)
    return Image(data, spacing=(0.8, 1.2, 2.5)[:nd], origin=(-10.0, 5.0, 3.0)[:nd])


def _saved_bytes(image: Image, name: str) -> bytes:
    path = WORK / name
    save(image, path)
    return path.read_bytes()


NII_BASES = [
    _saved_bytes(_phantom((4, 5, 6), np.int16), "base_int16.nii"),
    _saved_bytes(_phantom((3, 4, 5), np.float32), "base_float32.nii"),
    _saved_bytes(_phantom((6, 7), np.uint8), "base_2d.nii"),
]
PNG_BASES = [
    _saved_bytes(Image(np.arange(120, dtype=np.uint8).reshape(10, 12)), "base8.png"),
    _saved_bytes(Image((np.arange(99, dtype=np.uint16) * 600).reshape(9, 11)), "base16.png"),
]


def _dicom_base() -> Any:
    import pydicom

    img = sitk.GetImageFromArray(np.arange(48, dtype=np.int16).reshape(1, 6, 8) - 20)
    img.SetSpacing((0.7, 0.9, 2.0))
    for tag, value in {"0008|0060": "CT", "0020|0032": "1\\2\\3", "0020|0037": "1\\0\\0\\0\\1\\0",
                       "0028|1052": "-1024", "0028|1053": "1"}.items():
        img.SetMetaData(tag, value)
    writer = sitk.ImageFileWriter()
    writer.SetImageIO("GDCMImageIO")
    writer.SetFileName(str(WORK / "base.dcm"))
    writer.Execute(img)
    return pydicom.dcmread(WORK / "base.dcm")


DICOM_BASE = _dicom_base()
DICOM_BASE_BYTES = (WORK / "base.dcm").read_bytes()


# ---------------------------------------------------------------- the property
def _vm_size() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))


ADDRESS_SPACE_CAP = _vm_size() + 3 * 2**30


@contextmanager
def _address_space_cap() -> Iterator[None]:
    """Lower RLIMIT_AS to ADDRESS_SPACE_CAP while reading (restored afterwards)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = max(ADDRESS_SPACE_CAP, _vm_size() + 2**28)  # never below what is mapped now (+256 MiB)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    if soft != resource.RLIM_INFINITY:
        cap = min(cap, soft)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def check_image(image: Any) -> None:
    """What every image medaug returns must satisfy (a 4D NIfTI reads as a 3D image of channels)."""
    assert isinstance(image, Image), type(image)
    arr = image.array
    assert image.ndim in (2, 3) and arr.ndim == image.ndim + (1 if image.channel_axis else 0), arr.shape
    assert arr.size > 0, arr.shape
    assert arr.dtype.kind in "biuf", arr.dtype
    if arr.dtype.kind == "f":
        assert np.isfinite(arr).all(), "non-finite voxel in a loaded image"
    assert all(np.isfinite(s) and s > 0 for s in image.spacing), image.spacing
    assert np.isfinite(image.origin).all(), image.origin
    d = np.asarray(image.direction)
    assert np.allclose(d @ d.T, np.eye(image.ndim), atol=1e-3), d


@contextmanager
def _c_level_stderr() -> Iterator[list[str]]:
    """Collect what C/C++ code writes to file descriptor 2 (ITK, GDCM, VNL, libpng) meanwhile."""
    out: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", "replace"))


def assert_one_line_per_problem(message: str) -> None:
    """One line, or a config's list of problems: ``N problems in the config:`` then one indented line each."""
    first, *rest = message.split("\n")
    if rest:
        assert re.search(r"\d+ problems in the config:$", first), f"multi-line message: {message!r}"
        assert len(rest) == int(first.rsplit(" problems", 1)[0].split()[-1]), f"one line per problem: {message!r}"
        assert all(line.startswith("  ") and line.strip() for line in rest), f"multi-line message: {message!r}"


def read_outcome(read: Callable[[], Any], path: Path, check: Callable[[Any], None] = check_image,
                 record: bool = True) -> str:
    """Run ``read``; return the outcome's name, failing on anything but a result or a MedaugError."""
    with warnings.catch_warnings(record=True) as caught, _c_level_stderr() as stderr:
        warnings.simplefilter("always")
        with _address_space_cap():
            try:
                result = read()
            except MedaugError as exc:
                assert exc.path is not None and str(path) in str(exc), f"message does not name the file: {exc}"
                assert_one_line_per_problem(str(exc))
                outcome = type(exc).__name__
            else:
                check(result)
                outcome = "ok"
    assert _vm_size() < ADDRESS_SPACE_CAP, f"address space grew to {_vm_size() / 2**30:.1f} GiB: a leak?"
    assert not stderr[0], f"C-level output on stderr: {stderr[0][:500]!r}"
    if record:
        event(f"outcome: {outcome}")  # shown by --hypothesis-show-statistics
    for w in caught:
        assert issubclass(w.category, UserWarning) and not issubclass(w.category, RuntimeWarning), (
            f"unexpected {w.category.__name__}: {w.message}"
        )
    return outcome


def _write(data: bytes, name: str) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- NIfTI
@FUZZ
@given(data=st.sampled_from(NII_BASES).flatmap(nifti_mutations))
def test_fuzz_nifti(data: bytes) -> None:
    path = _write(data, "fuzz.nii")
    read_outcome(lambda: load(path), path)


@FUZZ
@given(draw=st.data())
def test_fuzz_nifti_gz(draw: st.DataObject) -> None:
    base = draw.draw(st.sampled_from(NII_BASES))
    if draw.draw(st.booleans()):
        data = gzip.compress(draw.draw(nifti_mutations(base)), mtime=0)
    else:
        data = draw.draw(mutated_bytes(gzip.compress(base, mtime=0)))
    path = _write(data, "fuzz.nii.gz")
    read_outcome(lambda: load(path), path)


def test_nifti_label_mode_on_valid_bases() -> None:
    for k, base in enumerate(NII_BASES):
        path = _write(base, f"label{k}.nii")
        assert read_outcome(lambda p=path: load(p, label=True), path, record=False) in ("ok", "InvalidImageError")


# ---------------------------------------------------------------- DICOM
@contextmanager
def _pydicom_lenient() -> Iterator[None]:
    from pydicom import config

    saved = config.settings.reading_validation_mode, config.settings.writing_validation_mode
    config.settings.reading_validation_mode = config.IGNORE
    config.settings.writing_validation_mode = config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        config.settings.reading_validation_mode, config.settings.writing_validation_mode = saved


def _dicom_bytes(overrides: dict[str, Any]) -> bytes:
    """The base DICOM file with attribute overrides, written by pydicom (the base bytes if it refuses)."""
    ds = copy.deepcopy(DICOM_BASE)
    with _pydicom_lenient():
        try:
            for key, value in overrides.items():
                if key == "TransferSyntaxUID":
                    ds.file_meta.TransferSyntaxUID = value
                else:
                    setattr(ds, key, value)
            buf = io.BytesIO()
            ds.save_as(buf, implicit_vr=False, little_endian=True, enforce_file_format=True)
            return buf.getvalue()
        except Exception:  # noqa: BLE001 - pydicom cannot encode this combination; fuzz the base instead
            return DICOM_BASE_BYTES


@FUZZ
@given(overrides=dicom_overrides(), draw=st.data())
def test_fuzz_dicom(overrides: dict[str, Any], draw: st.DataObject) -> None:
    data = _dicom_bytes(overrides)
    if not overrides or draw.draw(st.booleans()):
        data = draw.draw(mutated_bytes(data, max_edits=3))
    path = _write(data, "fuzz.dcm")
    read_outcome(lambda: load(path), path)


# ---------------------------------------------------------------- PNG
@FUZZ
@given(data=st.sampled_from(PNG_BASES).flatmap(png_mutations))
def test_fuzz_png(data: bytes) -> None:
    path = _write(data, "fuzz.png")
    read_outcome(lambda: load(path), path)


# ---------------------------------------------------------------- configs
#: Small samples every accepted config is applied to (a config that passes validation must not crash at run time).
_TINY = [shepp_logan_2d(16), shepp_logan_3d(16)]


def _check_pipeline(pipeline: Any) -> None:
    assert isinstance(pipeline, Compose), type(pipeline)
    again = pipeline_from_config(pipeline_to_config(pipeline))  # what was accepted must round-trip
    assert isinstance(again, Compose)
    saved = os.environ.get("MEDAUG_MAX_OUTPUT_BYTES")
    os.environ["MEDAUG_MAX_OUTPUT_BYTES"] = str(64 * 2**20)  # a fuzzed size may be legal and slow; keep it small
    try:
        for sample in _TINY:
            try:
                out = pipeline(sample, seed=0)
            except MedaugError as exc:  # refused at run time: clearly, on one line
                assert "\n" not in str(exc), f"multi-line message: {exc!r}"
                continue
            for name, img in out.items():
                assert np.isfinite(img.array).all() or img.is_label, f"non-finite voxels in '{name}'"
            json.dumps(out.history)
    finally:
        if saved is None:
            del os.environ["MEDAUG_MAX_OUTPUT_BYTES"]
        else:
            os.environ["MEDAUG_MAX_OUTPUT_BYTES"] = saved


_NAMES = transform_names()
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.sampled_from([0, 1, -1, 2, 10**9, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-20, 20),
    st.text(max_size=8), st.sampled_from(["LR", "AP", "SI", "x", "linear", "nearest", "background", "min", "ct"]),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                       max_leaves=8)


def _params(name: str) -> list[str]:
    cls = transform_class(name)
    return (list(_parameter_names(cls)) if cls is not None else []) + ["p", "bogus", "transforms"]


_LEAF_ITEM = st.sampled_from([*_NAMES, "NotATransform", "randomaffine"]).flatmap(
    lambda n: st.dictionaries(st.one_of(st.sampled_from(_params(n)), st.integers(0, 3), st.none()), _VALUES,
                              max_size=4).map(lambda params: {n: params})
)
_ITEM = st.one_of(
    _LEAF_ITEM,
    st.sampled_from(_NAMES),  # a bare name
    st.tuples(st.sampled_from(["Compose", "OneOf", "SomeOf"]), st.lists(_LEAF_ITEM, max_size=3),
              st.dictionaries(st.sampled_from(["p", "n", "weights", "bogus"]), _VALUES, max_size=2)).map(
        lambda t: {t[0]: {"transforms": t[1], **t[2]}}
    ),
    _VALUES,
)
_CONFIGS = st.one_of(
    st.lists(_ITEM, max_size=5),
    st.fixed_dictionaries({"transforms": st.lists(_ITEM, max_size=3)}, optional={
        "fill": _VALUES, "modality": st.sampled_from(["ct", "mri", "xray", "ultrasound", "pet", 3]), "p": _VALUES,
        "interpolation": _VALUES, "on_violation": _VALUES, "colour": _VALUES,
    }),
    _VALUES,
)


def _dump(obj: Any, fmt: str) -> bytes:
    if fmt == ".json":
        return json.dumps(obj, allow_nan=True).encode()
    return yaml.safe_dump(obj, allow_unicode=True).encode("utf-8", "surrogateescape")


@FUZZ
@given(obj=_CONFIGS, fmt=st.sampled_from([".yaml", ".json"]))
def test_fuzz_config_structured(obj: Any, fmt: str) -> None:
    path = _write(_dump(obj, fmt), "fuzz" + fmt)
    read_outcome(lambda: pipeline_from_config(path), path, check=_check_pipeline)


_CONFIG_TEXTS = [yaml.safe_dump(preset_config(name), sort_keys=False).encode() for name in ("ct", "mri-heavy", "xray")]


@FUZZ
@given(data=st.sampled_from(_CONFIG_TEXTS).flatmap(lambda t: mutated_bytes(t, max_edits=4)),
       fmt=st.sampled_from([".yaml", ".yml"]))
def test_fuzz_config_text(data: bytes, fmt: str) -> None:
    path = _write(data, "fuzz_text" + fmt)
    read_outcome(lambda: pipeline_from_config(path), path, check=_check_pipeline)


# ---------------------------------------------------------------- headers naming data files (MetaImage, NRRD)
#: A folder of headers whose data files are zeros, beside a secret outside it: bytes 0xA5 (165), a value no zero file
#: and no ASCII header text can give.  ``link.raw`` inside the folder leads to the secret.
HEADERS = WORK / "headers"
(HEADERS / "case").mkdir(parents=True)
(HEADERS / "secret.bin").write_bytes(b"\xa5" * 4096)
for _name in ["data.raw", "data.raw.gz", *(f"s{k}.raw" for k in range(12))]:
    (HEADERS / "case" / _name).write_bytes(bytes(64))
(HEADERS / "case" / "list.raw").write_bytes(bytes(16))
(HEADERS / "case" / "link.raw").symlink_to("../secret.bin")
_TOKENS = ["ElementDataFile", "elementdatafile", "ElementDataFile ", " = ", "=", ":", ": ", " ", "\r", "\n", "\r\n",
           "\x00", "\t", "LIST", "LISTX", "LOCAL", "Local", "local", "%d", "%c", "%s", "%%", " 1", " 47", " 0 1 1", " 2",
           "../secret.bin", "../../secret.bin", "/", "..", "link.raw", "data.raw", "s%d.raw", "list.raw", "data file",
           "datafile", "DATA FILE", "-", "#", "..%c", "secret.bin", ".gz", "HeaderSize = -1", "NDims = 3"]
_MHD_HEAD = "ObjectType = Image\nNDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\n"
_NHDR_HEAD = "NRRD0004\ntype: uint8\ndimension: 2\nsizes: 8 8\nencoding: raw\n"


#: Data-file lines that read (the zeros beside the header); the fuzzer edits them with the tokens above.
_READABLE = {
    "MetaImage": ["ElementDataFile = data.raw", "ElementDataFile = LIST\ns0.raw\ns1.raw\ns2.raw\ns3.raw\ns4.raw\n"
                  "s5.raw\ns6.raw\ns7.raw", "ElementDataFile = s%d.raw", "ElementDataFile = s%d.raw 0",
                  "ElementDataFile = s%d.raw 1 8 1", "ElementDataFile = LIST 2D\nlist.raw\nlist.raw\nlist.raw\n"
                  "list.raw\nlist.raw\nlist.raw\nlist.raw\nlist.raw"],
    "NRRD": ["data file: data.raw", "data file: s%d.raw 0 7 1 2", "data file: LIST 2\ns0.raw\ns1.raw\ns2.raw\n"
             "s3.raw\ns4.raw\ns5.raw\ns6.raw\ns7.raw"],
}


@st.composite
def _data_file_header(draw: st.DrawFn) -> tuple[str, bytes]:
    """A MetaImage or NRRD header whose data-file line is edited with the tokens its readers take specially."""
    suffix = draw(st.sampled_from([".mhd", ".mha", ".nhdr", ".nrrd"]))
    fmt = "MetaImage" if suffix in (".mhd", ".mha") else "NRRD"
    line = draw(st.sampled_from(_READABLE[fmt]))
    edits = draw(st.integers(1, 4)) if draw(st.booleans()) else 0  # half the headers read as they are
    for _ in range(edits):  # insert, replace or delete a token somewhere
        at = draw(st.integers(0, len(line)))
        cut = draw(st.integers(0, min(4, len(line) - at)))
        line = line[:at] + draw(st.sampled_from([*_TOKENS, ""])) + line[at + cut:]
    head = _MHD_HEAD if fmt == "MetaImage" else _NHDR_HEAD
    if fmt == "MetaImage" and ("LIST" in line or "%" in line):
        head = head.replace("NDims = 2\nDimSize = 8 8", "NDims = 3\nDimSize = 4 4 8")
    elif fmt == "NRRD" and ("LIST" in line or "%" in line):
        head = head.replace("dimension: 2\nsizes: 8 8", "dimension: 3\nsizes: 4 4 8")
    return suffix, (head + line + "\n").encode("latin-1")


@FUZZ
@given(header=_data_file_header())
def test_fuzz_header_data_files(header: tuple[str, bytes]) -> None:
    """No header makes medaug read outside its folder (no voxel of 165) or give uninitialised memory (two reads
    differ): the data files it may read hold zeros."""
    suffix, data = header
    path = HEADERS / "case" / f"fuzz{suffix}"
    path.write_bytes(data)
    images: list[np.ndarray] = []

    def check(image: Any) -> None:
        check_image(image)
        images.append(np.asarray(image.array))
        assert not (images[-1] == 0xA5).any(), f"the secret outside the header's folder was read: {data!r}"

    if read_outcome(lambda: load(path), path, check=check) == "ok":
        read_outcome(lambda: load(path), path, check=check, record=False)
        assert np.array_equal(images[0], images[1]), f"two reads differ (uninitialised memory): {data!r}"
