"""The record of a run: its format, fresh seeds, replay of every preset, inverses (numeric ones, folds), old records."""

from __future__ import annotations

import json

import numpy as np
import pytest

import medaug
from medaug import Compose, NotInvertibleError, ParameterError
from medaug.engine.execute import execute
from medaug.engine.inverse import Inverse, min_jacobian
from medaug.engine.record import applied, runs
from medaug.intensity import RandomGamma
from medaug.presets import preset_names
from medaug.spatial import Affine, Crop, ElasticBSpline, Flip, RadialDistortion, RandomAffine, RandomElastic


def test_a_run_entry_then_the_transforms_with_their_resampling():
    s = medaug.shepp_logan_2d(40)
    p = Compose([RandomAffine(rotation=5), RandomGamma()], fill=-1000.0)
    out = p(s, seed=7)
    (run,) = runs(out.history)
    assert run["seed"] == 7 and run["medaug"] == medaug.__version__
    assert run["pipeline"] == p.to_config() and run["grid"] == s.grid.to_dict()
    affine, gamma = applied(out.history)
    assert affine["resampling"] == {"index": 0, "fill": {"image": -1000.0}, "interpolation": "linear",
                                    "label_interpolation": "nearest", "backend": "auto", "tolerance": 0.1}
    assert "resampling" not in gamma
    json.loads(json.dumps(out.history))
    # a second pipeline extends the record with its own run
    twice = p(out, seed=8)
    assert [r["seed"] for r in runs(twice.history)] == [7, 8]


def test_no_seed_draws_fresh_entropy_and_records_it():
    s = medaug.shepp_logan_2d(40)
    p = Compose([RandomAffine(rotation=20)])
    a, b = p(s), p(s)
    seed_a, seed_b = runs(a.history)[0]["seed"], runs(b.history)[0]["seed"]
    assert seed_a != seed_b and not np.array_equal(a.image.array, b.image.array)
    np.testing.assert_array_equal(p(s, seed=seed_a).image.array, a.image.array)  # the recorded seed repeats it
    gen = np.random.default_rng(3)
    c = p(s, seed=gen)
    state = runs(c.history)[0]["seed"]["generator"]
    again = np.random.default_rng()
    again.bit_generator.state = state
    np.testing.assert_array_equal(p(s, seed=again).image.array, c.image.array)
    with pytest.raises(ParameterError, match="non-negative"):
        p(s, seed=-1)


@pytest.mark.parametrize("name", preset_names())
@pytest.mark.parametrize("ndim", [2, 3])
def test_every_preset_replays_bit_for_bit(name, ndim):
    s = medaug.shepp_logan_3d(32, seed=2) if ndim == 3 else medaug.shepp_logan_2d(64, seed=2)
    if not name.startswith("ct"):  # MRI/X-ray/ultrasound intensities: non-negative, arbitrary units
        s = s.replace({"image": s.image.with_data(s.image.array + 1000.0)}, metadata={"modality": None})
    p = medaug.preset(name)
    for seed in range(3):
        out = p(s, seed=seed)
        again = medaug.replay(out.history)(s)
        for key in s:
            np.testing.assert_array_equal(again[key].array, out[key].array, err_msg=f"{name} seed {seed} {key}")
        back = medaug.inverse_of(out.history)(out)
        assert back.grid.same_as(s.grid)


def test_replay_options_replace_the_recorded_ones():
    s = medaug.shepp_logan_2d(40)
    out = Compose([Affine(rotation=30)], fill=-1000.0)(s)
    pattern = medaug.Sample(image=medaug.Image(np.ones(s.grid.shape, np.float32), grid=s.grid))
    warped = medaug.replay(out.history, fill=0.0)(pattern)
    assert warped.image.array.min() == 0.0  # the given fill, not the recorded -1000


@pytest.mark.parametrize("transform", [
    ElasticBSpline(control_points=6, max_displacement=3.0, seed=4),
    RadialDistortion(k1=0.08),
])
def test_numeric_inverse_is_within_a_tenth_of_a_voxel(transform):
    s = medaug.shepp_logan_3d(40, seed=0)
    g = s.grid
    w = transform.warp(g, g)
    inv = Inverse(transform=transform.record(), grid=g.to_dict()).warp(g, g)
    pts = g.index_to_physical(np.random.default_rng(0).uniform(2, 37, (2000, 3)))
    # the inverse pull-back composed with the forward pull-back is the identity
    err = np.abs(w(inv(pts)) - pts) / np.asarray(g.spacing)
    assert err.max() < 1e-3
    # and through the engine (lattice interpolation included): forward then inverse of points and labels
    out = Compose([transform])(s)
    back = medaug.inverse_of(out.history)(out)
    np.testing.assert_allclose(back.points["landmarks"], s.points["landmarks"], atol=0.1 * min(g.spacing))
    inner = (slice(4, -4),) * 3
    agree = (back.label.array[inner] == s.label.array[inner]).mean()
    assert agree > 0.98


