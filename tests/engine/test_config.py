"""Pipelines from configuration: validation, round trips, replay."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

import medaug
from medaug.engine.record import applied
from medaug.errors import ParameterError

STANDARD = [
    {"RandomAffine": {"rotation": 10, "scale": [0.9, 1.1], "translation": 5}},
    {"RandomElastic": {"control_points": 7, "max_displacement": 7}},
    {"RandomFlip": {"axes": ["LR"], "p": 0.5}},
    {"RandomGamma": {"log_gamma": 0.3}},
    {"RandomNoise": {"std": [0, 2]}},
    {"RandomBiasField": {"order": 3, "coefficients": 0.5}},
]


def test_standard_pipeline_builds_and_round_trips(tmp_path):
    p = medaug.pipeline_from_config(STANDARD)
    assert [type(t).__name__ for t in p.transforms] == [next(iter(i)) for i in STANDARD]
    for ext in ("yaml", "json"):
        medaug.save_config(p, tmp_path / f"p.{ext}")
        again = medaug.pipeline_from_config(tmp_path / f"p.{ext}")
        assert again.to_config() == p.to_config()


@pytest.mark.parametrize(
    "config, fragment",
    [
        ([{"RandomAfine": {}}], "did you mean 'RandomAffine'"),
        ([{"RandomAffine": {"rotaton": 10}}], "did you mean 'rotation'"),
        ([{"RandomAffine": {"scale": [1.2, 0.8]}}], "min > max"),
        ([{"RandomGamma": {"p": -0.1}}], "'p' must be a probability"),
        ({"RandomAffine": {}}, "must be a list"),
        ([{"RandomFlip": {"axes": ["XY"]}}], "unknown axis"),
        ([42], "expected one {TransformName"),
    ],
)
def test_validation_errors_name_the_key(config, fragment):
    with pytest.raises(ParameterError, match=None) as info:
        medaug.pipeline_from_config(config)
    assert fragment in str(info.value)


def test_yaml_aliases_are_refused(tmp_path):
    bomb = "a: &a [1, 2]\nb: [*a, *a]\n"
    (tmp_path / "bomb.yaml").write_text(bomb)
    with pytest.raises(ParameterError, match="anchors are not allowed"):
        medaug.pipeline_from_config(tmp_path / "bomb.yaml")


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(ParameterError, match="config file not found") as info:
        medaug.pipeline_from_config(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(info.value)


def test_history_replays_bit_identically():
    s = medaug.shepp_logan_3d(40, seed=2, spacing=(3.0, 3.0, 3.0))  # 120 mm: 7 mm stays below 0.4 x the control spacing
    p = medaug.pipeline_from_config(STANDARD)
    out = p(s, seed=5)
    again = medaug.replay(out.history)(s)
    np.testing.assert_array_equal(out["image"].array, again["image"].array)
    np.testing.assert_array_equal(out["label"].array, again["label"].array)
    json.dumps(out.history)  # the history is plain JSON


def test_oneof_and_someof_from_config():
    cfg = [
        {"OneOf": {"transforms": [{"RandomGamma": {"log_gamma": 0.2}}, {"RandomNoise": {"std": 5}}], "weights": [1, 3]}},
        {"SomeOf": {"transforms": [{"RandomFlip": {"axes": ["LR"], "p": 1.0}}, {"RandomAffine": {"rotation": 5}}], "n": 1}},
    ]
    p = medaug.pipeline_from_config(cfg)
    s = medaug.shepp_logan_2d(32)
    names = [tuple(h["name"] for h in applied(p(s, seed=i).history)) for i in range(40)]
    assert all(len(n) == 2 for n in names)
    assert sum(n[0] == "Noise" for n in names) > sum(n[0] == "Gamma" for n in names)
    assert yaml.safe_load(yaml.safe_dump(p.to_config())) == p.to_config()
