"""The experiment's statistics against hand-computed cases: McNemar (exact and chi-square) and the paired bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medaug.errors import ParameterError
from medaug.experiment.stats import mcnemar, outside_noise, paired_bootstrap


def _table(both: int, b: int, c: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Right/wrong vectors of A and B with the given 2x2 counts (b: A right B wrong, c: A wrong B right)."""
    a = [1] * both + [1] * b + [0] * c + [0] * neither
    bb = [1] * both + [0] * b + [1] * c + [0] * neither
    return np.asarray(a, bool), np.asarray(bb, bool)


def _chi2_1df_tail(x: float) -> float:
    return math.erfc(math.sqrt(x / 2.0))  # P(chi2_1 > x) = P(|Z| > sqrt(x))


@pytest.mark.parametrize(("b", "c", "p_exact", "chi2"), [
    (1, 5, 14 / 64, 1.5),          # 2 * (C(6,0) + C(6,1)) / 2^6; (|1-5| - 1)^2 / 6
    (0, 6, 2 / 64, 25 / 6),        # 2 * 1 / 2^6; (6 - 1)^2 / 6
    (3, 3, 1.0, 0.0),              # symmetric: no evidence; |b - c| - 1 < 0 counts as 0
    (4, 5, 1.0, 0.0),              # |b - c| = 1: the correction removes it
])
def test_mcnemar_small_tables(b, c, p_exact, chi2):
    a, bb = _table(7, b, c, 4)
    r = mcnemar(a, bb)
    assert (r["b"], r["c"], r["n"]) == (b, c, 11 + b + c)
    assert r["p_exact"] == pytest.approx(p_exact, rel=1e-12)
    assert r["chi2"] == pytest.approx(chi2, rel=1e-12)
    assert r["p_chi2"] == pytest.approx(_chi2_1df_tail(chi2), rel=1e-9)


def test_mcnemar_textbook_table():
    # Agresti's approval example: 794 / 150 / 86 / 570; corrected statistic 63^2 / 236
    a, bb = _table(794, 150, 86, 570)
    r = mcnemar(a, bb)
    assert r["chi2"] == pytest.approx(63**2 / 236)
    assert r["p_chi2"] == pytest.approx(_chi2_1df_tail(63**2 / 236), rel=1e-9)
    assert r["p_exact"] < 1e-4 and r["p_chi2"] < 1e-4


def test_mcnemar_is_symmetric_and_handles_no_discordant_pair():
    a, bb = _table(5, 2, 7, 1)
    ab, ba = mcnemar(a, bb), mcnemar(bb, a)
    assert (ab["b"], ab["c"]) == (ba["c"], ba["b"]) and ab["p_exact"] == ba["p_exact"]
    same = mcnemar(a, a)
    assert same["b"] == same["c"] == 0 and same["p_exact"] == same["p_chi2"] == 1.0
    with pytest.raises(ParameterError, match="paired"):
        mcnemar([1, 0], [1])


def test_bootstrap_constant_difference_has_a_zero_width_interval():
    a = [np.full(50, 0.7), np.full(40, 0.9)]
    b = [np.full(50, 0.5), np.full(40, 0.7)]
    r = paired_bootstrap(a, b, n_boot=500)
    assert r["mean"] == pytest.approx(0.2) and r["lo"] == pytest.approx(0.2) and r["hi"] == pytest.approx(0.2)
    assert outside_noise(r)


def test_bootstrap_two_cases_one_seed():
    # differences {0, 1}: a resample's mean is 0, 1/2 or 1 with probabilities 1/4, 1/2, 1/4,
    # so the 2.5 % and 97.5 % percentiles are exactly 0 and 1
    r = paired_bootstrap([[1, 1]], [[1, 0]], n_boot=4000)
    assert (r["mean"], r["lo"], r["hi"]) == (0.5, 0.0, 1.0)
    assert not outside_noise(r)


def test_bootstrap_resamples_seeds():
    # two seeds whose cases all differ by 0 and by 1: drawing the seeds gives 0, 1/2, 1 (1/4, 1/2, 1/4)
    a = [np.zeros(30), np.ones(30)]
    b = [np.zeros(30), np.zeros(30)]
    r = paired_bootstrap(a, b, n_boot=4000)
    assert (r["mean"], r["lo"], r["hi"]) == (0.5, 0.0, 1.0)
    # with one seed only, the same cases give no spread at all
    one = paired_bootstrap(a[1:], b[1:], n_boot=500)
    assert one["lo"] == one["hi"] == 1.0


def test_bootstrap_matches_the_binomial_interval():
    # one seed, 1000 cases, 30 % of them +1 and the rest 0: the interval is p ± 1.96 sqrt(p (1 - p) / n)
    d = np.zeros(1000)
    d[:300] = 1
    r = paired_bootstrap([d], [np.zeros(1000)], n_boot=20_000, seed=3)
    half = 1.96 * math.sqrt(0.3 * 0.7 / 1000)
    assert r["lo"] == pytest.approx(0.3 - half, abs=0.004) and r["hi"] == pytest.approx(0.3 + half, abs=0.004)


def test_bootstrap_keeps_the_pairing():
    # B equals A plus noise-free 0.05 on every case: paired, the interval is a point; unpaired it would be wide
    rng = np.random.default_rng(0)
    x = rng.random(200)
    r = paired_bootstrap([x + 0.05], [x], n_boot=500)
    assert r["hi"] - r["lo"] < 1e-12 and r["mean"] == pytest.approx(0.05)


def test_bootstrap_is_reproducible_and_checks_inputs():
    rng = np.random.default_rng(1)
    a, b = [rng.random(40), rng.random(40)], [rng.random(40), rng.random(40)]
    assert paired_bootstrap(a, b, n_boot=300, seed=5) == paired_bootstrap(a, b, n_boot=300, seed=5)
    with pytest.raises(ParameterError, match="same number"):
        paired_bootstrap(a, b[:1])
    with pytest.raises(ParameterError, match="same non-zero length"):
        paired_bootstrap([np.ones(3)], [np.ones(4)])
    with pytest.raises(ParameterError, match="finite"):
        paired_bootstrap([[np.inf, 1.0]], [[0.0, 1.0]])
    with pytest.raises(ParameterError, match="level"):
        paired_bootstrap(a, b, level=1.5)
