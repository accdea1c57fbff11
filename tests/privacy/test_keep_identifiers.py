"""``--keep-identifiers``: an explicit opt-in copies exactly the documented DICOM fields, with a warning.

Default (no option): nothing from a DICOM header reaches the outputs
(``test_no_identifiers.py`` byte-scans them) and the manifest has no identifier
column.  With the option: one warning line on stderr; the manifest gets
``patient_id``, ``study_date``, ``study_uid``, ``series_uid``; NIfTI outputs get
``PatientID=... StudyDate=...`` in their ``descrip`` header field; MetaImage and
NRRD outputs one header field per identifier.  Names, birth date, accession
number, institution, physicians and private tags are never copied.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from medaug.cli.main import main
from medaug.data.identifiers import IDENTIFIER_COLUMNS, KEEP_IDENTIFIERS_WARNING, header_fields, read_identifiers
from medaug.datasets.expand import ExpandJob, run_expand
from medaug.datasets.writing import MANIFEST_COLUMNS
from medaug.errors import JobError

from .test_no_identifiers import IDENTIFIERS, _scan, write_identified_series

UID = "1.2.826.0.1.3680043.2.1125.1.77"
KEPT = {"patient_id": "PID-7731942", "study_date": "20240917", "study_uid": UID + ".1", "series_uid": UID + ".2"}
NEVER = {v for k, v in IDENTIFIERS.items() if k not in ("0010|0020", "0008|0020")}


def _manifest(folder: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (folder / "manifest.csv").open(newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture
def dataset(tmp_path) -> Path:
    data = tmp_path / "dataset"
    write_identified_series(data / "images" / "case01")
    return data


def test_read_identifiers_from_a_series_and_nothing_from_other_files(dataset, tmp_path):
    assert read_identifiers(dataset / "images" / "case01") == KEPT
    assert read_identifiers(min((dataset / "images" / "case01").iterdir())) == KEPT
    other = tmp_path / "x.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((2, 3, 4), np.int16)), str(other))
    assert read_identifiers(other) == {} and read_identifiers(tmp_path / "missing.dcm") == {}


def test_header_fields_per_format():
    assert header_fields(KEPT, "a.nii.gz") == {"ITK_FileNotes": "PatientID=PID-7731942 StudyDate=20240917"}
    assert header_fields(KEPT, "a.mha") == {"PatientID": "PID-7731942", "StudyDate": "20240917",
                                            "StudyInstanceUID": UID + ".1", "SeriesInstanceUID": UID + ".2"}
    long_id = {"patient_id": "P" * 64, "study_date": "20240917"}  # the longest DICOM PatientID: the date no longer fits
    assert header_fields(long_id, "a.nii") == {"ITK_FileNotes": "PatientID=" + "P" * 64}
    assert header_fields(KEPT, "a.png") == {} and header_fields({}, "a.nii.gz") == {}


def test_default_writes_no_identifier_column(dataset, tmp_path, capsys):
    assert main(["expand", str(dataset), str(tmp_path / "exp"), "--preset", "ct-light", "-n", "1", "--quiet"]) == 0
    assert "keep-identifiers" not in capsys.readouterr().err
    assert _manifest(tmp_path / "exp")[0] == MANIFEST_COLUMNS
    assert _scan(tmp_path / "exp") == []


def test_keep_identifiers_copies_exactly_the_documented_fields(dataset, tmp_path, capsys):
    case = dataset / "images" / "case01"
    for argv in (["augment", str(case), "--preset", "ct-light", "-n", "2", "-o", str(tmp_path / "aug")],
                 ["expand", str(dataset), str(tmp_path / "exp"), "--preset", "ct-light", "-n", "2", "--quiet"]):
        with pytest.warns(UserWarning) as caught:  # the program shows it as one line (tests/cli/test_warnings.py)
            assert main([*argv, "--keep-identifiers"]) == 0
        assert [str(w.message) for w in caught] == [KEEP_IDENTIFIERS_WARNING]
        assert KEEP_IDENTIFIERS_WARNING.startswith("--keep-identifiers: patient identifiers from the DICOM headers")
        assert capsys.readouterr().err == ""

    for out in (tmp_path / "aug", tmp_path / "exp"):
        columns, rows = _manifest(out)
        assert columns == MANIFEST_COLUMNS + IDENTIFIER_COLUMNS
        assert len(rows) == 2 and all({c: r[c] for c in IDENTIFIER_COLUMNS} == KEPT for r in rows)
        images = sorted((out / "images").glob("*.nii.gz"))
        assert len(images) == 2
        for p in images:
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(p))
            reader.ReadImageInformation()
            assert reader.GetMetaData("descrip") == "PatientID=PID-7731942 StudyDate=20240917"
        found = set(_scan(out))
        assert {"PID-7731942", "20240917"} <= found
        assert not found & NEVER, f"copied although never kept: {found & NEVER}"


def test_api_option_and_resume_rules(dataset, tmp_path):
    out = tmp_path / "exp"
    job = ExpandJob(str(dataset), str(out), [{"RandomNoise": {"std": [0, 5]}}], n=1, keep_identifiers=True)
    with pytest.warns(UserWarning, match="--keep-identifiers"):
        run_expand(job, progress=False)
    columns, rows = _manifest(out)
    assert columns[-4:] == IDENTIFIER_COLUMNS and rows[0]["patient_id"] == "PID-7731942"
    # resuming the folder without the option would mix outputs with and without identifiers: refused
    job.keep_identifiers = False
    with pytest.raises(JobError, match="different expansion job"):
        run_expand(job, progress=False)
