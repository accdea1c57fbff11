"""Registration recovers known deformations; learned fields keep labels and never fold."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import medaug
from medaug.engine.compose import Compose
from medaug.engine.warp import compose
from medaug.errors import InvalidImageError, ParameterError
from medaug.registration import DisplacementField, load_field, register, save_field
from medaug.spatial import ElasticBSpline, LearnedDeformation, RandomLearnedDeformation


def textured_phantom(n: int, seed: int = 1, ndim: int = 3) -> medaug.Sample:
    """A head phantom with smooth texture inside the head (real anatomy is not piecewise constant)."""
    s = medaug.shepp_logan_3d(n, seed=seed) if ndim == 3 else medaug.shepp_logan_2d(n, seed=seed)
    tex = gaussian_filter(np.random.default_rng(seed).normal(size=s.image.shape), 2.0)
    tex *= 60.0 / tex.std()
    img = (s.image.array + tex * (s.label.array > 0)).astype(np.float32)
    return s.replace({"image": s.image.with_data(img)})


def _recovery_error(fixed: medaug.Sample, true: ElasticBSpline, result) -> tuple[float, float]:
    """Mean |T_est - T_true| over the object, in mm, and the mean true displacement."""
    g = fixed.grid
    idx = np.argwhere(fixed.label.array > 0)
    pts = g.index_to_physical(idx[:, ::-1].astype(float))
    t_true = compose([true.warp(g, g)]).forward(pts)  # moving = fixed ∘ W, so registration finds W⁻¹
    n = g.ndim
    a = result.affine
    t_est = (pts + result.deformable.evaluate(pts)) @ a[:n, :n].T + a[:n, n]
    return float(np.linalg.norm(t_est - t_true, axis=1).mean()), float(np.linalg.norm(t_true - pts, axis=1).mean())


@pytest.fixture(scope="module")
def pair3d():
    fixed = textured_phantom(48)
    true = ElasticBSpline(control_points=5, max_displacement=4.5, seed=3)
    moving = Compose([true], fill="background")(fixed)
    result = register(fixed, moving, time_limit=120)
    return fixed, moving, true, result


def test_known_smooth_deformation_is_recovered_3d(pair3d):
    fixed, _, true, result = pair3d
    err, moved = _recovery_error(fixed, true, result)
    assert moved > 1.0  # the test deformation is not trivial
    assert err < 1.0  # mean error under one voxel (1 mm spacing) inside the object
    assert err < 0.6 * moved
    rep = result.report
    assert rep.ncc_after > rep.ncc_before
    assert rep.folds == 0 and rep.usable and rep.jacobian_min > 0
    assert rep.method == "demons" and rep.metric == "correlation"


def test_known_deformation_recovered_2d_anisotropic():
    s = medaug.shepp_logan_2d((96, 64), seed=2, spacing=(1.5, 1.0))
    tex = gaussian_filter(np.random.default_rng(2).normal(size=s.image.shape), 2.0)
    fixed = s.replace({"image": s.image.with_data((s.image.array + 60 * tex / tex.std() * (s.label.array > 0)).astype(np.float32))})
    true = ElasticBSpline(control_points=5, max_displacement=5.0, seed=5)
    moving = Compose([true], fill="background")(fixed)
    result = register(fixed, moving, time_limit=60)
    err, moved = _recovery_error(fixed, true, result)
    assert moved > 1.0 and err < 1.0


def test_bspline_method_also_registers():
    fixed = textured_phantom(32, ndim=2)
    true = ElasticBSpline(control_points=5, max_displacement=3.0, seed=4)
    moving = Compose([true], fill="background")(fixed)
    result = register(fixed, moving, deformable="bspline", metric="mattes", time_limit=60)
    err, moved = _recovery_error(fixed, true, result)
    assert result.report.method == "bspline"
    assert err < moved  # better than doing nothing
    assert result.report.ncc_after > result.report.ncc_before


def test_time_limit_stops_and_reports(pair3d):
    fixed, moving, _, _ = pair3d
    result = register(fixed, moving, time_limit=0.05)
    assert result.report.stopped_early
    assert result.report.seconds < 5  # every pyramid level stops at the deadline, not just the first


def test_transfer_a_segmentation_keeps_label_values(pair3d):
    fixed, moving, _, result = pair3d
    out = result.transfer(moving)
    assert out.grid.same_as(fixed.grid)
    assert set(out.label.label_values()) <= set(moving.label.label_values())
    dice_before = _dice(moving.label.array == 3, fixed.label.array == 3)
    dice_after = _dice(out.label.array == 3, fixed.label.array == 3)
    assert dice_after > dice_before


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_field_file_round_trip_and_itk_convention(tmp_path, pair3d):
    import SimpleITK as sitk

    _, _, _, result = pair3d
    path = tmp_path / "b.nii.gz"
    save_field(result.deformable, path)
    back = load_field(path)
    assert back.grid.same_as(result.deformable.grid)
    np.testing.assert_allclose(back.data, result.deformable.data, atol=1e-4)
    # ITK reads it as a transform with the same meaning: x -> x + b(x)
    tx = sitk.DisplacementFieldTransform(sitk.Cast(sitk.ReadImage(str(path)), sitk.sitkVectorFloat64))
    p = back.grid.index_to_physical(np.array([[10.0, 12.0, 14.0]]))[0]  # a grid point: no interpolation
    np.testing.assert_allclose(np.asarray(tx.TransformPoint(tuple(p))), p + back.evaluate(p[None])[0], atol=1e-3)
    saved = result.save(tmp_path / "reg")
    assert load_field(saved["field"]).grid.same_as(result.deformable.grid)


def test_learned_field_on_a_third_case_keeps_labels_and_never_folds(tmp_path, pair3d):
    _, _, _, result = pair3d
    path = tmp_path / "field.nii.gz"
    save_field(result.deformable.scaled(3.0), path)  # exaggerated: forces the Jacobian guard to act
    third = medaug.shepp_logan_3d(40, seed=7, spacing=(1.2, 1.1, 1.3))
    rnd = RandomLearnedDeformation(fields=[str(path)], scale=[0.5, 1.0], min_jacobian=0.3)
    for seed in range(6):
        out = Compose([rnd])(third, seed=seed)
        rec = out.history[1]["params"]
        applied = load_field(path).jacobian_determinant(rec["scale"])
        assert applied.min() >= 0.3  # the scale actually applied keeps every Jacobian above the bound
        assert set(out.label.label_values()) <= set(third.label.label_values())
        assert out.grid.same_as(third.grid)


def test_scale_zero_is_identity(tmp_path, pair3d):
    _, _, _, result = pair3d
    path = tmp_path / "field.nii.gz"
    save_field(result.deformable, path)
    third = medaug.shepp_logan_3d(32, seed=3)
    out = Compose([LearnedDeformation(field=str(path), scale=0.0)])(third)
    np.testing.assert_array_equal(out.image.array, third.image.array)
    np.testing.assert_array_equal(out.label.array, third.label.array)


def test_learned_deformation_fuses_with_affine_in_one_resampling(tmp_path, pair3d):
    _, _, _, result = pair3d
    path = tmp_path / "field.nii.gz"
    save_field(result.deformable, path)
    third = medaug.shepp_logan_3d(32, seed=3)
    pipe = medaug.pipeline_from_config([
        {"RandomAffine": {"rotation": 5}},
        {"RandomLearnedDeformation": {"fields": [str(path)], "scale": [0.3, 1.0]}},
        {"RandomGamma": {"log_gamma": 0.1}},
    ])
    out = pipe(third, seed=1)
    assert [h["name"] for h in out.history[1:3]] == ["Affine", "LearnedDeformation"]
    assert "resampling" in out.metadata  # one resampling record for the fused run
    replayed = medaug.replay(out.history)(third)
    np.testing.assert_array_equal(replayed.image.array, out.image.array)


def test_deformation_replays_from_its_record(tmp_path, pair3d):
    fixed, moving, _, result = pair3d
    saved = result.save(tmp_path / "reg")
    d = result.deformation(field_path=saved["field"])
    out = Compose([d])(moving)
    again = medaug.replay(out.history[len(moving.history):])(moving)
    np.testing.assert_array_equal(out.label.array, again.label.array)


def test_bad_inputs_are_refused(tmp_path):
    img = medaug.shepp_logan_2d(32).image
    flat = img.with_data(np.zeros_like(img.array))
    with pytest.raises(InvalidImageError, match="constant"):
        register(img, flat)
    with pytest.raises(ParameterError, match="metric"):
        register(img, img, metric="nmi")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="same dimensionality"):
        register(img, medaug.shepp_logan_3d(16).image)
    with pytest.raises(ParameterError, match="no fields"):
        RandomLearnedDeformation(fields=[])
    with pytest.raises(ParameterError, match="manifest.csv"):
        RandomLearnedDeformation(fields=str(tmp_path))
    with pytest.raises(ParameterError, match="1.5"):
        RandomLearnedDeformation(fields=[str(tmp_path / "x")], scale=[0.5, 3.0])
    with pytest.raises(medaug.ImageReadError, match="not found"):
        load_field(tmp_path / "missing.nii.gz")


def test_jacobian_of_known_fields():
    g = medaug.Grid((20, 20), spacing=(2.0, 1.0))
    pts = g.index_to_physical(np.argwhere(np.ones(g.shape))[:, ::-1].astype(float))
    # u = 0.1 * x along x: det = 1.1 everywhere; with an oblique direction the physical gradient is the same
    for direction in (None, [[0.6, -0.8], [0.8, 0.6]]):
        gg = g.with_(direction=np.eye(2) if direction is None else np.asarray(direction))
        p = gg.index_to_physical(np.argwhere(np.ones(g.shape))[:, ::-1].astype(float))
        data = np.zeros((2, *g.shape))
        data[0] = (0.1 * p[:, 0]).reshape(g.shape)
        f = DisplacementField(gg, data)
        np.testing.assert_allclose(f.jacobian_determinant(), 1.1, atol=1e-9)
        np.testing.assert_allclose(f.jacobian_determinant(scale=-20.0), -1.0, atol=1e-9)
    assert pts.shape == (400, 2)
