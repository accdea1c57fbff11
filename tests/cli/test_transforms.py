"""``medaug transforms``: the list, one transform's parameters and rules, modality verdicts, unknown names."""

from __future__ import annotations

from medaug.cli.main import main
from medaug.engine.config import pipeline_from_config
from medaug.errors import ParameterError
from medaug.presets.catalog import transform_entries


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_list_has_every_transform_once_with_its_summary(capsys):
    code, out, _ = run(capsys, "transforms")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.strip()}
    entries = transform_entries()
    assert set(rows) == set(entries)
    for name, e in entries.items():
        assert e.summary[:30] in rows[name]


def test_one_transform_shows_parameters_units_defaults_ranges_presets_and_rules(capsys):
    code, out, _ = run(capsys, "transforms", "RandomAffine")
    assert code == 0
    assert "rotation: float or list; default 0.0; unit degrees; allowed [-360, 360]" in out
    assert "translation: float or list; default 0.0; unit mm" in out
    assert "used by presets: ct, ct-light, mri, mri-heavy, xray, ultrasound" in out
    assert "  ct: limited" in out and "|rotation| <= 10 (error" in out
    assert "  ultrasound: limited" in out


def test_modality_filters_the_rules_and_marks_the_list(capsys):
    code, out, _ = run(capsys, "transforms", "RandomMotion", "--modality", "CT")
    assert code == 0 and "  ct: not allowed" in out and "mri:" not in out
    code, out, _ = run(capsys, "transforms", "RandomMotion", "--modality", "mri")
    assert "  mri: allowed" in out
    code, out, _ = run(capsys, "transforms", "--modality", "ct")
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines() if line.startswith("  ") and line.strip()}
    assert rows["RandomSpike"][:2] == ["not", "allowed"] and rows["RandomFlip"][0] == "allowed"
    assert rows["RandomAffine"][0] == "limited" and rows["RandomGamma"][0] == "discouraged"


def test_unknown_name_or_modality_is_one_line_exit_2(capsys):
    code, out, err = run(capsys, "transforms", "RandomAfine")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "did you mean 'RandomAffine'" in err
    code, _, err = run(capsys, "transforms", "RandomFlip", "--modality", "pet")
    assert code == 2 and "unknown modality 'pet'" in err


def test_a_config_naming_an_unknown_transform_points_to_the_command():
    try:
        pipeline_from_config([{"RandomAfine": {"rotation": 5}}])
    except ParameterError as exc:
        assert "run 'medaug transforms' for the list" in str(exc) and "RandomAffine" in str(exc)
    else:
        raise AssertionError("an unknown transform was accepted")
