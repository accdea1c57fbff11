"""Batch Mixup / CutMix soft targets, and per-sample Cutout."""

from __future__ import annotations

import numpy as np
import pytest

from medaug import GeometryError, ParameterError
from medaug.engine.config import transform_names
from medaug.engine.execute import execute
from medaug.intensity import CutMix, Cutout, Mixup, RandomCutout, cutmix, mixup

from ..conftest import blob_sample
from ._util import assert_untouched_geometry_and_labels, check_random_config, check_tensor_input


def _batch(n=4, shape=(12, 14, 10), targets=True):
    out = []
    for k in range(n):
        s = blob_sample(shape, seed=k)
        s.target = k % 3 if targets else None
        out.append(s)
    return out


def _onehot(lab: np.ndarray, c: int) -> np.ndarray:
    return np.moveaxis(np.eye(c, dtype=np.float32)[lab], -1, 0)


def test_mixup_images_and_class_targets():
    batch = _batch()
    out = mixup(batch, np.random.default_rng(0), alpha=0.4, num_classes=3)
    assert len(out) == len(batch)
    for i, s in enumerate(out):
        info = s.metadata["mix"]
        lam, j = info["lam"], info["partner"]
        assert info["method"] == "mixup" and 0.5 <= lam <= 1.0
        expected = lam * batch[i].image.array + (1 - lam) * batch[j].image.array
        np.testing.assert_allclose(s.image.array, expected, rtol=1e-5, atol=1e-3)
        t = np.asarray(s.target)
        assert t.shape == (3,) and t.sum() == pytest.approx(1.0) and (t >= 0).all()
        ref = lam * np.eye(3)[batch[i].target] + (1 - lam) * np.eye(3)[batch[j].target]
        np.testing.assert_allclose(t, ref)
        assert s.image.grid.same_as(batch[i].image.grid)
    assert batch[0].target == 0 and "mix" not in batch[0].metadata  # inputs untouched


def test_mixup_soft_segmentation_targets():
    batch = _batch()
    out = mixup(batch, 1)
    for i, s in enumerate(out):
        lam, j = s.metadata["mix"]["lam"], s.metadata["mix"]["partner"]
        soft = s.metadata["soft_labels"]["label"]
        assert soft.dtype == np.float32 and soft.shape == (3, *s.label.shape)  # labels 0..2 in the batch
        np.testing.assert_allclose(soft.sum(axis=0), 1.0, atol=1e-6)
        ref = lam * _onehot(batch[i].label.array, 3) + (1 - lam) * _onehot(batch[j].label.array, 3)
        np.testing.assert_allclose(soft, ref, atol=1e-6)
        # the hard map is the sample's own (lam >= 0.5), the argmax of the soft labels
        np.testing.assert_array_equal(s.label.array, batch[i].label.array)
        assert s.label.is_label and s.label.dtype == batch[i].label.dtype


def test_probability_vector_targets_and_num_classes():
    batch = _batch(3)
    batch[0].target = [0.2, 0.8, 0.0, 0.0]
    batch[1].target = 3
    batch[2].target = np.array([0.0, 0.0, 1.0, 0.0])
    for fn in (mixup, cutmix):
        out = fn(batch, 5)
        for s in out:
            assert np.asarray(s.target).shape == (4,) and np.sum(s.target) == pytest.approx(1.0)
    with pytest.raises(ParameterError, match="num_classes"):
        mixup(batch, 0, num_classes=3)


def test_cutmix_pastes_a_box_with_exact_labels():
    batch = _batch()
    out = cutmix(batch, np.random.default_rng(3), alpha=1.0, num_classes=3)
    for i, s in enumerate(out):
        info = s.metadata["mix"]
        j, lam, box = info["partner"], info["lam"], info["box"]
        x0, y0, z0, x1, y1, z1 = box
        region = (slice(z0, z1), slice(y0, y1), slice(x0, x1))
        inside = np.zeros(s.image.shape, bool)
        inside[region] = True
        assert lam == pytest.approx(1.0 - inside.mean())
        for name in ("image", "label"):
            np.testing.assert_array_equal(s[name].array[inside], batch[j][name].array[inside])
            np.testing.assert_array_equal(s[name].array[~inside], batch[i][name].array[~inside])
        soft = s.metadata["soft_labels"]["label"]
        np.testing.assert_allclose(soft, _onehot(s.label.array, 3))
        expected = lam * np.eye(3)[batch[i].target] + (1 - lam) * np.eye(3)[batch[j].target]
        np.testing.assert_allclose(np.asarray(s.target), expected)
        assert np.sum(s.target) == pytest.approx(1.0)


