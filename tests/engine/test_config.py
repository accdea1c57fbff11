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


def test_a_tab_indent_names_the_line_column_and_cause(tmp_path):
    path = tmp_path / "tab.yaml"
    path.write_text("- RandomAffine:\n\trotation: 10\n", encoding="utf-8")
    with pytest.raises(ParameterError) as info:
        medaug.pipeline_from_config(path)
    assert str(info.value) == f"{path}: line 2, column 1: a tab character cannot indent YAML; use spaces"


def test_yaml_and_json_syntax_errors_keep_line_column_and_cause(tmp_path):
    (tmp_path / "open.yaml").write_text("- RandomAffine: {rotation: [10\n", encoding="utf-8")
    (tmp_path / "comma.json").write_text('[\n  {"RandomAffine": {"rotation": 10,}}\n]', encoding="utf-8")
    with pytest.raises(ParameterError, match=r"open.yaml: line 2, column 1: not valid YAML: expected ',' or ']'.*"
                       r"flow sequence started at line 1, column 28"):
        medaug.pipeline_from_config(tmp_path / "open.yaml")
    with pytest.raises(ParameterError, match=r"comma.json: line 2, column 36: not valid JSON: Expecting property name"):
        medaug.pipeline_from_config(tmp_path / "comma.json")


def test_every_problem_of_a_config_is_reported_with_its_item_and_line(tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text(
        "transforms:\n"
        "  - RandomAfine: {rotation: 10}\n"  # line 2
        "  - RandomFlip: {axes: [LR], p: 2}\n"
        "  - RandomAffine:\n"
        "      rotaton: 3\n"  # line 5
        "      scale: [1.2, 0.8]\n"
        "  - OneOf:\n"
        "      transforms:\n"
        "        - RandomGamma: {log_gamma: 0.1}\n"
        "        - RandomNoize: {}\n",  # line 10
        encoding="utf-8",
    )
    with pytest.raises(ParameterError) as info:
        medaug.pipeline_from_config(path)
    first, *lines = str(info.value).split("\n")
    assert first == f"{path}: 5 problems in the config:"
    assert [ln.split(":")[0].strip() for ln in lines] == ["line 2", "line 3", "line 5", "line 6", "line 10"]
    assert "item 1: unknown transform 'RandomAfine'" in lines[0]
    assert "item 2 (RandomFlip): 'p' must be a probability" in lines[1]
    assert "item 3 (RandomAffine): unknown parameter 'rotaton'" in lines[2]
    assert "item 3 (RandomAffine): 'scale': range [1.2, 0.8] has min > max" in lines[3]
    assert "item 4.2: unknown transform 'RandomNoize' (did you mean 'RandomNoise'?)" in lines[4]


def test_problems_of_a_python_config_name_their_item():
    with pytest.raises(ParameterError) as info:
        medaug.pipeline_from_config([{"RandomGamma": {"p": 3}}, "RandomFlip", {"Xyzzy": {}}])
    assert str(info.value).split("\n")[1:] == [
        "  item 1 (RandomGamma): 'p' must be a probability in [0, 1], got 3",
        "  item 3: unknown transform 'Xyzzy'; run 'medaug transforms' for the list",
    ]


@pytest.mark.parametrize("rotation", [0.5, [-0.3, 0.3], [0, 0, 0.2], [[0.0, 0.1], 0, 0]])
def test_a_small_float_rotation_warns_that_rotations_are_in_degrees(rotation):
    with pytest.warns(medaug.errors.DegreesWarning, match=r"'rotation' is in degrees.*if you meant radians"):
        medaug.pipeline_from_config([{"RandomAffine": {"rotation": rotation}}])


@pytest.mark.parametrize("rotation", [0, 0.0, 10, 5, [-3, 3], 10.0, [0, 0, 15.5]])
def test_integer_zero_or_large_rotations_do_not_warn(rotation):
    medaug.pipeline_from_config([{"RandomAffine": {"rotation": rotation}}])  # warnings are errors in the tests


def test_motion_degrees_warn_too():
    with pytest.warns(medaug.errors.DegreesWarning, match="RandomMotion 'degrees'"):
        medaug.pipeline_from_config([{"RandomMotion": {"degrees": [0.1, 0.3]}}])


def test_yaml_numbers_with_an_exponent_and_no_dot_are_numbers(tmp_path):
    """PyYAML (YAML 1.1) read 5e-3 as the string '5e-3'; JSON and YAML 1.2 read a number, and so does medaug."""
    from medaug.engine.config import load_config_file, pipeline_from_config

    path = tmp_path / "sci.yaml"
    path.write_text("- RandomNoise: {std: [0, 5e-3]}\n- RandomAffine: {rotation: 1E1, scale: [9e-1, 11e-1]}\n")
    steps = load_config_file(path)
    pipeline_from_config(path)  # accepted
    assert steps == [{"RandomNoise": {"std": [0, 0.005]}}, {"RandomAffine": {"rotation": 10.0, "scale": [0.9, 1.1]}}]
