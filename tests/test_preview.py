"""Preview pictures: layout, orientation, and augmented tiles that differ from the original."""

from __future__ import annotations

import numpy as np
import pytest

import medaug
from medaug.preview.figures import describe_history, preview, to_lps

PIPE = [{"RandomAffine": {"rotation": 10, "scale": [0.9, 1.1]}}, {"RandomNoise": {"std": [5, 20]}}]


def _read_png(path):
    import matplotlib.image as mpimg

    return mpimg.imread(path)


@pytest.mark.parametrize("ndim", [2, 3])
def test_preview_layout_and_tiles_differ(tmp_path, ndim):
    s = medaug.shepp_logan_3d(32, spacing=(1.0, 1.0, 2.0)) if ndim == 3 else medaug.shepp_logan_2d(48)
    p = medaug.pipeline_from_config(PIPE, fill=-1000.0)
    outs = [p(s, seed=i) for i in range(3)]
    path = preview(s, outs, tmp_path / "p.png", modality="ct")
    img = _read_png(path)
    cols = 4 if ndim == 3 else 2  # three planes + deformation, or the slice + deformation
    assert img.shape[1] == pytest.approx(2.6 * cols * 90, rel=0.02)
    assert img.shape[0] == pytest.approx((2.6 * 4 + 0.4) * 90, rel=0.02)
    rows = np.array_split(img[40:], 4, axis=0)
    assert not np.allclose(rows[0], rows[1])


def test_to_lps_undoes_a_flipped_direction():
    arr = np.arange(24, dtype=float).reshape(2, 3, 4)
    g = medaug.Grid(arr.shape, direction=np.diag([-1.0, 1.0, 1.0]))
    out, spacing = to_lps(arr, g)
    np.testing.assert_array_equal(out, arr[:, :, ::-1])
    perm = medaug.Grid(arr.shape, spacing=(1.0, 2.0, 3.0), direction=np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1.0]]))
    out, spacing = to_lps(arr, perm)
    assert out.shape == (2, 4, 3) and spacing.tolist() == [3.0, 1.0, 2.0]


def test_titles_give_short_parameters():
    s = medaug.shepp_logan_2d(32)
    out = medaug.pipeline_from_config([{"RandomAffine": {"rotation": 10}}, {"RandomGamma": {"log_gamma": 0.3}}])(s, seed=1)
    text = describe_history(out.history)
    assert text.startswith("rot ") and "°" in text and "γ" in text


def test_preview_cli(tmp_path, capsys):
    from medaug.cli.main import main

    s = medaug.shepp_logan_3d(32)
    medaug.save(s["image"], tmp_path / "ct.nii.gz")
    medaug.save(s["label"], tmp_path / "seg.nii.gz")
    cfg = tmp_path / "p.yaml"
    cfg.write_text("- RandomAffine: {rotation: 8}\n- RandomElastic: {control_points: 5, max_displacement: 3}\n")
    code = main(["preview", str(tmp_path / "ct.nii.gz"), "--label", str(tmp_path / "seg.nii.gz"), "--config", str(cfg),
                 "-n", "2", "-o", str(tmp_path / "out.png"), "--modality", "ct"])
    assert code == 0 and (tmp_path / "out.png").stat().st_size > 10_000
