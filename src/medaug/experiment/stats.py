"""Paired comparisons of two strategies: bootstrap confidence interval and McNemar's test.

Every seed builds its own data set and both strategies are evaluated on its
test cases, so a comparison is paired twice: by seed and by test case.

* :func:`paired_bootstrap` — the mean over seeds of the per-seed mean paired
  difference (strategy minus reference), with a percentile confidence interval
  from a two-level bootstrap: seeds are drawn with replacement, and within each
  drawn seed its test cases are drawn with replacement (the same cases for both
  strategies, so the pairing is kept).  The interval therefore carries both the
  noise of the finite test set and the seed-to-seed spread of training.
* :func:`mcnemar` — McNemar's test on paired right/wrong predictions (pooled
  over seeds): the exact two-sided binomial test on the discordant pairs
  (``scipy.stats.binomtest``) and the chi-square statistic with continuity
  correction (``scipy.stats.chi2``).

An effect is called *outside the noise* when its 95 % interval excludes 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ParameterError

__all__ = ["mcnemar", "outside_noise", "paired_bootstrap"]


def _paired_differences(a: Sequence[Any], b: Sequence[Any]) -> list[np.ndarray]:
    if len(a) != len(b) or not len(a):
        raise ParameterError(f"need the same number (>= 1) of seeds for both strategies, got {len(a)} and {len(b)}")
    out = []
    for s, (x, y) in enumerate(zip(a, b)):
        x = np.asarray(x, np.float64).ravel()
        y = np.asarray(y, np.float64).ravel()
        if x.shape != y.shape or x.size == 0:
            raise ParameterError(f"seed {s}: paired values must have the same non-zero length, got {x.size} and {y.size}")
        d = x - y
        if not np.isfinite(d).all():
            raise ParameterError(f"seed {s}: paired differences must be finite")
        out.append(d)
    return out


def paired_bootstrap(
    a: Sequence[Any],
    b: Sequence[Any],
    *,
    n_boot: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
    chunk: int = 500,
) -> dict[str, float]:
    """Mean paired difference ``a - b`` and its bootstrap confidence interval over test cases and seeds.

    Parameters
    ----------
    a, b : sequence of array_like
        One array per seed: the per-case values of the two strategies on that
        seed's test cases (e.g. 1/0 for right/wrong, or a Dice per case), in the
        same case order.
    n_boot : int
        Bootstrap replicates.
    level : float
        Confidence level of the percentile interval.
    seed : int
        Seed of the resampling.
    chunk : int
        Replicates drawn at once (memory: ``chunk x cases`` integers).

    Returns
    -------
    dict
        ``mean`` (the observed mean over seeds of the per-seed mean
        difference), ``lo`` and ``hi`` (the interval), ``level``, ``n_boot``,
        ``seeds`` and ``cases`` (per seed, the first seed's count).

    Examples
    --------
    >>> r = paired_bootstrap([[1, 1, 0, 1]], [[0, 1, 0, 1]], n_boot=2000)
    >>> r["mean"], r["lo"], r["hi"]
    (0.25, 0.0, 0.75)
    """
    if not 0.0 < level < 1.0:
        raise ParameterError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ParameterError(f"n_boot must be >= 1, got {n_boot}")
    diffs = _paired_differences(a, b)
    n_seeds = len(diffs)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 31]))
    picks = rng.integers(0, n_seeds, size=(n_boot, n_seeds))  # seeds drawn with replacement per replicate
    sums = np.zeros(n_boot)
    for s, d in enumerate(diffs):
        rows, cols = np.nonzero(picks == s)  # every occurrence of seed s gets its own case resample
        del cols
        means = np.empty(rows.size)
        for i in range(0, rows.size, chunk):
            k = min(chunk, rows.size - i)
            means[i:i + k] = d[rng.integers(0, d.size, size=(k, d.size))].mean(axis=1)
        np.add.at(sums, rows, means)
    reps = sums / n_seeds
    tail = 100.0 * (1.0 - level) / 2.0
    lo, hi = np.percentile(reps, [tail, 100.0 - tail])
    return {
        "mean": float(np.mean([d.mean() for d in diffs])),
        "lo": float(lo),
        "hi": float(hi),
        "level": float(level),
        "n_boot": int(n_boot),
        "seeds": n_seeds,
        "cases": int(diffs[0].size),
    }


def outside_noise(ci: dict[str, float]) -> bool:
    """True when the confidence interval of a difference excludes 0."""
    return bool(ci["lo"] > 0.0 or ci["hi"] < 0.0)


def mcnemar(correct_a: Any, correct_b: Any) -> dict[str, float]:
    """McNemar's test of two classifiers on the same cases (paired right/wrong).

    Parameters
    ----------
    correct_a, correct_b : array_like of bool
        Whether each case was classified correctly by A and by B (pool the
        seeds by concatenating them).

    Returns
    -------
    dict
        ``b`` (A right, B wrong), ``c`` (A wrong, B right), ``n`` (cases),
        ``p_exact`` (two-sided binomial test of ``b`` out of ``b + c`` at 1/2),
        ``chi2`` (``(|b - c| - 1)^2 / (b + c)``, continuity-corrected, 0 when
        ``|b - c| <= 1``) and ``p_chi2`` (its chi-square tail, 1 degree of
        freedom).  With no discordant pair both p-values are 1.

    Examples
    --------
    >>> r = mcnemar([1, 1, 1, 0, 1, 1, 0], [0, 1, 0, 0, 0, 1, 1])
    >>> r["b"], r["c"], round(r["p_exact"], 4)
    (3, 1, 0.625)
    """
    from scipy import stats

    a = np.asarray(correct_a).ravel().astype(bool)
    b_ = np.asarray(correct_b).ravel().astype(bool)
    if a.shape != b_.shape:
        raise ParameterError(f"McNemar needs paired predictions, got {a.size} and {b_.size}")
    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    n = b + c
    if n == 0:
        return {"b": 0, "c": 0, "n": int(a.size), "p_exact": 1.0, "chi2": 0.0, "p_chi2": 1.0}
    chi2 = max(abs(b - c) - 1.0, 0.0) ** 2 / n
    return {
        "b": b,
        "c": c,
        "n": int(a.size),
        "p_exact": float(stats.binomtest(b, n, 0.5).pvalue),
        "chi2": float(chi2),
        "p_chi2": float(stats.chi2.sf(chi2, df=1)),
    }
