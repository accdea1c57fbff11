"""Multi-channel images: one coordinate per output voxel for every channel, per-channel intensity draws."""

from __future__ import annotations

import numpy as np
import pytest

import medaug
from medaug import Image, Sample
from medaug.engine.execute import execute

NAMES = ("FLAIR", "T1w", "T1gd", "T2w")


def _applied(sample: Sample) -> list[dict]:
    """The applied transforms of a sample's history (no run or check entries)."""
    return [h for h in sample.history if "name" in h and "params" in h and not h.get("check")]


def _four_channel(size: int = 56, seed: int = 0) -> Sample:
    """Four channels made from one phantom mask at different intensities, and the phantom's label."""
    s = medaug.shepp_logan_3d(size, seed=seed)
    mask = (np.asarray(s["label"].array) > 0).astype(np.float32)
    data = np.stack([mask * (k + 1) for k in range(4)])
    return Sample(image=Image(data, grid=s["image"].grid, channel_names=NAMES), label=s["label"])


SPATIAL = [{"RandomAffine": {"rotation": 12, "scale": [0.9, 1.1], "translation": 4}},
           {"RandomElastic": {"control_points": 6, "max_displacement": 6}},
           {"RandomFlip": {"axes": ["LR"], "p": 0.5}}]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_channels_and_label_move_together(seed):
    sample = _four_channel()
    out = medaug.pipeline_from_config(SPATIAL)(sample, seed=seed)
    assert out["image"].channels == 4 and out["image"].channel_names == NAMES
    label = np.asarray(out["label"].array) > 0
    for k in range(4):
        support = np.asarray(out["image"].array[k]) > 0.5 * (k + 1)
        dice = 2 * (support & label).sum() / (support.sum() + label.sum())
        assert dice >= 0.99, (k, dice)


def test_numba_and_torch_agree_on_channels():
    sample = _four_channel(40)
    cfg = [*SPATIAL, {"RandomGamma": {"log_gamma": 0.3}}, {"RandomNoise": {"std": [0.01, 0.05]}},
           {"RandomBiasField": {"coefficients": 0.2}}]
    a = medaug.pipeline_from_config(cfg, backend="numba")(sample, seed=5)
    b = medaug.pipeline_from_config(cfg, backend="torch")(sample, seed=5)
    np.testing.assert_allclose(np.asarray(b["image"].array), np.asarray(a["image"].array), atol=2e-4)
    np.testing.assert_array_equal(np.asarray(b["label"].array), np.asarray(a["label"].array))


def test_each_channel_draws_its_own_parameters_unless_same():
    sample = _four_channel(24)
    each = medaug.pipeline_from_config([{"RandomGamma": {"log_gamma": 0.4}}])(sample, seed=1)
    gammas = [h["params"]["gamma"] for h in _applied(each)]
    assert [h["params"]["channels"] for h in _applied(each)] == [[0], [1], [2], [3]]
    assert len(set(gammas)) == 4
    same = medaug.pipeline_from_config([{"RandomGamma": {"log_gamma": 0.4, "channels": "same"}}])(sample, seed=1)
    assert len(_applied(same)) == 1 and "channels" not in _applied(same)[0]["params"]


def test_a_channel_list_limits_the_transform():
    sample = _four_channel(24)
    out = medaug.pipeline_from_config([{"RandomNoise": {"std": [0.1, 0.2], "channels": [0, 2]}}])(sample, seed=3)
    before, after = np.asarray(sample["image"].array), np.asarray(out["image"].array)
    changed = [not np.array_equal(before[k], after[k]) for k in range(4)]
    assert changed == [True, False, True, False]


def test_per_channel_ranges_drive_the_draws():
    sample = _four_channel(24)
    out = medaug.pipeline_from_config([{"RandomGamma": {"log_gamma": 0.2}}])(sample, seed=0)
    his = [(h["params"]["lo"], h["params"]["hi"]) for h in _applied(out)]
    assert his == [(0.0, float(k + 1)) for k in range(4)]  # each channel's own intensity range


@pytest.mark.parametrize("seed", [0, 4])
def test_fused_equals_stepwise_on_channels(seed):
    sample = _four_channel(24)
    pipe = medaug.pipeline_from_config([*SPATIAL, {"RandomGamma": {"log_gamma": 0.3}}, {"RandomNoise": {"std": 0.05}}])
    fused = pipe(sample, seed=seed)
    from medaug.engine.registry import transform_class

    recorded = [transform_class(h["name"])(**h["params"]) for h in _applied(fused)]
    spatial = [t for t in recorded if isinstance(t, medaug.engine.SpatialTransform)]
    intensity = [t for t in recorded if not isinstance(t, medaug.engine.SpatialTransform)]
    step = execute(execute(sample, spatial, pipe.options, pipe.fill), intensity, pipe.options, pipe.fill)
    np.testing.assert_allclose(np.asarray(step["image"].array), np.asarray(fused["image"].array), atol=1e-4)


def test_scalar_images_keep_their_records():
    """A scalar image is one channel: its history holds no channel lists (records of earlier versions replay)."""
    s = medaug.shepp_logan_2d(32, seed=0)
    out = medaug.preset("mri")(s, seed=2)
    assert all("channels" not in h["params"] for h in _applied(out))


def test_bad_channel_lists_are_refused_when_built():
    with pytest.raises(medaug.ParameterError, match="channel indices"):
        medaug.pipeline_from_config([{"RandomGamma": {"channels": "some"}}])
    with pytest.raises(medaug.ParameterError, match="twice"):
        medaug.pipeline_from_config([{"RandomGamma": {"channels": [1, 1]}}])
    # found by the config fuzzer: accepted, then "internal error: TypeError: 'NoneType' object is not iterable"
    with pytest.raises(medaug.ParameterError, match="'channels' must be 'each', 'same' or a list"):
        medaug.pipeline_from_config([{"RandomNoise": {"std": 1, "channels": None}}])


def test_channel_views_and_stacking():
    s = _four_channel(16)
    img = s["image"]
    assert img.channel(2).channels == 1 and np.shares_memory(np.asarray(img.channel(2).array), np.asarray(img.array))
    stacked = Image.stack([img.channel(k) for k in range(4)], names=NAMES)
    np.testing.assert_array_equal(stacked.array, img.array)
    with pytest.raises(medaug.GeometryError):
        Image.stack([img.channel(0), Image(np.zeros((3, 3, 3), np.float32))])


def test_a_random_intensity_transform_refuses_channels_none_in_a_pipeline():
    """channels=None was accepted and failed when the pipeline drew ('NoneType' object is not iterable)."""
    from medaug.errors import ParameterError
    from medaug.intensity import RandomGamma

    with pytest.raises(ParameterError, match="'channels' must be 'each', 'same' or a list"):
        medaug.Compose([RandomGamma(channels=None)])  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="'channels' must be 'each', 'same' or a list"):
        medaug.pipeline_from_config([{"RandomGamma": {"channels": None}}])
