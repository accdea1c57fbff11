"""The one range reader (modes, per-axis, integers, bounds) and the limits that keep accepted configs runnable."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import medaug
from medaug import Compose, ParameterError
from medaug.engine.compose import MAX_DEPTH
from medaug.engine.config import pipeline_from_config
from medaug.engine.ranges import Range, count, flag, number, numbers, text
from medaug.spatial import Resample


def test_modes():
    assert Range("symmetric").parse(10, "r") == (-10.0, 10.0)
    assert Range("symmetric", anchor=1.0).parse(0.1, "s") == pytest.approx((0.9, 1.1))
    assert Range("from").parse(15, "std") == (0.0, 15.0)
    assert Range("from", anchor=1.0).parse(4, "factor") == (1.0, 4.0)
    assert Range("exact").parse(3, "n") == (3.0, 3.0)
    for mode in ("symmetric", "from", "exact"):
        assert Range(mode).parse([2, 5], "r") == (2.0, 5.0)  # a pair is taken as is
    assert Range("exact", bounds=(0, 1000), integer=True).ints([1, 4], "n") == (1, 4)
    with pytest.raises(ParameterError, match=r"'n' must be an integer"):
        Range("exact", integer=True).ints(1.5, "n")
    with pytest.raises(ParameterError, match=r"d must be >= 0"):
        Range("symmetric").parse(-1, "rotation")
    with pytest.raises(ParameterError, match=r"d must be >= 1"):
        Range("from", anchor=1.0).parse(0.5, "factor")
    with pytest.raises(ParameterError, match=r"has min > max"):
        Range().parse([3, 1], "r")


def test_per_axis():
    r = Range("symmetric", bounds=(-180, 180))
    assert r.per_axis(5, "rot", 3) == [(-5.0, 5.0)] * 3
    assert r.per_axis([0, 0, 15], "rot", 3) == [(0.0, 0.0), (0.0, 0.0), (-15.0, 15.0)]
    assert r.per_axis([1, 2], "t", 3) == [(1.0, 2.0)] * 3  # a flat pair is one range for every axis
    assert r.per_axis([[0, 1], [2, 3]], "t", 2) == [(0.0, 1.0), (2.0, 3.0)]
    assert r.per_axis([-1, 1, -2, 2, -3, 3], "t", 3) == [(-1.0, 1.0), (-2.0, 2.0), (-3.0, 3.0)]
    r.check_axes([0, 0, 15], "rot", (1, 3))  # fits 3D
    with pytest.raises(ParameterError, match=r"one per axis \(1 or 3 entries\)"):
        r.check_axes([1, 2, 3, 4], "rot", (1, 3))
    with pytest.raises(ParameterError, match=r"must lie in \[-180, 180\]"):
        r.check_axes([0, 0, 400], "rot", (1, 3))  # a bound is reported as such, not as a count


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 2**63, 2**1000, 1e308, "1", None, True, [1]])
def test_numbers_are_finite_and_bounded(bad):
    with pytest.raises(ParameterError):
        number(bad, "x", (-1e6, 1e6))


def test_minus_zero_is_zero_and_integers_stay_exact():
    assert math.copysign(1.0, number(-0.0, "x")) == 1.0
    assert all(math.copysign(1.0, v) == 1.0 for v in Range("symmetric").parse(-0.0, "x"))
    assert count(2**62 + 1, "seed", (0, 2**63 - 1)) == 2**62 + 1
    assert numbers([1, 2], "size", (1, 10), integer=True) == [1.0, 2.0]
    assert flag(False, "f") is False and text("label", "mask") == "label"
    with pytest.raises(ParameterError, match="true or false"):
        flag(-0.0, "fold_guard")
    with pytest.raises(ParameterError, match="a name"):
        text(["label"], "mask")


@settings(max_examples=150, deadline=None, derandomize=True)
@given(value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70),
                       st.lists(st.one_of(st.floats(), st.integers(-(2**70), 2**70)), max_size=4), st.none(), st.text()),
       mode=st.sampled_from(["symmetric", "from", "exact"]))
def test_parse_gives_finite_bounded_ranges_or_a_parameter_error(value, mode):
    r = Range(mode, bounds=(-100.0, 100.0))
    try:
        lo, hi = r.parse(value, "x")
    except ParameterError:
        return
    assert -100.0 <= lo <= hi <= 100.0 and math.isfinite(lo) and math.isfinite(hi)


def test_a_too_fine_resampling_is_refused_before_allocating_naming_the_size():
    big = medaug.Sample(image=medaug.Image(np.zeros((256, 256, 256), np.float32)))
    t0 = time.perf_counter()
    with pytest.raises(ParameterError, match=r"size \(2560000, 2560000, 2560000\).*would need 58.2 EiB"):
        Compose([Resample(spacing=1e-4)])(big, seed=0)
    assert time.perf_counter() - t0 < 2.0
    with pytest.raises(ParameterError, match=r"'spacing' must lie in"):
        Resample(spacing=1e308)


def test_the_memory_budget_can_be_capped(monkeypatch):
    s = medaug.shepp_logan_3d(32)
    monkeypatch.setenv("MEDAUG_MAX_OUTPUT_BYTES", "100000")
    with pytest.raises(ParameterError, match="would need"):
        Compose([Resample(spacing=0.5)])(s, seed=0)
    monkeypatch.delenv("MEDAUG_MAX_OUTPUT_BYTES")
    Compose([Resample(spacing=0.5)])(s, seed=0)


def test_nesting_is_bounded():
    inner = Compose([medaug.spatial.Flip()])
    for _ in range(MAX_DEPTH - 1):
        inner = Compose([inner])
    with pytest.raises(ParameterError, match=f"more than {MAX_DEPTH} deep"):
        Compose([inner])
    deep: list = [{"RandomGamma": {}}]
    for _ in range(500):
        deep = [{"Compose": {"transforms": deep}}]
    with pytest.raises(ParameterError, match="nests deeper than"):
        pipeline_from_config(deep)
    with pytest.raises(ParameterError, match="nests deeper than"):
        pipeline_from_config([{"RandomAffine": {"rotation": json.loads("[" * 200 + "]" * 200)}}])


def test_names_in_a_config_must_be_text():
    with pytest.raises(ParameterError, match="'mask' must be a name"):
        pipeline_from_config([{"RandomGamma": {"mask": ["label"]}}])
    with pytest.raises(ParameterError, match="'isotropic' must be true or false"):
        pipeline_from_config([{"RandomAffine": {"isotropic": "yes"}}])
