"""Privacy: identifiers in DICOM headers never reach outputs of augment or expand (byte scan of every file)."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medaug.cli.main import main

IDENTIFIERS = {
    "0010|0010": "Doe^Janet^Q",  # patient name
    "0010|0020": "PID-7731942",  # patient ID
    "0010|0030": "19530412",  # birth date
    "0008|0050": "ACC-55012387",  # accession number
    "0008|0080": "St Elsewhere General Hospital",  # institution
    "0008|0020": "20240917",  # study date
    "0008|0090": "Referrer^Gregory",  # referring physician
    "0009|0010": "PRIVATECREATORXYZ",  # a private creator
}


def write_identified_series(folder: Path, shape=(4, 12, 10)) -> None:
    folder.mkdir(parents=True)
    uid = "1.2.826.0.1.3680043.2.1125.1.77"
    hu = (np.arange(np.prod(shape)).reshape(shape) % 300 - 1000).astype("int16")
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetImageIO("GDCMImageIO")
    names = [f"s{i:02d}" for i in range(shape[0])]
    random.Random(2).shuffle(names)
    for k, name in enumerate(names):
        s = sitk.GetImageFromArray(hu[k : k + 1])
        s.SetSpacing((0.8, 0.8, 2.0))
        s.SetOrigin((0.0, 0.0, 2.0 * k))
        tags = {
            "0008|0060": "CT", "0020|000d": uid + ".1", "0020|000e": uid + ".2", "0008|0018": f"{uid}.3.{k}",
            "0020|0013": str(k + 1), "0020|0032": f"0\\0\\{2.0 * k}", "0020|0037": "1\\0\\0\\0\\1\\0",
            "0028|1052": "-1024", "0028|1053": "1", **IDENTIFIERS,
        }
        for tag, value in tags.items():
            s.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{name}.dcm"))
        writer.Execute(s)


def _scan(folder: Path) -> list[str]:
    """Every identifier found in any byte of any file under ``folder`` (names included)."""
    found = []
    needles = [v.encode() for v in IDENTIFIERS.values()] + [v.split("^")[0].encode() for v in IDENTIFIERS.values()]
    for p in folder.rglob("*"):
        blob = str(p.relative_to(folder)).encode()
        if p.is_file():
            data = p.read_bytes()
            blob += gzip.decompress(data) if p.name.endswith(".gz") else data  # look inside compressed files too
        found += [n.decode() for n in needles if n in blob]
    return found


def test_the_scan_finds_identifiers_where_they_are(tmp_path):
    write_identified_series(tmp_path / "case")
    assert set(_scan(tmp_path / "case")) >= {"PID-7731942", "19530412", "ACC-55012387"}
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "leak.txt.gz").write_bytes(gzip.compress(b"name Doe^Janet^Q"))
    assert "Doe^Janet^Q" in _scan(tmp_path / "z")


def test_augment_and_expand_outputs_hold_no_identifier(tmp_path, capsys):
    data = tmp_path / "dataset"
    write_identified_series(data / "images" / "case01")
    assert main(["augment", str(data / "images" / "case01"), "--preset", "ct-light", "-n", "2", "-o", str(tmp_path / "aug")]) == 0
    assert main(["expand", str(data), str(tmp_path / "exp"), "--preset", "ct-light", "-n", "2", "--quiet"]) == 0
    capsys.readouterr()
    for out in (tmp_path / "aug", tmp_path / "exp"):
        assert list(out.rglob("*.nii.gz")), "no image was written"
        assert _scan(out) == []
