"""Contracts over every registered transform, 2D and 3D, on the phantom.

For each class of :func:`medaug.engine.registry.transform_classes` with typical
parameters (:func:`typical`; a class without them fails this test):

* the config round-trips (built from ``{Name: params}``, saved, rebuilt: same config, JSON-ready);
* the output's history replays bit for bit on the same input (arrays and points);
* label maps never gain values;
* spatial ones: the history's inverse puts the output back on the input grid,
  the phantom's landmarks come back within one voxel, and each landmark's voxel
  keeps its label;
* a ``RandomX`` returns an ``X`` whenever a class ``X`` exists.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import medaug
from medaug.engine.compose import Compose
from medaug.engine.config import pipeline_from_config
from medaug.engine.registry import transform_classes
from medaug.engine.transform import Context, RandomTransform, SpatialTransform
from medaug.presets.examples import example_parameters, write_example_field

#: Registered by the interop modules (MONAI/TorchIO steps): records of foreign objects, documented
#: as not replayable, tested in tests/interop.
FOREIGN = {"MonaiStep", "MonaiApplied", "TorchioStep", "TorchioApplied"}


def _field_file(tmp_path_factory: pytest.TempPathFactory, ndim: int) -> str:
    """A smooth, fold-free displacement field over the phantom's field of view, saved as a file."""
    path = tmp_path_factory.getbasetemp() / f"field{ndim}d.nii.gz"
    if not path.exists():
        write_example_field(path, medaug.Grid((16,) * ndim, spacing=(4.0,) * ndim, origin=(-30.0,) * ndim))
    return str(path)


def typical(name: str, ndim: int, field: str, grid: medaug.Grid) -> dict[str, Any] | None:
    """Typical parameters of each registered transform (None: the class has none), from the shared table."""
    return example_parameters(name, ndim, field, grid)


def _phantom(ndim: int) -> medaug.Sample:
    return medaug.shepp_logan_3d(24, seed=1) if ndim == 3 else medaug.shepp_logan_2d(48, seed=1)


def _names() -> list[str]:
    return sorted(n for n in transform_classes() if n not in FOREIGN)


def test_every_registered_transform_has_typical_parameters(tmp_path_factory):
    missing = [n for n in _names() for nd in (2, 3)
               if typical(n, nd, _field_file(tmp_path_factory, nd), _phantom(nd).grid) is None]
    assert not missing, f"add typical parameters to src/medaug/presets/examples.py for: {sorted(set(missing))}"


@pytest.mark.parametrize("ndim", [2, 3], ids=["2d", "3d"])
@pytest.mark.parametrize("name", _names())
def test_contract(name: str, ndim: int, tmp_path_factory) -> None:
    sample = _phantom(ndim)
    params = typical(name, ndim, _field_file(tmp_path_factory, ndim), sample.grid)
    assert params is not None, f"no typical parameters for {name}"
    config = [{name: params}]
    pipeline = pipeline_from_config(config)
    # config round trip, JSON-ready
    saved = pipeline.to_config()
    assert pipeline_from_config(json.loads(json.dumps(saved))).to_config() == saved
    out = pipeline(sample, seed=1)
    json.dumps(out.history)
    # replay: bit for bit
    again = medaug.replay(out.history)(sample)
    for key in sample:
        assert again[key].grid.same_as(out[key].grid)
        np.testing.assert_array_equal(again[key].array, out[key].array, err_msg=f"{name} {key}")
    for key, pts in out.points.items():
        np.testing.assert_array_equal(again.points[key], pts)
    # labels never gain values
    assert set(out["label"].label_values().tolist()) <= set(sample["label"].label_values().tolist()) | {0}
    if not any(isinstance(t, SpatialTransform) for t in _applied(out)):
        assert out.grid.same_as(sample.grid)
        np.testing.assert_array_equal(out["label"].array, sample["label"].array)
        return
    # inverse: back on the input grid, landmarks within a voxel, each landmark keeps its label
    back = medaug.inverse_of(out.history)(out)
    assert back.grid.same_as(sample.grid)
    spacing = np.asarray(sample.grid.spacing)
    err = np.abs(back.points["landmarks"] - sample.points["landmarks"]) / spacing
    assert err.max() <= 1.0, f"{name}: landmarks back within {err.max():.3f} voxels"
    idx = np.round(sample.grid.physical_to_index(sample.points["landmarks"])).astype(int)[:, ::-1]
    seen = out.grid.physical_to_index(out.points["landmarks"])
    inside = np.all((seen >= 1) & (seen <= np.asarray(out.grid.size_xyz) - 2), axis=1)
    for i, keep in zip(idx, inside):
        if keep:
            assert back["label"].array[tuple(i)] == sample["label"].array[tuple(i)], f"{name}: label at {i}"


def _applied(out: medaug.Sample) -> list[Any]:
    from medaug.engine.inverse import rebuild
    from medaug.engine.record import applied

    return [rebuild(e) for e in applied(out.history)]


@pytest.mark.parametrize("name", [n for n in _names() if n.startswith("Random")])
def test_random_x_returns_x(name: str, tmp_path_factory) -> None:
    classes = transform_classes()
    target = name[len("Random"):]
    cls = classes[name]
    assert issubclass(cls, RandomTransform)
    sample = _phantom(3)
    params = typical(name, 3, _field_file(tmp_path_factory, 3), sample.grid) or {}
    drawn = cls(**params).sample(np.random.default_rng(0), Context(sample))
    if target in classes:
        assert type(drawn).__name__ == target, f"{name} returns {type(drawn).__name__}, not {target}"


def test_groups_keep_their_options_in_the_record_and_config() -> None:
    inner = Compose([medaug.spatial.RandomAffine(rotation=5)], fill=0.0, interpolation="nearest")
    outer = Compose([medaug.spatial.RandomAffine(rotation=5), inner], fill=-1000.0)
    cfg = outer.to_config()
    assert cfg["transforms"][1] == {"Compose": {"transforms": [{"RandomAffine": inner.transforms[0].config_params()}],
                                                "p": 1.0, "fill": 0.0, "interpolation": "nearest"}}
    out = pipeline_from_config(cfg)(_phantom(2), seed=0)
    runs = [e["resampling"] for e in out.history if "resampling" in e]
    assert [r["index"] for r in runs] == [0, 1]
    assert runs[0]["fill"] == {"image": -1000.0} and runs[1]["fill"] == {"image": 0.0}
    assert runs[1]["interpolation"] == "nearest"
