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
    rows = np.array_split(img[64:], 4, axis=0)
    assert not np.allclose(rows[0], rows[1])


@pytest.mark.parametrize("size, tile", [(48, 192), (300, 300), (800, 512)])
def test_tiles_are_at_least_native_size_within_a_readable_limit(tmp_path, size, tile):
    s = medaug.shepp_logan_2d(size)
    img = _read_png(preview(s, [s], tmp_path / "p.png", modality="ct"))
    left, gap, right, top, bottom = 230, 12, 170, 64, 16  # the layout's margins (pixels)
    assert img.shape[1] == left + 2 * tile + gap + right  # the slice and the deformation column
    assert img.shape[0] == top + 2 * tile + gap + bottom


@pytest.fixture()
def drawn(monkeypatch):
    """The matplotlib figures preview() saves."""
    import matplotlib.figure

    figures = []
    save = matplotlib.figure.Figure.savefig

    def keep(self, *args, **kwargs):
        figures.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    return figures


def test_legend_colour_bar_and_orientation_letters(tmp_path, drawn):
    s = medaug.shepp_logan_3d(32)
    preview(s, [s], tmp_path / "p.png", modality="ct")
    fig = drawn[-1]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [f"label {v}" for v in s.label.label_values() if v]
    assert any(ax.get_ylabel() == "HU" for ax in fig.axes)  # the colour bar
    letters = {ax.get_title(): sorted(t.get_text() for t in ax.texts) for ax in fig.axes if ax.texts}
    assert letters == {"sagittal": ["A", "I", "P", "S"], "coronal": ["I", "L", "R", "S"], "axial": ["A", "L", "P", "R"]}


def test_a_radiograph_gets_no_axial_letters_and_mri_its_unit(tmp_path, drawn):
    s = medaug.shepp_logan_2d(32)
    preview(s, [s], tmp_path / "x.png", modality="xray")
    assert not any(ax.texts for ax in drawn[-1].axes)
    preview(s, [s], tmp_path / "m.png", modality="mri")
    assert any(ax.get_ylabel() == "signal (arbitrary units)" for ax in drawn[-1].axes)
    assert sorted(t.get_text() for ax in drawn[-1].axes for t in ax.texts) == ["A", "L", "P", "R"]


def test_the_deformation_of_a_small_volume_is_drawn_as_lines(tmp_path, drawn):
    from medaug.data.sample_data import anatomical_mri

    s = medaug.Sample(image=anatomical_mri())
    out = medaug.Compose([medaug.Affine(rotation=[0, 0, 10])])(s, seed=0)
    preview(s, [out], tmp_path / "p.png", modality="mri")
    deformation = [ax for ax in drawn[-1].axes if ax.get_title().startswith("deformation")][0]
    (pattern,) = deformation.images  # the inside of the grid, drawn flat: the lines are contours on top
    assert np.unique(pattern.get_array()).tolist() == [1.0]
    assert len(deformation.collections) == 2  # lines of constant x and of constant y


def test_the_mri_window_does_not_saturate_white_matter():
    from medaug.data.sample_data import anatomical_mri
    from medaug.preview.figures import window_for

    image = anatomical_mri()
    lo, hi = window_for(image, "mri")
    brain = image.array[image.array > np.percentile(image.array, 60)]  # white and grey matter of the T1 head
    assert (brain >= hi).mean() < 0.02  # white at the top of the window: scalp fat and vessels, not tissue
    assert (np.percentile(brain, 90) - lo) / (hi - lo) < 0.9  # the bright white matter still below white


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
