"""The catalog agrees with the registry, the presets, the constraint checker and the transforms' own validation."""

from __future__ import annotations

import dataclasses
import re

import pytest

from medaug.engine.config import pipeline_from_config
from medaug.engine.registry import transform_classes
from medaug.errors import ParameterError
from medaug.presets import PRESETS
from medaug.presets.catalog import transform_entries, transform_entry
from medaug.presets.constraints import MODALITIES, check_pipeline

ENTRIES = transform_entries()


def test_every_configurable_registered_transform_has_one_entry():
    configurable = {n for n, c in transform_classes().items() if not c.__module__.startswith("medaug.interop")}
    assert set(ENTRIES) == configurable


def test_every_entry_says_what_it_does_and_documents_every_parameter():
    for e in ENTRIES.values():
        assert e.summary and "\n" not in e.summary, e.name
        assert e.kind in ("spatial", "intensity", "group"), e.name
        undocumented = [p.name for p in e.parameters if not p.description]
        assert not undocumented, f"{e.name}: document {undocumented} in its NumPy docstring"
        cls = transform_classes()[e.name]
        if dataclasses.is_dataclass(cls):
            assert [p.name for p in e.parameters] == [f.name for f in dataclasses.fields(cls) if f.init]


def test_presets_listed_are_the_presets_whose_config_names_the_transform():
    for name, (_, _, config, _) in PRESETS.items():
        named = {next(iter(item)) for item in config}
        for e in ENTRIES.values():
            assert (name in e.presets) == (e.name in named), (name, e.name)
    assert transform_entry("RandomMotion").modalities == ("mri",)


@pytest.mark.parametrize("modality", MODALITIES)
def test_verdict_matches_the_constraint_checker_on_defaults(modality):
    """'not allowed' and 'discouraged' transforms are flagged by check_pipeline; 'allowed' ones never are."""
    for e in ENTRIES.values():
        if not e.random:
            continue
        try:
            pipeline = pipeline_from_config([{e.name: {}}])
        except ParameterError:  # needs a value (RandomLearnedDeformation's fields)
            continue
        found = check_pipeline(pipeline, modality)
        banned = [v for v in found if v.parameter is None]
        status = e.verdict(modality).status
        if status == "not allowed":
            assert any(v.severity == "error" for v in banned), e.name
        elif status == "discouraged":
            assert banned and all(v.severity == "warning" for v in banned), e.name
        elif status == "allowed":
            assert not found, (e.name, found)


def test_allowed_ranges_are_the_ones_the_transform_enforces():
    """A value past the upper end shown is refused with an error that names that end."""
    checked = 0
    for e in ENTRIES.values():
        cls = transform_classes()[e.name]
        for p in e.parameters:
            m = re.fullmatch(r"[\[(](\S+), (\S+)\]", p.allowed)
            if not m:
                continue
            hi = float(m.group(2))
            over = hi + max(1.0, abs(hi))
            messages = []
            for value in (over, [float(m.group(1)), over]):
                try:
                    cls(**{p.name: value})
                except ParameterError as exc:
                    messages.append(str(exc))
            assert any(f"{m.group(2)}]" in msg for msg in messages), (e.name, p.name, messages)
            checked += 1
    assert checked > 50


def test_units_and_bounds_come_from_the_code():
    rotation = transform_entry("RandomAffine").parameter("rotation")
    assert (rotation.unit, rotation.allowed, rotation.default) == ("degrees", "[-360, 360]", 0.0)
    assert transform_entry("RandomElastic").parameter("max_displacement").unit == "mm"
    assert transform_entry("RandomGibbs").parameter("alpha").allowed == "(0, 1]"
    assert transform_entry("Deformation").parameter("field").required


def test_verdicts_name_the_rules():
    ct = transform_entry("RandomAffine").verdict("CT")
    assert ct.modality == "ct" and ct.status == "limited"
    assert any(line.startswith("|rotation| <= 10 (error") for line in ct.limits)
    assert transform_entry("RandomRotation").verdict("ct").status == "limited"  # a subclass of RandomAffine
    assert transform_entry("RandomMotion").verdict("us").status == "not allowed"
    assert transform_entry("RandomGamma").verdict("ct").status == "discouraged"
    assert transform_entry("RandomFlip").verdict("ct").status == "allowed"
    with pytest.raises(ParameterError, match="unknown modality"):
        transform_entry("RandomFlip").verdict("pet")


def test_unknown_names_get_close_names_or_the_rename():
    with pytest.raises(ParameterError, match=r"did you mean 'RandomAffine'.*medaug transforms"):
        transform_entry("randomafine")
    with pytest.raises(ParameterError, match=r"unknown transform 'Zzz'; run 'medaug transforms'"):
        transform_entry("Zzz")
