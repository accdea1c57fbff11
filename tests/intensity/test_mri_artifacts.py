"""k-space artifacts: motion, ghosting, spikes, Gibbs ringing (2D and 3D)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medaug import Compose, Image, ParameterError, Sample, shepp_logan_2d, shepp_logan_3d
from medaug.data.sample_data import anatomical_mri
from medaug.engine.execute import execute
from medaug.intensity import (
    Ghosting,
    Gibbs,
    Motion,
    RandomGhosting,
    RandomGibbs,
    RandomMotion,
    RandomSpike,
    Spike,
)
from medaug.intensity.mri_artifacts import image_from_kspace, kspace

from ..conftest import blob_sample
from ._util import assert_untouched_geometry_and_labels, check_random_config, check_tensor_input


def _k(x: np.ndarray) -> np.ndarray:
    return kspace(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


@pytest.fixture(scope="module")
def phantom2d():
    return shepp_logan_2d(64, spacing=(1.0, 1.0))


def test_kspace_round_trip(phantom2d):
    x = torch.from_numpy(phantom2d.image.array)
    np.testing.assert_allclose(image_from_kspace(kspace(x)).numpy(), x.numpy(), atol=1e-2)


# ------------------------------------------------------------------ motion
def test_motion_without_movement_is_identity(phantom2d):
    t = Motion(degrees=[[0.0], [0.0]], translation=[[0.0, 0.0], [0.0, 0.0]], times=[0.3, 0.7], axis=1)
    out = execute(phantom2d, [t])
    np.testing.assert_allclose(out.image.array, phantom2d.image.array, atol=1e-2)


@pytest.mark.parametrize("sample_fn", [lambda: shepp_logan_2d(48), lambda: shepp_logan_3d(24)], ids=["2d", "3d"])
def test_motion_corrupts_but_keeps_the_k_space_centre(sample_fn):
    s = sample_fn()
    nd = s.ndim
    t = Motion(degrees=[[6.0] * (1 if nd == 2 else 3)], translation=[[4.0] * nd], times=[0.25], axis=0)
    out = execute(s, [t])
    v, w = s.image.array, out.image.array
    assert np.abs(w - v).mean() > 5.0
    # the centre segment of k-space comes from the unmoved image: the mean (DC) is unchanged
    assert w.mean(dtype=np.float64) == pytest.approx(v.mean(dtype=np.float64), rel=1e-4)
    kv, kw = _k(v), _k(w)
    n, cut = v.shape[-1], int(0.25 * v.shape[-1])
    # the real part averages K(f) and conj K(-f): the band whose mirror is also unmoved is exact
    band = slice(cut + 1, n - cut)
    np.testing.assert_allclose(kw[..., band], kv[..., band], atol=1e-4 * np.abs(kv).max())
    outer = kv[..., :cut]
    assert np.linalg.norm(kw[..., :cut] - outer) > 0.1 * np.linalg.norm(outer)  # from the moved copy
    assert_untouched_geometry_and_labels(out, s)


def test_random_motion_parameters(phantom2d):
    out = RandomMotion(degrees=5, translation=[-2, 2], num_transforms=[2, 3], axis=[0])(phantom2d, seed=4)
    p = out.history[-1]["params"]
    n = len(p["times"])
    assert 2 <= n <= 3 and len(p["degrees"]) == n and len(p["translation"]) == n and p["axis"] == 0
    assert all(abs(d[0]) <= 5 for d in p["degrees"]) and all(abs(c) <= 2 for tr in p["translation"] for c in tr)
    assert np.all(np.diff(p["times"]) > 0) and 0 < min(p["times"]) and max(p["times"]) < 1


# ------------------------------------------------------------------ ghosting
@pytest.mark.parametrize("axis", [0, 1])
def test_ghosts_are_shifted_copies_along_the_phase_encode_axis(phantom2d, axis):
    v = phantom2d.image.array.astype(np.float64)
    out = execute(phantom2d, [Ghosting(num_ghosts=4, axis=axis, intensity=1.0, restore=0.0)])
    d = out.image.array - v
    along, across = 1 - axis, axis  # index axis x is array axis 1
    shift = v.shape[along] // 4

    def corr(array_axis: int) -> float:
        return abs(np.corrcoef(d.ravel(), np.roll(v - v.mean(), shift, axis=array_axis).ravel())[0, 1])

    assert corr(along) > 0.2 and corr(along) > 3 * corr(across)
    assert out.image.array.mean(dtype=np.float64) == pytest.approx(v.mean(), rel=1e-4)
    assert_untouched_geometry_and_labels(out, phantom2d)


def test_ghosting_intensity_zero_is_identity_and_restore_keeps_centre(phantom2d):
    v = phantom2d.image.array
    out = execute(phantom2d, [Ghosting(num_ghosts=5, axis=1, intensity=0.0)]).image.array
    np.testing.assert_allclose(out, v, atol=1e-2)
    w = execute(phantom2d, [Ghosting(num_ghosts=2, axis=1, intensity=0.8, restore=0.25)]).image.array
    kv, kw = _k(v), _k(w)
    np.testing.assert_allclose(kw[26:38], kv[26:38], rtol=1e-3, atol=1e-2 * np.abs(kv).max())
    np.testing.assert_allclose(np.abs(kw[0]), 0.2 * np.abs(kv[0]), rtol=1e-3, atol=1e-3 * np.abs(kv).max())


# ------------------------------------------------------------------ spikes
@pytest.mark.parametrize("sample_fn", [lambda: shepp_logan_2d(64), lambda: shepp_logan_3d(24)], ids=["2d", "3d"])
def test_spike_adds_one_spatial_frequency(sample_fn):
    s = sample_fn()
    pos = [0.7, 0.55, 0.4][: s.ndim]
    out = execute(s, [Spike(positions=[pos], intensity=0.5)])
    d = out.image.array - s.image.array
    k = np.abs(_k(d))
    top = np.sort(k.ravel())[::-1]
    assert (top[:2] ** 2).sum() / (top**2).sum() > 0.999  # a pure cosine: +k and -k
    idx = tuple(int(np.floor(p * n)) for p, n in zip(pos[::-1], k.shape))
    assert k[idx] == pytest.approx(top[0], rel=1e-3)
    assert_untouched_geometry_and_labels(out, s)


# ------------------------------------------------------------------ Gibbs
@pytest.mark.parametrize("sample_fn", [lambda: shepp_logan_2d(64), lambda: shepp_logan_3d(24)], ids=["2d", "3d"])
def test_gibbs_truncates_k_space_and_rings(sample_fn):
    s = sample_fn()
    v = s.image.array.astype(np.float64)
    out = execute(s, [Gibbs(alpha=0.5)])
    w = out.image.array.astype(np.float64)
    k = np.abs(_k(w))
    n = v.shape[-1]
    assert k[..., : n // 4 - 1].max() < 1e-4 * k.max()  # outside the kept half of k-space along x
    assert w.mean() == pytest.approx(v.mean(), rel=1e-4)
    air = s.label.array == 0
    assert np.abs(w - v)[air].mean() > 1.0  # ringing spreads into the air
    assert_untouched_geometry_and_labels(out, s)


def test_gibbs_overshoots_at_a_step():
    data = np.zeros((64, 64), np.float32)
    data[16:48, 16:48] = 100.0
    signed = execute(Sample(image=Image(data - 50.0)), [Gibbs(alpha=0.5)]).image.array
    assert signed.max() > 55.0 and signed.min() < -55.0  # the Gibbs phenomenon: about 9 % over- and undershoot
    # a magnitude image (no negative value) stays one, as a scanner reconstructs it: the undershoot in the air
    # beside the step shows as a ripple of the same height above 0
    w = execute(Sample(image=Image(data)), [Gibbs(alpha=0.5)]).image.array
    assert w.min() >= 0.0 and w.max() > 105.0 and w[data == 0].max() > 5.0


@pytest.mark.parametrize("transform", [RandomGhosting(intensity=(0.5, 0.9)), RandomMotion(), RandomSpike(intensity=(0.3, 1.0)),
                                       RandomGibbs()])
def test_k_space_artefacts_keep_a_magnitude_image_non_negative(transform):
    """A BraTS expansion had minima of -15 to -25 after RandomGhosting: the real part of the artefact's image."""
    mri = anatomical_mri()
    s = Sample(image=mri.with_data(np.clip(mri.array, 0, None)))  # as BraTS stores it: no negative value
    for seed in range(3):
        out = Compose([transform])(s, seed=seed)
        assert float(np.min(out["image"].array)) >= 0.0


