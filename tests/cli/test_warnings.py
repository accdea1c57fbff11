"""Every warning medaug issues reaches the user: one ``medaug COMMAND: warning: ...`` line, or a Python warning.

:data:`CASES` lists one case per ``warnings.warn`` site of ``src/medaug``
(``test_every_warning_site_has_a_case`` keeps the list complete).  Each case
writes its input, runs a command line in one child process that behaves as the
``medaug`` program (``tests/corpus/_cli_batch.py``: real file descriptors, a
line-buffered stderr, so a line written while a reader diverts descriptor 2 is
lost as it would be for a user) and calls the Python API under
``pytest.warns``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import medaug
from medaug.datasets.cases import Case, load_case

from ..corpus.make_corpus import _dicom_series
from ._folds import fold_every_registration

SRC = Path(medaug.__file__).parent
BATCH = Path(__file__).parents[1] / "corpus" / "_cli_batch.py"

#: The child: ``_cli_batch`` with one addition, registration results marked as folded (``MEDAUG_TEST_FOLDS``).
CHILD = f"""
import os, sys
sys.path[:0] = [{str(BATCH.parent)!r}, {str(Path(__file__).parent)!r}]
if os.environ.get("MEDAUG_TEST_FOLDS"):
    import _folds
    _folds.fold_every_registration()
