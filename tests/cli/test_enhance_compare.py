"""``medaug enhance`` and ``medaug compare`` as a new user runs them on the sample data."""

from __future__ import annotations

import json

import numpy as np
import pytest

import medaug
from medaug.cli.main import main
from medaug.data.sample_data import sample_paths


def run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def ct_path():
    return sample_paths()["ct_small"]


@pytest.fixture
def mr_path(tmp_path):
    """A small MR-like phantom with a bias field, as a NIfTI file."""
    s = medaug.shepp_logan_2d(96, seed=0, spacing=(0.9, 1.2))
    lab = s["label"].array
    clean = np.choose(lab, [0.0, 300.0, 600.0, 250.0, 700.0]).astype(np.float32)
    yy, xx = np.mgrid[-1:1:96j, -1:1:96j]
    img = s["image"].with_data((clean * np.exp(0.4 * xx + 0.3 * yy)).astype(np.float32))
    path = tmp_path / "mr.nii.gz"
    medaug.save(img, path)
    return path


@pytest.mark.parametrize(
    "extra",
    [
        ["--method", "clahe", "--clip-limit", "0.02", "--tiles", "4"],
        ["--method", "clahe", "--lo", "-160", "--hi", "240"],
        ["--method", "denoise"],
        ["--method", "denoise", "--denoiser", "nlm", "--patch-size", "3"],
        ["--method", "denoise", "--denoiser", "bilateral", "--sigma-mm", "1.5"],
        ["--method", "unsharp", "--sigma-mm", "1.0", "--amount", "0.8"],
    ],
)
def test_enhance_ct_small_keeps_geometry_and_dtype(capsys, tmp_path, ct_path, extra):
    out_path = tmp_path / "out.nii.gz"
    code, out, err = run(capsys, "enhance", ct_path, out_path, *extra)
    assert code == 0, err
    assert len(out.strip().splitlines()) == 1 and out.startswith(str(out_path)) and " s\n" in out
    src, res = medaug.load(ct_path), medaug.load(out_path)
    assert res.grid.same_as(src.grid) and res.dtype == src.dtype
    assert not np.array_equal(res.array, src.array)


def test_enhance_n4_json_and_save_field(capsys, tmp_path, mr_path):
    out_path, field_path = tmp_path / "n4.nii.gz", tmp_path / "field.nii.gz"
    code, out, err = run(
        capsys, "enhance", mr_path, out_path, "--method", "n4", "--shrink", "2", "--iterations", "30,30,30",
        "--save-field", field_path, "--json",
    )
    assert code == 0, err
    rep = json.loads(out)
    assert rep["method"] == "n4" and rep["parameters"]["iterations"] == [30, 30, 30] and rep["field"] == str(field_path)
    assert rep["seconds"] > 0 and rep["shape"] == [96, 96]
    src, res, field = medaug.load(mr_path), medaug.load(out_path), medaug.load(field_path)
    assert res.grid.same_as(src.grid) and field.grid.same_as(src.grid)
    brain = src.array > 0
    np.testing.assert_allclose(res.array[brain] * field.array[brain], src.array[brain], rtol=1e-4)
    # the float32 flag on an integer image
    code, out, err = run(capsys, "enhance", sample_paths()["mr_small"], tmp_path / "mr.mha", "--method", "n4", "--float32")
    assert code == 0, err
    assert medaug.load(tmp_path / "mr.mha").dtype == np.float32


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "n4"], "positive intensities"),  # CT in HU
        (["--method", "clahe", "--shrink", "2"], "--shrink applies to --method n4"),
        (["--method", "denoise", "--strength", "3"], "--strength applies to --denoiser nlm"),
        (["--method", "clahe", "--tiles", "a,b"], "--tiles must be integers"),
        (["--method", "clahe", "--clip-limit", "3"], "clip_limit"),
    ],
)
def test_enhance_errors_are_one_line_exit_2(capsys, tmp_path, ct_path, args, message):
    code, out, err = run(capsys, "enhance", ct_path, tmp_path / "x.nii.gz", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "x.nii.gz").exists()


def test_enhance_bad_output_and_missing_input(capsys, tmp_path, ct_path):
    code, _, err = run(capsys, "enhance", ct_path, tmp_path / "x.dcm", "--method", "clahe")
    assert code == 2 and "cannot write" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "enhance", tmp_path / "none.nii.gz", tmp_path / "x.nii.gz", "--method", "clahe")
    assert code == 2 and "file not found" in err
    with pytest.raises(SystemExit) as exc:
        main(["enhance", str(ct_path), str(tmp_path / "x.nii.gz"), "--method", "sharpen"])
    assert exc.value.code == 2


def test_compare_images_text_and_json(capsys, tmp_path, ct_path):
    code, out, _ = run(capsys, "compare", ct_path, ct_path)
    assert code == 0 and out.startswith("PSNR inf dB (identical images; data range 2063, A max - min)") and "SSIM 1.0000" in out
    dn = tmp_path / "dn.nii.gz"
    assert run(capsys, "enhance", ct_path, dn, "--method", "denoise", "--denoiser", "nlm")[0] == 0
    code, out, _ = run(capsys, "compare", ct_path, dn, "--json")
    m = json.loads(out)
    assert m["kind"] == "image" and 30 < m["psnr"] < 80 and 0.9 < m["ssim"] < 1 and m["data_range"] == 2063.0
    code, out, _ = run(capsys, "compare", ct_path, ct_path, "--json", "--data-range", "4000")
    m = json.loads(out)
    assert m["psnr"] == "inf" and m["data_range"] == 4000.0 and m["data_range_source"] == "given"


def test_compare_labels_per_value(capsys, tmp_path):
    s = medaug.shepp_logan_3d(24, seed=0, spacing=(1.0, 1.0, 2.0))
    a, b = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    medaug.save(s["label"], a)
    moved = s["label"].with_data(np.roll(s["label"].array, 3, axis=2))  # 3 voxels (3 mm) along x
    medaug.save(moved, b)
    code, out, _ = run(capsys, "compare", a, b, "--labels")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].split()[:3] == ["label", "dice", "iou"] and len(lines) == 5
    code, out, _ = run(capsys, "compare", a, b, "--labels", "--json", "--label", "4", "--label", "2")
    m = json.loads(out)
    assert m["kind"] == "labels" and sorted(m["labels"]) == ["2", "4"] and m["spacing"] == [1.0, 1.0, 2.0]
    assert 0.5 < m["labels"]["2"]["dice"] < 1 and m["labels"]["2"]["hausdorff_mm"] == 3.0
    assert m["labels"]["4"]["hausdorff_mm"] == 3.0 and m["labels"]["4"]["hd95_mm"] <= 3.0


def test_compare_errors(capsys, tmp_path, ct_path):
    img = medaug.load(ct_path)
    other = tmp_path / "other.nii.gz"
    medaug.save(medaug.Image(img.array, spacing=(1.0, 1.0)), other)
    code, _, err = run(capsys, "compare", ct_path, other)
    assert code == 2 and "not on the same grid" in err and "spacing differs" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "compare", ct_path, ct_path, "--labels")
    assert code == 2 and "negative values" in err  # CT in HU is not a label map
    code, _, err = run(capsys, "compare", ct_path, ct_path, "--label", "1")
    assert code == 2 and "--labels" in err