def test_gibbs_alpha_one_and_axes(phantom2d):
    v = phantom2d.image.array
    np.testing.assert_allclose(execute(phantom2d, [Gibbs(alpha=1.0)]).image.array, v, atol=1e-2)
    only_x = execute(phantom2d, [Gibbs(alpha=0.5, axes=[0])]).image.array
    k = np.abs(_k(only_x))
    assert k[:, :10].max() < 1e-4 * k.max() and k[:10, 32].max() > 1e-3 * k.max()


# ------------------------------------------------------------------ parameters & config
@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: Motion(degrees=[[1.0]], translation=[], times=[0.5]), "one 'degrees'"),
        (lambda: Motion(degrees=[[1.0]], translation=[[0, 0]], times=[1.5]), "times"),
        (lambda: Ghosting(axis=3), "axis"),
        (lambda: Ghosting(num_ghosts=0), "num_ghosts"),
        (lambda: RandomGhosting(intensity=[0.5, 2.0]), "intensity"),
        (lambda: RandomMotion(num_transforms=0), "num_transforms"),
        (lambda: Spike(positions=[[1.2, 0.5]]), "positions"),
        (lambda: Gibbs(alpha=0.0), "alpha"),
        (lambda: RandomGibbs(alpha=[0.5, 1.5]), "alpha"),
    ],
)
def test_bad_parameters_are_named(make, word):
    with pytest.raises(ParameterError, match=word):
        make()