def test_a_folding_deformation_is_refused_clearly():
    s = medaug.shepp_logan_2d(48)
    folding = ElasticBSpline(control_points=5, max_displacement=40.0, seed=1, locked_borders=0)
    det, where = min_jacobian(folding.warp(s.grid, s.grid), s.grid)
    assert det < 0
    out = Compose([folding])(s)
    with pytest.raises(NotInvertibleError, match="folds"):
        medaug.inverse_of(out.history)(out)
    # drawn with the fold guard, the same request stays invertible
    guarded = Compose([RandomElastic(control_points=5, max_displacement=40.0, locked_borders=0)])(s, seed=1)
    medaug.inverse_of(guarded.history)(guarded)


def test_points_and_boxes_go_through_the_inverse():
    s = medaug.shepp_logan_3d(32, seed=3)
    lo = s.points["landmarks"].min(0) - 2.0
    box = np.concatenate([lo, lo + 6.0])[None]
    s = s.replace(boxes={"lesion": box})
    p = Compose([Crop(start=[2, 3, 1], size=[26, 27, 28]), ElasticBSpline(control_points=5, max_displacement=2.0),
                 Flip(axes=["AP"]), Affine(rotation=[3.0, 0.0, -4.0])])
    out = p(s, seed=0)
    back = medaug.inverse_of(out.history)(out)
    np.testing.assert_allclose(back.points["landmarks"], s.points["landmarks"], atol=1e-3)
    # a box comes back holding the original (the corners' bounding box grows by the rotation only)
    assert np.all(back.boxes["lesion"][0, :3] <= box[0, :3] + 1e-6) and np.all(back.boxes["lesion"][0, 3:] >= box[0, 3:] - 1e-6)


def test_history_of_an_earlier_version_still_reads():
    s = medaug.shepp_logan_2d(32)
    old = [{"name": "Affine", "params": {"rotation": 5.0}}, {"name": "Flip", "params": {"axes": ["LR"]}}]
    out = medaug.replay(old)(s)
    back = medaug.inverse_of(old)(out)  # affines and flips need no grid
    assert back.grid.same_as(s.grid)
    with pytest.raises(ParameterError, match="does not record"):
        medaug.inverse_of([{"name": "Crop", "params": {"start": [1, 1], "size": [20, 20]}}])
    for name, new in (("RandomZoom", "RandomScale"), ("Zoom", "Resize"), ("GibbsRinging", "Gibbs"),
                      ("ForegroundCrop", "Crop")):
        with pytest.raises(ParameterError, match=f"renamed '{new}'"):
            medaug.replay([{"name": name, "params": {}}])
    with pytest.raises(ParameterError, match="renamed 'RandomScale'"):
        medaug.pipeline_from_config([{"RandomZoom": {"scale": 0.1}}])


def test_execute_keeps_its_simple_form():
    s = medaug.shepp_logan_2d(32)
    out = execute(s, [Affine(rotation=3.0)])
    assert [e["name"] for e in out.history] == ["Affine"] and out.history[0]["resampling"]["index"] == 0


def test_replay_on_the_torch_backend_agrees_within_float_tolerance():
    s = medaug.shepp_logan_3d(32, seed=4)
    out = medaug.preset("ct")(s, seed=5)
    again = medaug.replay(out.history, backend="torch")(s)
    np.testing.assert_allclose(again.image.array, out.image.array, atol=0.05)
    assert (again.label.array != out.label.array).mean() < 1e-3


def test_a_fold_is_reported_for_the_transform_that_folds_and_not_as_a_batch():
    """One sample's error named 'batch sample 0', and every fold advised RandomElastic's fold guard."""
    s = medaug.shepp_logan_2d(48)
    out = Compose([RadialDistortion(k1=-1.0)])(s)
    with pytest.raises(NotInvertibleError) as info:
        medaug.inverse_of(out.history)(out)
    message = str(info.value)
    assert message.startswith("RadialDistortion cannot be inverted: it folds"), message
    assert "RandomElastic" not in message and "k1" in message
    folding = ElasticBSpline(control_points=5, max_displacement=40.0, seed=1, locked_borders=0)
    with pytest.raises(NotInvertibleError, match=r"^ElasticBSpline cannot be inverted: .*fold_guard"):
        medaug.inverse_of(Compose([folding])(s).history)(Compose([folding])(s))
    with pytest.raises(ParameterError, match=r"^batch sample 1: "):
        Compose([Affine(rotation=3.0)]).batch([s, "not a sample"])  # type: ignore[list-item]