def test_mixing_chains_soft_labels():
    out = cutmix(mixup(_batch(), 0), 1)
    for s in out:
        np.testing.assert_allclose(s.metadata["soft_labels"]["label"].sum(axis=0), 1.0, atol=1e-6)
        assert np.sum(s.target) == pytest.approx(1.0)


def test_class_api_is_seeded_and_not_a_pipeline_transform():
    batch = _batch(targets=False)
    for cls in (Mixup(alpha=0.3), CutMix(alpha=1.0)):
        a, b = cls(batch, 7), cls(batch, 7)
        for sa, sb in zip(a, b):
            np.testing.assert_array_equal(sa.image.array, sb.image.array)
            assert sa.target is None and sa.history == batch[0].history
    assert "Mixup" not in transform_names() and "CutMix" not in transform_names()


@pytest.mark.parametrize(
    "call, error, word",
    [
        (lambda b: mixup(b[:1] + [blob_sample((12, 14, 11))], 0), GeometryError, "shape"),
        (lambda b: mixup([], 0), ParameterError, "non-empty"),
        (lambda b: mixup(b, 0, alpha=0.0), ParameterError, "alpha"),
        (lambda b: Mixup(alpha=-1.0), ParameterError, "alpha"),
        (lambda b: cutmix([b[0], b[1].replace(target=None)], 0), ParameterError, "target"),
        (lambda b: cutmix([b[0], b[1].replace(target=[0.5, 0.2])], 0), ParameterError, "sum"),
    ],
)
def test_bad_batches_are_rejected(call, error, word):
    with pytest.raises(error, match=word):
        call(_batch(2))


# ------------------------------------------------------------------ cutout
def test_cutout_fills_holes_only(sample3d):
    holes = [[2, 3, 4, 8, 9, 10], [10, 0, 0, 14, 5, 3]]
    out = execute(sample3d, [Cutout(holes=holes, fill=-5.0)])
    v, w = sample3d.image.array, out.image.array
    inside = np.zeros(v.shape, bool)
    for x0, y0, z0, x1, y1, z1 in holes:
        inside[z0:z1, y0:y1, x0:x1] = True
    assert (w[inside] == -5.0).all()
    np.testing.assert_array_equal(w[~inside], v[~inside])
    assert_untouched_geometry_and_labels(out, sample3d)


def test_cutout_background_fill_is_air(sample2d):
    out = execute(sample2d, [Cutout(holes=[[5, 5, 20, 20]], fill="background")])
    hole = out.image.array[5:20, 5:20]
    assert np.unique(hole).size == 1 and hole[0, 0] < -900  # the border median: air


def test_random_cutout_sizes_are_in_mm():
    s = blob_sample((30, 40, 40), spacing=(0.5, 1.0, 2.0))
    for seed in range(10):
        out = RandomCutout(num_holes=1, size_mm=[8.0, 8.0], fill=0.0)(s, seed=seed)
        (hole,) = out.history[-1]["params"]["holes"]
        ext = np.subtract(hole[3:], hole[:3])  # voxels along x, y, z; clipped at the border
        assert (ext <= [16, 8, 4]).all() and (ext >= 1).all()
        assert_untouched_geometry_and_labels(out, s)
    counts = {len(RandomCutout(num_holes=[1, 3])(s, seed=k).history[-1]["params"]["holes"]) for k in range(30)}
    assert counts == {1, 2, 3}


@pytest.mark.parametrize(
    "make, word",
    [
        (lambda: Cutout(fill="mean"), "fill"),
        (lambda: Cutout(holes=[[5, 5, 2, 2]]), "holes"),
        (lambda: RandomCutout(num_holes=[3, 1]), "num_holes"),
        (lambda: RandomCutout(size_mm=[-1, 5]), "size_mm"),
    ],
)
def test_bad_parameters_are_named(make, word):
    with pytest.raises(ParameterError, match=word):
        make()


@pytest.mark.parametrize(
    "cfg", [{"RandomCutout": {}}, {"RandomCutout": {"num_holes": 2, "size_mm": 6, "fill": "min", "p": 1.0}}]
)
def test_config_same_seed_and_replay(cfg):
    check_random_config(cfg, blob_sample((16, 18, 14), spacing=(1.0, 1.0, 2.0)))


def test_tensor_images(sample3d):
    check_tensor_input(sample3d, [Cutout(holes=[[1, 2, 3, 6, 7, 8]], fill="background")])