import _cli_batch
_cli_batch.main()
"""


@dataclass(frozen=True)
class WarningCase:
    """A warning site (file under src/medaug, occurrence), what triggers it, and the text it shows."""

    site: tuple[str, int]
    setup: Callable[[Path], tuple[list[str], Callable[[], object]]]  # folder -> (CLI argv, API call)
    fragment: str
    command: str
    env: tuple[tuple[str, str], ...] = ()


def _nifti(folder: Path, name: str = "img.nii.gz") -> Path:
    s = medaug.shepp_logan_3d(24, seed=0)
    medaug.save(s["image"].with_data(s["image"].array.astype("int16")), folder / name)
    return folder / name


def _config(folder: Path, text: str) -> Path:
    (folder / "pipe.yaml").write_text(text, encoding="utf-8")
    return folder / "pipe.yaml"


def _sample(path: Path):
    return load_case(Case("case", path))


def _elastic(folder: Path):
    """Issued in worker processes: the job issues it again, once."""
    data = folder / "data"
    (data / "images").mkdir(parents=True)
    for i in range(2):
        _nifti(data / "images", f"case{i}.nii.gz")
    cfg = _config(folder, "- RandomElastic: {control_points: 7, max_displacement: [40, 40], fold_guard: false}\n")
    return (["expand", str(data), str(folder / "out"), "--config", str(cfg), "-n", "2", "--workers", "2", "--quiet"],
            lambda: medaug.pipeline_from_config(cfg)(_sample(data / "images" / "case0.nii.gz"), seed=0))


def _constraint(folder: Path):
    img = _nifti(folder)
    cfg = _config(folder, "modality: ct\ntransforms:\n- RandomGamma: {log_gamma: 0.1}\n")
    return (["augment", str(img), "--config", str(cfg), "-n", "1", "-o", str(folder / "out")],
            lambda: medaug.pipeline_from_config(cfg))


def _mixed_series(folder: Path):
    _dicom_series(folder / "mixed", n=4)
    _dicom_series(folder / "mixed", n=3, series_uid="1.2.826.0.1.3680043.2.1125.9.77", prefix="other")
    return ["info", str(folder / "mixed")], lambda: medaug.load(folder / "mixed")


def _oblique_slice(folder: Path):
    img = sitk.GetImageFromArray(np.arange(64, dtype=np.int16).reshape(1, 8, 8))
    img.SetMetaData("0020|0037", "1\\0\\0\\0\\0.5\\0.8660254")  # ImageOrientationPatient: tilted 60 degrees
    img.SetMetaData("0008|0060", "CT")
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetImageIO("GDCMImageIO")
    writer.SetFileName(str(folder / "oblique.dcm"))
    writer.Execute(img)
    return ["info", str(folder / "oblique.dcm")], lambda: medaug.load(folder / "oblique.dcm")


def _qform_sform(folder: Path):
    import nibabel as nib

    img = nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), None)
    img.set_qform(np.diag([1.0, 1.0, 1.0, 1.0]), code=1)
    img.set_sform(np.diag([1.0, 1.0, 2.0, 1.0]), code=2)
    nib.save(img, folder / "forms.nii.gz")
    return ["info", str(folder / "forms.nii.gz")], lambda: medaug.load(folder / "forms.nii.gz")


def _learn_folds(folder: Path):
    data = folder / "data"
    (data / "images").mkdir(parents=True)
    for i in range(2):
        medaug.save(medaug.shepp_logan_2d(32, seed=i).image, data / "images" / f"case{i}.nii.gz")

    def api() -> object:
        from medaug.registration import learn

        undo = fold_every_registration()
        try:
            return learn.run_learn(learn.LearnJob(str(data), str(folder / "api"), reference="case0", time_limit=20),
                                   progress=False)
        finally:
            undo()

    return (["learn-deformations", str(data), str(folder / "out"), "--reference", "case0", "--time-limit", "20",
             "--quiet"], api)


def _keep_identifiers(folder: Path):
    img = _nifti(folder)
    data = folder / "data"
    (data / "images").mkdir(parents=True)
    _nifti(data / "images", "case0.nii.gz")
    from medaug.datasets.expand import ExpandJob, run_expand

    return (["augment", str(img), "--preset", "ct-light", "-n", "1", "-o", str(folder / "out"), "--keep-identifiers"],
            lambda: run_expand(ExpandJob(str(data), str(folder / "api"), None, grid=[{}], keep_identifiers=True),
                               progress=False))


def _identifying_ids(folder: Path):
    from medaug.datasets.expand import ExpandJob, run_expand

    data = folder / "data"
    (data / "images").mkdir(parents=True)
    _nifti(data / "images", "DOE_JOHN_MRN0012345.nii.gz")
    return (["expand", str(data), str(folder / "out"), "--preset", "ct-light", "-n", "1", "--quiet"],
            lambda: run_expand(ExpandJob(str(data), str(folder / "api"), None, grid=[{}]), progress=False))


def _radians(command: str):
    def setup(folder: Path):
        img = _nifti(folder)
        cfg = _config(folder, "modality: ct\ntransforms:\n- RandomAffine: {rotation: [-0.3, 0.3]}\n")
        argv = {"augment": ["augment", str(img), "--config", str(cfg), "-n", "2", "-o", str(folder / "out")],
                "check": ["check", str(cfg)]}[command]
        return argv, lambda: medaug.pipeline_from_config(cfg)

    return setup


CASES = {
    "rotation_in_radians_augment": WarningCase(("engine/ranges.py", 1), _radians("augment"),
                                               "'rotation' is in degrees: [-0.3, 0.3] turns by at most 0.3°", "augment"),
    "rotation_in_radians_check": WarningCase(("engine/ranges.py", 1), _radians("check"),
                                             "if you meant radians (as in MONAI), write 17.2", "check"),
    "elastic_may_fold": WarningCase(("spatial/elastic.py", 1), _elastic, "the deformation may fold", "expand"),
    "pipeline_constraint": WarningCase(("presets/constraints.py", 1), _constraint, "RandomGamma", "augment"),
    "dicom_mixed_series": WarningCase(("data/io/_dicom.py", 1), _mixed_series, "the folder holds 2 DICOM series",
                                      "info"),
    "dicom_oblique_slice": WarningCase(("data/io/_dicom.py", 2), _oblique_slice, "non-axial single DICOM slice",
                                       "info"),
    "nifti_qform_sform_disagree": WarningCase(("data/io/_nifti.py", 1), _qform_sform,
                                              "the qform and the sform of its NIfTI header disagree", "info"),
    "learned_field_folds": WarningCase(("registration/learn.py", 1), _learn_folds, "the field folds",
                                       "learn-deformations", (("MEDAUG_TEST_FOLDS", "1"),)),
    "identifying_case_ids": WarningCase(("datasets/anonymize.py", 1), _identifying_ids,
                                        "its id looks like it holds a record number, and case ids reach", "expand"),
    "keep_identifiers": WarningCase(("datasets/expand.py", 1), _keep_identifiers, "--keep-identifiers: patient",
                                    "augment"),
}


def _sites() -> set[tuple[str, int]]:
    """(file, occurrence) of every ``warnings.warn(`` in src/medaug."""
    found = set()
    for path in SRC.rglob("*.py"):
        count = len(re.findall(r"\bwarnings\.warn\(", path.read_text(encoding="utf-8")))
        found |= {(path.relative_to(SRC).as_posix(), k) for k in range(1, count + 1)}
    return found


#: Sites that issue no text of their own: a worker's warnings issued again by the job (datasets/workers.py), and
#: augment's --keep-identifiers warning, the constant expand issues too (both commands run in that case).
RELAYS = {("datasets/workers.py", 1), ("cli/augment.py", 1)}


def test_every_warning_site_has_a_case():
    assert _sites() - RELAYS == {c.site for c in CASES.values()}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, tuple[Path, list[str], Callable[[], object]]]:
    out = {}
    for name, case in CASES.items():
        folder = tmp_path_factory.mktemp(name)
        argv, api = case.setup(folder)
        out[name] = (folder, argv, api)
    return out


@pytest.fixture(scope="module")
def cli_results(folders) -> dict[str, dict]:
    """Every case's command line, run by child processes that behave as the ``medaug`` program."""
    results = {}
    for env_items in sorted({c.env for c in CASES.values()}):
        jobs = [{"id": n, "argv": folders[n][1]} for n, c in CASES.items() if c.env == env_items]
        proc = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps({"limit_bytes": 8 * 2**30, "jobs": jobs}),
                              capture_output=True, text=True, timeout=300, check=False,
                              env={**os.environ, **dict(env_items)})
        assert proc.returncode == 0, proc.stderr[-3000:]
        results.update({r["id"]: r for r in json.loads(proc.stdout)})
    return results


@pytest.mark.parametrize("name", list(CASES))
def test_cli_shows_one_warning_line(name, cli_results):
    case, result = CASES[name], cli_results[name]
    assert result["rc"] == 0, result["stderr"]
    lines = [ln for ln in result["stderr"].splitlines() if "warning" in ln]
    assert len(lines) == 1, result["stderr"]
    assert lines[0].startswith(f"medaug {case.command}: warning: ") and case.fragment in lines[0], lines[0]
    assert "Traceback" not in result["stderr"]


@pytest.mark.parametrize("name", list(CASES))
def test_api_issues_a_python_warning(name, folders):
    with pytest.warns(UserWarning, match=re.escape(CASES[name].fragment)):
        folders[name][2]()
