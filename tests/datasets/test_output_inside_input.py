"""No job writes among its inputs, and a dataset read never takes a medaug output folder for a case.

``medaug augment data/images/ct.nii.gz -o data/images`` (or ``-o data``) used to
write ``images/`` and ``labels/`` sub-folders beside the source, which a later
``read_cases(data)`` read as DICOM series cases.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import medaug
from medaug.cli.main import main
from medaug.datasets.discover import read_cases
from medaug.errors import ParameterError

from ..corpus.make_corpus import _dicom_series


def _dataset(root: Path, n: int = 2) -> Path:
    (root / "images").mkdir(parents=True)
    for i in range(n):
        s = medaug.shepp_logan_2d(16, seed=i)
        medaug.save(s["image"].with_data(np.asarray(s["image"].array * 100, np.uint8)), root / "images" / f"c{i}.png")
    return root


def _augment(image: Path, out: Path, *extra: str) -> list[str]:
    return ["augment", str(image), "--preset", "xray", "-n", "1", "-o", str(out), *extra]


@pytest.mark.parametrize("where", ["images", "root"])
def test_augment_refuses_to_write_among_its_input(tmp_path, capsys, where):
    data = _dataset(tmp_path / "data")
    image = data / "images" / "c0.png"
    out = data / "images" if where == "images" else data  # -o data writes data/images/: beside the source
    before = sorted(p.name for p in (data / "images").iterdir())
    assert main(_augment(image, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out.resolve()) in err[0] and str(image.resolve()) in err[0], err
    assert "never writes among its inputs" in err[0]
    assert sorted(p.name for p in (data / "images").iterdir()) == before
    assert [c.case_id for c in read_cases(data)] == ["c0", "c1"]


def test_augment_refuses_an_output_inside_a_dicom_series_folder(tmp_path, capsys):
    series = tmp_path / "series"
    _dicom_series(series, n=4)
    for out in (series, series / "aug"):
        assert main(_augment(series, out)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"the output folder {out.resolve()} is inside the input {series.resolve()}" in err[0]
    assert not (series / "aug").exists() and not (series / "manifest.csv").exists()


def test_register_refuses_the_folder_of_its_inputs(tmp_path, capsys):
    s = medaug.shepp_logan_3d(16, seed=0)
    medaug.save(s["image"], tmp_path / "fixed.nii.gz")
    medaug.save(s["image"], tmp_path / "moved.nii.gz")  # 'medaug register -o .' would overwrite it with its result
    assert main(["register", str(tmp_path / "fixed.nii.gz"), str(tmp_path / "moved.nii.gz"), "-o", str(tmp_path)]) == 2
    assert "is the folder of the input" in capsys.readouterr().err


def test_an_output_beside_the_input_is_allowed_and_not_read_as_a_case(tmp_path, capsys):
    data = _dataset(tmp_path / "data")
    aug = data / "images" / "aug"  # beside the source image, inside the dataset's images/
    assert main(_augment(data / "images" / "c0.png", aug)) == 0
    capsys.readouterr()
    assert (aug / "manifest.csv").is_file()
    assert [c.case_id for c in read_cases(data)] == ["c0", "c1"]  # 'aug' is no DICOM series case


def test_expand_and_learn_outputs_among_the_images_are_skipped(tmp_path):
    data = _dataset(tmp_path / "data")
    for name in ("expanded", "fields"):
        (data / "images" / name / ".medaug").mkdir(parents=True)
    (data / "images" / "series").mkdir()  # a folder that is not a medaug output stays a (DICOM) case
    (data / "images" / "series" / "manifest.csv").write_text("name,value\n", encoding="utf-8")
    assert [c.case_id for c in read_cases(data)] == ["c0", "c1", "series"]


def test_check_outside_inputs_rules(tmp_path):
    from medaug.datasets.jobs import check_outside_inputs, is_medaug_output

    data = _dataset(tmp_path / "data")
    image = data / "images" / "c0.png"
    check_outside_inputs(tmp_path / "out", [data, image, None], writes=("images",))  # beside: fine
    check_outside_inputs(data / "images" / "aug", [image], writes=("images",))  # inside the image's folder: fine
    with pytest.raises(ParameterError, match="is inside the input"):
        check_outside_inputs(data / "sub", [data])
    with pytest.raises(ParameterError, match="is inside the input"):
        check_outside_inputs(data, [data])
    with pytest.raises(ParameterError, match="would write its images/ into"):
        check_outside_inputs(data, [image], writes=("images", "labels"))
    assert not is_medaug_output(data / "images")