def test_axis_out_of_range_for_2d(phantom2d):
    with pytest.raises(ParameterError, match="axis"):
        execute(phantom2d, [Ghosting(axis=2)])


@pytest.mark.parametrize(
    "cfg",
    [
        {"RandomMotion": {"degrees": 5, "translation": 3, "num_transforms": [1, 3]}},
        {"RandomGhosting": {"num_ghosts": [2, 6], "axis": "y"}},
        {"RandomSpike": {"num_spikes": [1, 2], "intensity": [0.1, 0.5]}},
        {"RandomGibbs": {"alpha": [0.6, 0.9], "axes": [0, 2]}},
    ],
)
def test_config_same_seed_and_replay(cfg):
    check_random_config(cfg, blob_sample((16, 18, 14), spacing=(1.0, 1.2, 2.0)))


def test_random_transforms_run_in_2d(sample2d):
    for t in (RandomMotion(), RandomGhosting(), RandomSpike(), RandomGibbs()):
        out = t(sample2d, seed=1)
        assert out.image.shape == sample2d.image.shape
        assert_untouched_geometry_and_labels(out, sample2d)


def test_tensor_images(sample3d):
    motion = Motion(degrees=[[2.0, 1.0, -3.0]], translation=[[1.0, 0.0, 2.0]], times=[0.6], axis=1)
    spike = Spike(positions=[[0.2, 0.6, 0.3]])
    check_tensor_input(sample3d, [motion, Ghosting(axis=2), spike, Gibbs(alpha=0.7)])
