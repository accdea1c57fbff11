"""Presets: they obey their own modality's constraints, stay in range, and round-trip through YAML."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import yaml

import medaug
from medaug.data.sample_data import anatomical_mri, ct_small
from medaug.engine.record import applied
from medaug.errors import UnsafePipelineError
from medaug.presets import PRESETS, preset, preset_config
from medaug.presets.constraints import check_pipeline


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_passes_its_own_constraints(name):
    p = preset(name)
    assert [v for v in check_pipeline(p, p.modality) if v.severity == "error"] == []


@pytest.mark.parametrize("name", list(PRESETS))
def test_yaml_round_trip_gives_an_identical_pipeline(name):
    p = preset(name)
    text = yaml.safe_dump(p.to_config(), sort_keys=False)
    again = medaug.pipeline_from_config(yaml.safe_load(text))
    assert again.to_config() == p.to_config()
    s = medaug.shepp_logan_2d(48)
    a, b = p(s, seed=3), again(s, seed=3)
    np.testing.assert_array_equal(a["image"].array, b["image"].array)


@pytest.mark.parametrize("name,loader", [("ct", ct_small), ("ct-light", ct_small), ("mri", anatomical_mri), ("mri-heavy", anatomical_mri)])
def test_200_draws_stay_within_the_declared_limits(name, loader):
    p = preset(name)
    s = medaug.Sample(image=loader())
    limits = {r.parameter: r.limit for r in __import__("medaug.presets.constraints", fromlist=["RULES"]).RULES[p.modality]
              if r.transform == "RandomAffine" and r.parameter in ("rotation", "scale")}
    for seed in range(200):
        out = p(s, seed=seed)
        check = out.history[-1]
        assert check["name"] == "OutputRangeCheck" and check["params"]["ok"], check
        for rec in applied(out.history):
            if rec["name"] == "Affine":
                assert np.max(np.abs(rec["params"]["rotation"])) <= limits["rotation"]
                assert np.max(np.abs(np.asarray(rec["params"]["scale"]) - 1)) <= limits["scale"] + 1e-9


def test_ct_preset_keeps_hounsfield_range_and_air_fill():
    p = preset("ct")
    s = medaug.Sample(image=ct_small())
    out = p(s, seed=1)
    arr = out["image"].array
    assert arr.min() >= -1024 and arr.max() <= 3071
    assert out.metadata["resampling"]["fill"]["image"] == -1000.0


def test_unsafe_ct_pipeline_is_refused_or_warned():
    cfg = [{"RandomAffine": {"rotation": 30}}, {"RandomGamma": {"log_gamma": 0.2}}]
    with pytest.raises(UnsafePipelineError, match="rotation = 30 exceeds the CT limit 10"):
        medaug.pipeline_from_config(cfg, modality="ct")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        medaug.pipeline_from_config(cfg, modality="ct", on_violation="warn")
    messages = [str(w.message) for w in caught]
    assert any("rotation" in m for m in messages) and any("RandomGamma" in m for m in messages)
    with pytest.raises(UnsafePipelineError, match="RandomGamma"):
        medaug.pipeline_from_config(cfg[1:], modality="ct", on_violation="strict")


def test_preset_config_names_modality_and_fill():
    cfg = preset_config("ct")
    assert cfg["modality"] == "ct" and cfg["fill"] == -1000.0
    with pytest.raises(medaug.ParameterError, match="did you mean 'mri'"):
        preset_config("mrj")


def test_the_preset_name_type_and_docstring_list_every_preset():
    from typing import get_args

    from medaug.presets import PRESETS, PresetName, preset

    assert set(get_args(PresetName)) == set(PRESETS)
    for name in PRESETS:
        assert f"* ``{name}``:" in (preset.__doc__ or "")


@pytest.mark.parametrize(("params", "violated"), [
    ({"rotation": [[-5, 5], 3, 2]}, None),                # per axis, a pair and two numbers
    ({"rotation": [[-5, 5], 3, 20]}, "rotation = 20"),
    ({"translation": [[0, 5], 3]}, None),                   # 2D, one range per axis
    ({"scale": [[0.95, 1.05], [0.92, 1.08]]}, None),        # 2D, one range per axis
    ({"scale": [[0.9, 1.1], [0.8, 1.2]]}, "scale = 0.2"),
    ({"scale": [0.95, 1.05, 0.8, 1.2]}, "scale = 0.2"),     # 2D, flat [min0, max0, min1, max1]
])
def test_the_constraints_read_every_per_axis_spelling_a_transform_takes(params, violated):
    """The checker reads values with the transforms' own range reader: a ragged per-axis list or one range
    per axis of a 2D image was a NumPy ValueError or a wrong 'needs 3 entries' error."""
    medaug.Compose([medaug.spatial.RandomAffine(**params)])  # valid for the transform itself
    found = [str(v) for v in check_pipeline(medaug.Compose([medaug.spatial.RandomAffine(**params)]), "ct")]
    if violated is None:
        assert found == []
    else:
        assert any(violated in v for v in found), found


def _range_checks(history):
    return [h["params"] for h in history if h.get("name") == "OutputRangeCheck"]


def test_preset_auto_records_the_range_check_a_named_preset_records():
    """One modality: the named preset itself; several: one range check per modality, over its own channels."""
    from medaug.engine.config import pipeline_from_config
    from medaug.presets.auto import preset_for_channels

    s = medaug.shepp_logan_3d(20, seed=0)
    ct = medaug.Image(np.clip(s["image"].array, -1000, 1500).astype(np.float32), grid=s["image"].grid)
    named = preset("ct")(medaug.Sample(image=ct), seed=3)
    auto = pipeline_from_config(preset_for_channels(["CT"]))(medaug.Sample(image=ct), seed=3)
    assert [h.get("name", "run") for h in auto.history] == [h.get("name", "run") for h in named.history]
    assert _range_checks(auto.history) == _range_checks(named.history) != []

    mr = ct.array - ct.array.min()
    both = medaug.Image(np.stack([ct.array, mr]), grid=ct.grid, channel_names=("CT", "T2"))
    config = preset_for_channels(["CT", "T2"])
    mixed = pipeline_from_config(config)
    out = mixed(medaug.Sample(image=both), seed=3)
    checks = _range_checks(out.history)
    assert [(c["modality"], c["channels"]) for c in checks] == [("ct", [0]), ("mri", [1])]
    ct_check = checks[0]["images"]["image"]
    assert ct_check["valid"] == [-1024.0, 3071.0] and ct_check["within"]
    assert ct_check["max"] == pytest.approx(float(out["image"].array[0].max()))
    again = pipeline_from_config(yaml.safe_load(yaml.safe_dump(mixed.to_config(), sort_keys=False)))
    assert again.channel_modalities == ["ct", "mri"] and again.to_config() == mixed.to_config()


def test_channel_modalities_check_each_modality_on_its_own_channels():
    from medaug.engine.config import pipeline_from_config

    bias = {"RandomBiasField": {"coefficients": 0.15, "channels": [1]}}  # an MRI artefact: an error on CT
    pipeline_from_config({"transforms": [bias], "channel_modalities": ["ct", "mri"]})  # on the MRI channel: fine
    with pytest.raises(UnsafePipelineError, match="CT constraint"):
        pipeline_from_config({"transforms": [{"RandomBiasField": {"coefficients": 0.15, "channels": [0]}}],
                              "channel_modalities": ["ct", "mri"]})
    with pytest.raises(UnsafePipelineError, match="CT constraint"):  # every channel: the CT one too
        pipeline_from_config({"transforms": [{"RandomBiasField": {"coefficients": 0.15}}],
                              "channel_modalities": ["ct", "mri"]})
    with pytest.raises(medaug.errors.ParameterError, match="not both"):
        pipeline_from_config({"transforms": [], "modality": "ct", "channel_modalities": ["ct"]})
