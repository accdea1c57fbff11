"""The command line as a user runs it: help, info, augment, presets, check; errors are one line, exit 2."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import medaug
from medaug.cli.main import main
from medaug.data.sample_data import sample_paths


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_commands(capsys):
    code, out, _ = run(capsys)
    assert code == 0 and "info" in out and "augment" in out and "presets" in out


def test_info_on_dicom_nifti_and_png(capsys, tmp_path):
    code, out, _ = run(capsys, "info", str(sample_paths()["ct_small"]))
    assert code == 0 and "spacing:   (0.661468, 0.661468) mm" in out and "int16" in out
    s = medaug.shepp_logan_3d(20, spacing=(1.0, 1.0, 2.5))
    medaug.save(s["image"], tmp_path / "p.nii.gz")
    code, out, _ = run(capsys, "info", str(tmp_path / "p.nii.gz"), "--json")
    info = json.loads(out)
    assert info["size"] == [20, 20, 20] and info["spacing"] == [1.0, 1.0, 2.5]
    img = medaug.Image((s["label"].array[10] * 50).astype("uint8"), spacing=(0.5, 0.5))
    medaug.save(img, tmp_path / "x.png")
    code, out, _ = run(capsys, "info", str(tmp_path / "x.png"))
    assert code == 0 and "(0.5, 0.5) mm" in out


def test_errors_are_one_line_exit_2(capsys, tmp_path):
    code, out, err = run(capsys, "info", str(tmp_path / "missing.nii.gz"))
    assert code == 2 and "missing.nii.gz" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not an image at all" * 10)
    code, _, err = run(capsys, "info", str(bad))
    assert code == 2 and "bad.nii.gz" in err


def test_augment_writes_copies_in_source_format_with_manifest(capsys, tmp_path):
    s = medaug.shepp_logan_3d(24, seed=0)
    img = s["image"].with_data(s["image"].array.astype("int16"))
    medaug.save(img, tmp_path / "ct.nii.gz")
    medaug.save(s["label"], tmp_path / "ct_seg.nii.gz")
    code, out, err = run(capsys, "augment", str(tmp_path / "ct.nii.gz"), "--label", str(tmp_path / "ct_seg.nii.gz"),
                         "--preset", "ct-light", "-n", "3", "--seed", "1", "-o", str(tmp_path / "out"))
    assert code == 0, err
    with (tmp_path / "out" / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and json.loads(rows[0]["params"])[1]["name"] == "Affine"
    for r in rows:
        im = medaug.load(tmp_path / "out" / r["output_image"])
        lab = medaug.load(tmp_path / "out" / r["output_label"], label=True)
        assert im.dtype == "int16" and lab.dtype == "uint8"
        assert im.grid.same_as(img.grid)
        assert set(lab.label_values()) <= set(s["label"].label_values())


def test_counts_in_messages_agree_with_their_noun(capsys, tmp_path):
    medaug.save(medaug.Image(np.full((12, 12), 100, np.uint8)), tmp_path / "x.png")
    for n, text in (("1", "wrote 1 augmented copy of x"), ("2", "wrote 2 augmented copies of x")):
        code, out, err = run(capsys, "augment", str(tmp_path / "x.png"), "--preset", "xray", "-n", n, "-o",
                             str(tmp_path / f"out{n}"))
        assert code == 0 and text in out, out + err
    (tmp_path / "one.yaml").write_text("- RandomFlip: {axes: [0]}\n", encoding="utf-8")
    code, out, _ = run(capsys, "check", str(tmp_path / "one.yaml"), "--modality", "xray")
    assert code == 0 and "(1 transform, 0 warning(s))" in out, out


def test_presets_and_check(capsys, tmp_path):
    code, out, _ = run(capsys, "presets")
    assert code == 0 and "ct  (modality ct" in out and "RandomAffine" in out
    code, out, _ = run(capsys, "presets", "ct", "--yaml")
    assert code == 0 and "modality: ct" in out
    code, out, err = run(capsys, "check", "--preset", "ct")
    assert code == 0 and "OK for CT" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("- RandomAffine: {rotation: 30}\n- RandomContrast: {scale: 0.5}\n")
    code, out, err = run(capsys, "check", str(bad), "--modality", "ct")
    assert code == 1
    assert "RandomAffine.rotation = 30 exceeds the CT limit 10" in err
    assert "RandomContrast: not allowed for CT" in err


def test_console_script_help_is_fast():
    """CPU seconds of the child (its work, whatever the machine's load; the wall time varied 2-36 s under load)."""
    import resource

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    c0 = cpu()
    proc = subprocess.run([sys.executable, "-m", "medaug.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "COMMAND" in proc.stdout
    assert cpu() - c0 < 10


def test_info_on_a_dicom_series_folder(capsys, tmp_path):
    import numpy as np

    from ..data.test_io import write_dicom_series

    hu = (np.arange(4 * 6 * 5).reshape(4, 6, 5) * 3 - 1000).astype("int16")
    write_dicom_series(tmp_path / "series", hu, spacing=(0.7, 0.8, 2.5), origin=(10.0, 20.0, 30.0))
    code, out, _ = run(capsys, "info", str(tmp_path / "series"), "--json")
    info = json.loads(out)
    assert code == 0 and info["size"] == [5, 6, 4]
    assert info["spacing"] == pytest.approx([0.7, 0.8, 2.5]) and info["origin"] == pytest.approx([10.0, 20.0, 30.0])
    assert info["min"] == -1000 and info["max"] == hu.max()


def test_a_closed_pipe_ends_the_command_quietly():
    """'medaug presets | head -c 10': the reader has gone before medaug writes (it was exit 3, 'internal error')."""
    import os

    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "medaug.cli", "presets"], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=60, check=False)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")


def test_errors_raised_while_applying_a_pipeline_name_the_image_and_the_config(capsys, tmp_path):
    s = medaug.shepp_logan_3d(16, seed=0)
    medaug.save(s["image"], tmp_path / "img.nii.gz")
    (tmp_path / "crop.yaml").write_text("- CropToLabel: {}\n")
    for command in ("augment", "preview"):
        out = tmp_path / ("out" if command == "augment" else "p.png")
        code, _, err = run(capsys, command, str(tmp_path / "img.nii.gz"), "--config", str(tmp_path / "crop.yaml"),
                           "-n", "1", "-o", str(out))
        assert code == 2 and err.startswith(f"medaug {command}: error: ")
        assert "img.nii.gz: CropToLabel needs a label map" in err and f"(pipeline {tmp_path / 'crop.yaml'})" in err


def test_learn_deformations_with_one_case_names_the_dataset(capsys, tmp_path):
    (tmp_path / "ds" / "images").mkdir(parents=True)
    medaug.save(medaug.shepp_logan_2d(32).image, tmp_path / "ds" / "images" / "a.nii.gz")
    code, _, err = run(capsys, "learn-deformations", str(tmp_path / "ds"), str(tmp_path / "out"), "--quiet")
    assert code == 2 and err.strip() == f"medaug learn-deformations: error: {tmp_path / 'ds'}: learning deformations " \
                                         "needs at least two cases"


def test_python_dash_m_medaug_is_the_command_line():
    done = subprocess.run([sys.executable, "-m", "medaug", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("medaug "), done.stdout
