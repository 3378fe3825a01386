"""Pass-rate statistics for supervision sampling (DESIGN.md §5).

Pure functions: counts, results and inclusion probabilities in; estimates, intervals, p-values
and plans out. No I/O, no web framework, no database. NumPy and SciPy do the numbers: the
special functions (normal, Student t, beta, binomial, hypergeometric, chi-square quantiles and
tails) come from :mod:`scipy.stats`; nothing here re-implements them.

Conventions
- A "rate" is a pass rate: ``x`` passed batches out of ``n`` batches tested. The denominator
  is always the number of batches tested (samples with a final result), never the number of
  enterprises drawn.
- Functions take arrays (one entry per group: category, region, period, ...) and broadcast
  them; scalars are accepted and give 0-d arrays (``float(...)`` works on them) unless a
  signature says it returns a plain ``int``.
- ``n = 0`` gives ``nan`` rather than a made-up rate.
- Invalid input (negative counts, ``x > n``, a confidence outside (0, 1), an unknown method)
  raises :class:`ValueError` with a message that names the offending argument.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, overload

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

__all__ = [
    "METHODS",
    "EarlyWarningResult",
    "HomogeneityResult",
    "PairwiseComparison",
    "TargetTestResult",
    "TrendResult",
    "WeightedEstimate",
    "WeightedEstimateGroups",
    "allocate",
    "benjamini_hochberg",
    "binomial_interval",
    "chi_square_homogeneity",
    "cochran_armitage",
    "early_warning",
    "flag_small",
    "sample_size_proportion",
    "target_test",
    "weighted_estimate",
    "weighted_estimate_grouped",
    "zero_failure_sample_size",
]

METHODS = ("wilson", "wilson_cc", "clopper_pearson", "jeffreys", "agresti_coull")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.str_]
Method = Literal["wilson", "wilson_cc", "clopper_pearson", "jeffreys", "agresti_coull"]
Sided = Literal["two", "lower", "upper"]

# Below this effective sample size the weighted estimate uses the Korn-Graubard interval.
SMALL_N_EFF = 30.0


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


def _check_probability(value: float, name: str) -> float:
    v = float(value)
    if not 0.0 < v < 1.0:  # also rejects nan
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    return v


def _as_counts(
    x: npt.ArrayLike, n: npt.ArrayLike, *, integer: bool
) -> tuple[FloatArray, FloatArray]:
    xa = np.asarray(x, dtype=float)
    na = np.asarray(n, dtype=float)
    try:
        xb, nb = np.broadcast_arrays(xa, na)
    except ValueError as exc:
        raise ValueError(f"x and n have incompatible shapes {xa.shape} and {na.shape}") from exc
    if not (np.all(np.isfinite(xb)) and np.all(np.isfinite(nb))):
        raise ValueError("x and n must be finite numbers")
    if np.any(nb < 0):
        raise ValueError("n (batches tested) must be >= 0")
    if np.any(xb < 0):
        raise ValueError("x (batches passed) must be >= 0")
    if np.any(xb > nb):
        raise ValueError("x (batches passed) must not exceed n (batches tested)")
    if integer and (np.any(xb != np.round(xb)) or np.any(nb != np.round(nb))):
        raise ValueError("x and n must be whole numbers of batches")
    # broadcast_arrays returns read-only views; callers may write into the result
    return np.array(xb, dtype=float), np.array(nb, dtype=float)


# --------------------------------------------------------------------------------------------
# single-proportion intervals
# --------------------------------------------------------------------------------------------


def _bounds(
    x: FloatArray, n: FloatArray, method: str, tail: float
) -> tuple[FloatArray, FloatArray]:
    """Lower and upper one-sided bounds, each with tail probability ``tail``.

    A two-sided interval at confidence 1 - α is ``tail = α/2``. Exact ends at x = 0 and
    x = n, clipping to [0, 1] and nan for n = 0 are applied here for every method.
    """
    z = float(sps.norm.isf(tail))
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "wilson":
            centre = (x + z2 / 2.0) / (n + z2)
            half = z * np.sqrt(x * (n - x) / n + z2 / 4.0) / (n + z2)
            lo, hi = centre - half, centre + half
        elif method == "wilson_cc":
            p = x / n
            q = 1.0 - p
            denom = 2.0 * (n + z2)
            # The radicands can dip below 0 only at confidences far below any practical use;
            # clipping keeps the formula defined there.
            rad_lo = np.maximum(z2 - 2.0 - 1.0 / n + 4.0 * p * (n * q + 1.0), 0.0)
            rad_hi = np.maximum(z2 + 2.0 - 1.0 / n + 4.0 * p * (n * q - 1.0), 0.0)
            lo = (2.0 * x + z2 - 1.0 - z * np.sqrt(rad_lo)) / denom
            hi = (2.0 * x + z2 + 1.0 + z * np.sqrt(rad_hi)) / denom
        elif method == "clopper_pearson":
            lo = sps.beta.ppf(tail, x, n - x + 1.0)
            hi = sps.beta.isf(tail, x + 1.0, n - x)
        elif method == "jeffreys":
            lo = sps.beta.ppf(tail, x + 0.5, n - x + 0.5)
            hi = sps.beta.isf(tail, x + 0.5, n - x + 0.5)
        elif method == "agresti_coull":
            n_tilde = n + z2
            p_tilde = (x + z2 / 2.0) / n_tilde
            half = z * np.sqrt(p_tilde * (1.0 - p_tilde) / n_tilde)
            lo, hi = p_tilde - half, p_tilde + half
        else:  # pragma: no cover - callers validate
            raise ValueError(f"unknown interval method {method!r}")
    lo = np.clip(np.where(x == 0, 0.0, lo), 0.0, 1.0)
    hi = np.clip(np.where(x == n, 1.0, hi), 0.0, 1.0)
    empty = n == 0
    lo = np.where(empty, np.nan, lo).astype(float)
    hi = np.where(empty, np.nan, hi).astype(float)
    return lo, hi


def binomial_interval(
    x: npt.ArrayLike,
    n: npt.ArrayLike,
    *,
    method: str = "wilson",
    confidence: float = 0.95,
    sided: str = "two",
) -> tuple[FloatArray, FloatArray]:
    """Confidence interval for a pass rate x/n, vectorised over groups.

    Methods (z = Φ⁻¹(1 − t), t = α/2 two-sided or α one-sided, p̂ = x/n, q̂ = 1 − p̂):

    - ``"wilson"`` (default; Wilson 1927): (x + z²/2)/(n + z²) ± z·√(x(n−x)/n + z²/4)/(n + z²).
    - ``"wilson_cc"``: score interval with continuity correction, Newcombe (1998) method 4:
      L = (2np̂ + z² − 1 − z√(z² − 2 − 1/n + 4p̂(nq̂ + 1))) / (2(n + z²)),
      U = (2np̂ + z² + 1 + z√(z² + 2 − 1/n + 4p̂(nq̂ − 1))) / (2(n + z²)).
    - ``"clopper_pearson"`` (exact; Clopper & Pearson 1934): L = B⁻¹(t; x, n−x+1),
      U = B⁻¹(1−t; x+1, n−x), B⁻¹ the beta quantile.
    - ``"jeffreys"`` (Brown, Cai & DasGupta 2001): beta quantiles of Beta(x + ½, n − x + ½).
    - ``"agresti_coull"`` (Agresti & Coull 1998): ñ = n + z², p̃ = (x + z²/2)/ñ,
      p̃ ± z√(p̃(1 − p̃)/ñ).

    Every method returns an exact 0 lower end when x = 0 and an exact 1 upper end when x = n
    (as Brown, Cai & DasGupta recommend for Jeffreys; statsmodels does not do this for Jeffreys
    and Agresti–Coull). Ends are clipped to [0, 1]; n = 0 gives (nan, nan).

    ``sided="lower"`` returns (one-sided lower bound at confidence 1 − α, 1.0) and
    ``sided="upper"`` returns (0.0, one-sided upper bound); one-sided bounds need
    confidence > 0.5. Non-integer x and n are accepted (effective counts, as in Korn–Graubard).

    Returns ``(lower, upper)``, arrays of the broadcast shape of x and n (0-d for scalars).
    """
    if method not in METHODS:
        raise ValueError(f"unknown interval method {method!r}; choose one of {', '.join(METHODS)}")
    conf = _check_probability(confidence, "confidence")
    if sided not in ("two", "lower", "upper"):
        raise ValueError(f"sided must be 'two', 'lower' or 'upper', got {sided!r}")
    xa, na = _as_counts(x, n, integer=False)
    if sided == "two":
        return _bounds(xa, na, method, (1.0 - conf) / 2.0)
    if conf <= 0.5:
        raise ValueError(f"a one-sided bound needs confidence > 0.5, got {confidence!r}")
    lo, hi = _bounds(xa, na, method, 1.0 - conf)
    empty = na == 0
    if sided == "lower":
        return lo, np.where(empty, np.nan, 1.0)
    return np.where(empty, np.nan, 0.0), hi


# --------------------------------------------------------------------------------------------
# design-weighted (stratified) estimates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightedEstimate:
    """Population pass rate estimated from a (stratified) probability sample.

    ``n`` is the number of results used; ``n_eff`` the design-effect based effective sample
    size p̂(1 − p̂)/SE², at most n (Kish's weight-based one is ``n_eff_kish``);
    ``interval_method`` is ``"korn_graubard"``, ``"wilson"``, ``"census"`` (every stratum fully
    enumerated) or ``"none"`` (no results).
    """

    estimate: float
    se: float
    n: int
    n_eff: float
    lower: float
    upper: float
    interval_method: str
    n_eff_kish: float = math.nan


@dataclass(frozen=True)
class WeightedEstimateGroups:
    """:class:`WeightedEstimate` fields as arrays, one entry per group in ``groups`` (sorted)."""

    groups: npt.NDArray[Any]
    estimate: FloatArray
    se: FloatArray
    n: IntArray
    n_eff: FloatArray
    lower: FloatArray
    upper: FloatArray
    interval_method: StrArray
    n_eff_kish: FloatArray


def _as_passed(y: npt.ArrayLike) -> FloatArray:
    ya = np.asarray(y)
    if ya.ndim != 1:
        raise ValueError("results must be a one-dimensional array of 0/1 (fail/pass)")
    yf = ya.astype(float)
    if not np.all((yf == 0.0) | (yf == 1.0)):
        raise ValueError("results must be 0 (fail) or 1 (pass)")
    return yf


def _labels(values: npt.ArrayLike | None, m: int, name: str) -> tuple[npt.NDArray[Any], IntArray]:
    if values is None:
        return np.zeros(1, dtype=np.int64), np.zeros(m, dtype=np.int64)
    arr = np.asarray(values)
    if arr.shape != (m,):
        raise ValueError(f"{name} must have one entry per result ({m}), got shape {arr.shape}")
    uniq, inverse = np.unique(arr, return_inverse=True)
    return uniq, inverse.reshape(-1).astype(np.int64)


def weighted_estimate_grouped(
    group_ids: npt.ArrayLike,
    y: npt.ArrayLike,
    pi: npt.ArrayLike,
    strata: npt.ArrayLike | None = None,
    stratum_sizes: npt.ArrayLike | Mapping[Any, float] | None = None,
    confidence: float = 0.95,
    *,
    interval: str = "auto",
    df_adjust: bool = False,
    min_n_eff: float = SMALL_N_EFF,
    truncate_n_eff: bool = True,
    counts: npt.ArrayLike | None = None,
) -> WeightedEstimateGroups:
    """Design-weighted pass rate per group from one stratified draw, vectorised.

    One row per tested batch: ``group_ids`` (the reporting group: category, region, ...),
    ``y`` (1 pass, 0 fail), ``pi`` (inclusion probability stored at the draw, π = n_h/N_h),
    ``strata`` (design stratum, e.g. credit class; omitted = one stratum) and
    ``stratum_sizes`` (N_h, either one value per row or a mapping stratum → N_h).

    Groups are treated as *domains* of the one stratified design (Särndal, Swensson & Wretman
    1992, Model Assisted Survey Sampling §10.3): the stratum counts n_h in the finite-population
    correction and in the variance are counted over all rows, not within the group. When each
    stratum lies inside one group (e.g. strata labelled by plan and class) this is the ordinary
    stratified estimator per group.

    Estimator (Hájek 1971 ratio form), w = 1/π:  p̂_d = Σ_d w·y / Σ_d w.

    Variance (Taylor linearisation, stratified SRS without replacement; Cochran 1977 §5.3,
    Särndal et al. §5.7): with z_i = w_i·1[i∈d]·(y_i − p̂_d) / Σ_d w,
    V̂(p̂_d) = Σ_h (1 − f_h)·n_h/(n_h − 1)·Σ_{i∈h}(z_i − z̄_h)²,  f_h = n_h/N_h.
    With π_i = n_h/N_h this equals Σ_h W_h²(1 − f_h)s_h²/n_h, the textbook stratified formula.
    Without ``stratum_sizes``, f_h is the mean π in stratum h. A stratum with a single result
    contributes 0 (its variance cannot be estimated).

    Effective sample size (Korn & Graubard 1998): n_eff = p̂(1 − p̂)/V̂, truncated at the number
    of results n (design effect floored at 1; ``truncate_n_eff=True``), as in the NCHS data
    presentation standards for proportions (Parker et al. 2017). The truncation matters here:
    with pass rates near 1 a small stratum often shows no failure, its estimated variance is 0,
    and the untruncated n_eff can be several times n; intervals built on it under-cover badly
    (in a small-sample simulation like the one in tests/core/test_stats.py a nominal 95%
    interval covered only 70–86% of draws without truncation, ≥ 96% with it). When p̂ is 0 or 1
    (V̂ = 0) Kish's (1965) n_eff = (Σw)²/Σw² is used (equal to n under equal weights, smaller
    under unequal ones; Korn & Graubard use n). A group whose rows all come from fully
    enumerated strata (f_h = 1) has no sampling error: n_eff = ∞, the interval is the point and
    ``interval_method`` is ``"census"``. ``n_eff_kish`` is always returned as well.

    Interval (``interval="auto"``): Korn–Graubard (1998) — the Clopper–Pearson interval with
    x* = p̂·n*, n* = n_eff — when n_eff < ``min_n_eff`` (30), otherwise the Wilson interval
    on (p̂·n_eff, n_eff). With ``df_adjust`` the KG n* is multiplied by (z_{α/2}/t_{α/2,df})²,
    df = (results in the group) − (strata represented in the group), at least 1.
    ``interval="korn_graubard"`` or ``"wilson"`` forces one. Exact 0/1 ends as in
    :func:`binomial_interval`.

    Non-response within a stratum is not modelled: pass π computed from the batches actually
    tested if that differs from the number drawn.

    ``counts`` (optional, one positive integer per row) says how many identical batches a
    row stands for — same group, stratum, π and outcome. Every sum above is then taken with
    these multiplicities, so the result equals that of the expanded rows exactly, while the
    work grows with the distinct rows only (a database ``GROUP BY`` of 10 million results
    gives tens of thousands).

    Unweighted rates of over-sampled risk classes are biased low; this is the population rate.
    """
    if interval not in ("auto", "korn_graubard", "wilson"):
        raise ValueError(f"interval must be 'auto', 'korn_graubard' or 'wilson', got {interval!r}")
    conf = _check_probability(confidence, "confidence")
    tail = (1.0 - conf) / 2.0
    yf = _as_passed(y)
    m = yf.shape[0]
    pia = np.asarray(pi, dtype=float)
    if pia.shape != (m,):
        raise ValueError(f"pi must have one entry per result ({m}), got shape {pia.shape}")
    if not np.all((pia > 0.0) & (pia <= 1.0)):
        raise ValueError("inclusion probabilities pi must lie in (0, 1]")
    if counts is None:
        c = np.ones(m, dtype=float)
    else:
        c = np.asarray(counts, dtype=float)
        if c.shape != (m,) or np.any(c < 1) or np.any(c != np.floor(c)):
            raise ValueError(f"counts must be {m} positive integers, one per row")
    groups, g = _labels(group_ids, m, "group_ids")
    if m == 0:
        empty_f = np.zeros(0, dtype=float)
        return WeightedEstimateGroups(
            groups=groups,
            estimate=empty_f,
            se=empty_f,
            n=np.zeros(0, dtype=np.int64),
            n_eff=empty_f,
            lower=empty_f,
            upper=empty_f,
            interval_method=np.zeros(0, dtype="<U13"),
            n_eff_kish=empty_f,
        )
    stratum_labels, h = _labels(strata, m, "strata")
    n_groups = groups.shape[0]
    n_strata = stratum_labels.shape[0]
    w = 1.0 / pia

    # sampling fraction per stratum, counted over the whole sample (domain estimation)
    n_h = np.bincount(h, weights=c, minlength=n_strata)
    if stratum_sizes is None:
        f_h = np.bincount(h, weights=pia * c, minlength=n_strata) / n_h
    else:
        if isinstance(stratum_sizes, Mapping):
            if strata is None:
                raise ValueError("a mapping of stratum sizes needs the strata labels")
            try:
                big_n = np.array([float(stratum_sizes[s]) for s in stratum_labels.tolist()])
            except KeyError as exc:
                raise ValueError(f"no stratum size given for stratum {exc.args[0]!r}") from exc
        else:
            per_row = np.asarray(stratum_sizes, dtype=float)
            if per_row.shape != (m,):
                raise ValueError(
                    f"stratum_sizes must be a mapping or one value per result ({m}), "
                    f"got shape {per_row.shape}"
                )
            big_n = np.zeros(n_strata)
            big_n[h] = per_row
            if not np.array_equal(big_n[h], per_row):
                raise ValueError("stratum_sizes differ between rows of the same stratum")
        if np.any(~np.isfinite(big_n)) or np.any(big_n < n_h):
            raise ValueError("each stratum size N_h must be finite and >= the results in it")
        f_h = n_h / big_n
    fpc_h = np.clip(1.0 - f_h, 0.0, 1.0)

    n_g = np.rint(np.bincount(g, weights=c, minlength=n_groups)).astype(np.int64)
    sw = np.bincount(g, weights=w * c, minlength=n_groups)
    swy = np.bincount(g, weights=w * yf * c, minlength=n_groups)
    sw2 = np.bincount(g, weights=w * w * c, minlength=n_groups)
    p_hat = swy / sw
    kish = sw * sw / sw2

    # linearised residuals; rows outside the domain have z = 0 and only enter through n_h
    z = w * (yf - p_hat[g]) / sw[g]
    cells, cell_of_row = np.unique(g * n_strata + h, return_inverse=True)
    cell_of_row = cell_of_row.reshape(-1)
    cell_g = cells // n_strata
    cell_h = cells % n_strata
    sz = np.bincount(cell_of_row, weights=z * c, minlength=cells.shape[0])
    sz2 = np.bincount(cell_of_row, weights=z * z * c, minlength=cells.shape[0])
    nh_cell = n_h[cell_h]
    with np.errstate(divide="ignore", invalid="ignore"):
        ss = np.maximum(sz2 - sz * sz / nh_cell, 0.0)
        contrib = np.where(nh_cell > 1, fpc_h[cell_h] * nh_cell / (nh_cell - 1.0) * ss, 0.0)
    var = np.bincount(cell_g, weights=contrib, minlength=n_groups)
    se = np.sqrt(var)
    strata_in_group = np.bincount(cell_g, minlength=n_groups)

    # a group drawn entirely from fully enumerated strata has no sampling error
    sampled_cells = np.bincount(
        cell_g, weights=(fpc_h[cell_h] > 0).astype(float), minlength=n_groups
    )
    census = sampled_cells == 0

    extreme = (p_hat <= 0.0) | (p_hat >= 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_eff = np.where(extreme, kish, np.where(var > 0, p_hat * (1.0 - p_hat) / var, np.inf))
    if truncate_n_eff:
        n_eff = np.minimum(n_eff, n_g)
    n_eff = np.where(census, np.inf, n_eff)

    if interval == "auto":
        use_kg = n_eff < min_n_eff
    else:
        use_kg = np.full(n_groups, interval == "korn_graubard")
    finite = np.isfinite(n_eff)
    n_star = np.where(finite, n_eff, 1.0)
    n_kg = n_star
    if df_adjust:
        df = np.maximum(n_g - strata_in_group, 1)
        n_kg = n_star * (sps.norm.isf(tail) / sps.t.isf(tail, df)) ** 2
    # x* = p̂·n* never exceeds n* in floating point because p̂ <= 1
    kg_lo, kg_hi = _bounds(p_hat * n_kg, n_kg, "clopper_pearson", tail)
    wi_lo, wi_hi = _bounds(p_hat * n_star, n_star, "wilson", tail)
    lower = np.where(finite, np.where(use_kg, kg_lo, wi_lo), p_hat)
    upper = np.where(finite, np.where(use_kg, kg_hi, wi_hi), p_hat)
    method = np.where(census, "census", np.where(use_kg, "korn_graubard", "wilson"))

    return WeightedEstimateGroups(
        groups=groups,
        estimate=p_hat,
        se=se,
        n=n_g.astype(np.int64),
        n_eff=n_eff,
        lower=lower,
        upper=upper,
        interval_method=method,
        n_eff_kish=kish,
    )


def weighted_estimate(
    passed: npt.ArrayLike,
    pi: npt.ArrayLike | None = None,
    *,
    weights: npt.ArrayLike | None = None,
    strata: npt.ArrayLike | None = None,
    stratum_sizes: npt.ArrayLike | Mapping[Any, float] | None = None,
    confidence: float = 0.95,
    interval: str = "auto",
    df_adjust: bool = False,
    min_n_eff: float = SMALL_N_EFF,
    truncate_n_eff: bool = True,
) -> WeightedEstimate:
    """Design-weighted population pass rate from one stratified draw.

    Give either ``pi`` (inclusion probabilities stored at the draw, π = n_h/N_h) or
    ``weights`` (w = 1/π). Hájek (1971) estimator p̂ = Σ w·y / Σ w; stratified SRSWOR
    linearisation variance with per-stratum finite-population correction (1 − n_h/N_h)
    (Cochran 1977 §5.3; Särndal et al. 1992); n_eff = min(n, p̂(1 − p̂)/SE²) (Korn & Graubard
    1998; Kish 1965 (Σw)²/Σw² when p̂ is 0 or 1); Korn–Graubard Clopper–Pearson interval when
    n_eff < ``min_n_eff``, Wilson on n_eff otherwise. See :func:`weighted_estimate_grouped`
    for the formulas and options; this is that function for a single group.
    """
    if (pi is None) == (weights is None):
        raise ValueError("give exactly one of pi (inclusion probabilities) or weights (1/pi)")
    if pi is None:
        wa = np.asarray(weights, dtype=float)
        if not np.all(wa >= 1.0):
            raise ValueError("design weights 1/pi must be >= 1")
        pia = 1.0 / wa
    else:
        pia = np.asarray(pi, dtype=float)
    yf = _as_passed(passed)
    res = weighted_estimate_grouped(
        np.zeros(yf.shape[0], dtype=np.int64),
        yf,
        pia,
        strata,
        stratum_sizes,
        confidence,
        interval=interval,
        df_adjust=df_adjust,
        min_n_eff=min_n_eff,
        truncate_n_eff=truncate_n_eff,
    )
    if res.estimate.shape[0] == 0:
        nan = math.nan
        return WeightedEstimate(nan, nan, 0, 0.0, nan, nan, "none", 0.0)
    return WeightedEstimate(
        estimate=float(res.estimate[0]),
        se=float(res.se[0]),
        n=int(res.n[0]),
        n_eff=float(res.n_eff[0]),
        lower=float(res.lower[0]),
        upper=float(res.upper[0]),
        interval_method=str(res.interval_method[0]),
        n_eff_kish=float(res.n_eff_kish[0]),
    )


# --------------------------------------------------------------------------------------------
# against a target
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetTestResult:
    """Per group: verdict ``"met"`` / ``"not met"`` / ``"not shown"``, p-values and bounds."""

    verdict: StrArray
    p_value: FloatArray
    p_value_below: FloatArray
    lower_bound: FloatArray
    upper_bound: FloatArray


def target_test(
    x: npt.ArrayLike, n: npt.ArrayLike, target: npt.ArrayLike, *, alpha: float = 0.05
) -> TargetTestResult:
    """Is the pass rate above a programme target (e.g. 0.91, 0.93, 0.95, 0.985)? Vectorised.

    One-sided exact binomial tests (Clopper & Pearson 1934 for the matching bounds):

    - ``p_value``: H0 p ≤ target vs H1 p > target, P(X ≥ x | n, target) = binom.sf(x − 1).
    - ``p_value_below``: H0 p ≥ target vs H1 p < target, P(X ≤ x | n, target) = binom.cdf(x).
    - ``lower_bound`` / ``upper_bound``: one-sided Clopper–Pearson bounds at confidence 1 − α.

    Verdict: ``"met"`` when p_value < α (equivalently lower_bound > target), ``"not met"`` when
    p_value_below < α (equivalently upper_bound < target), otherwise ``"not shown"`` — the data
    cannot tell. n = 0 gives ``"not shown"`` with nan p-values and bounds.
    """
    a = _check_probability(alpha, "alpha")
    if a >= 0.5:
        raise ValueError(f"alpha must be below 0.5, got {alpha!r}")
    xa, na = _as_counts(x, n, integer=True)
    ta = np.asarray(target, dtype=float)
    if not np.all((ta > 0.0) & (ta < 1.0)):
        raise ValueError("target must lie strictly between 0 and 1")
    xa, na, ta = np.broadcast_arrays(xa, na, ta)
    empty = na == 0
    p_above = np.where(empty, np.nan, sps.binom.sf(xa - 1.0, na, ta))
    p_below = np.where(empty, np.nan, sps.binom.cdf(xa, na, ta))
    lower, _ = binomial_interval(xa, na, method="clopper_pearson", confidence=1 - a, sided="lower")
    _, upper = binomial_interval(xa, na, method="clopper_pearson", confidence=1 - a, sided="upper")
    verdict = np.where(p_above < a, "met", np.where(p_below < a, "not met", "not shown"))
    return TargetTestResult(
        verdict=verdict,
        p_value=p_above.astype(float),
        p_value_below=p_below.astype(float),
        lower_bound=lower,
        upper_bound=upper,
    )


# --------------------------------------------------------------------------------------------
# multiple testing, homogeneity, trend
# --------------------------------------------------------------------------------------------


def benjamini_hochberg(
    p_values: npt.ArrayLike, alpha: float = 0.05
) -> tuple[BoolArray, FloatArray]:
    """Benjamini–Hochberg (1995) false-discovery-rate adjustment.

    With the m p-values sorted, p_(1) ≤ … ≤ p_(m): adjusted q_(i) = min_{j ≥ i} min(1, m·p_(j)/j);
    reject H_(i) when q_(i) ≤ α (the step-up rule: reject all i ≤ max{i : p_(i) ≤ iα/m}).
    Agrees with ``statsmodels.stats.multitest.multipletests(method="fdr_bh")``. nan p-values
    are left out of m and come back as nan, not rejected. Shape is preserved.
    """
    a = _check_probability(alpha, "alpha")
    p = np.asarray(p_values, dtype=float)
    flat = p.reshape(-1)
    valid = ~np.isnan(flat)
    pv = flat[valid]
    if np.any((pv < 0.0) | (pv > 1.0)):
        raise ValueError("p-values must lie in [0, 1]")
    m = pv.shape[0]
    adjusted = np.full(flat.shape, np.nan)
    if m:
        order = np.argsort(pv, kind="stable")
        ranked = pv[order] * m / np.arange(1, m + 1)
        q_sorted = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
        q = np.empty(m)
        q[order] = q_sorted
        adjusted[valid] = q
    reject = np.zeros(flat.shape, dtype=bool)
    reject[valid] = adjusted[valid] <= a
    return reject.reshape(p.shape), adjusted.reshape(p.shape)


class PairwiseComparison(NamedTuple):
    """One pair of groups (indices into the input arrays)."""

    i: int
    j: int
    p_raw: float
    p_adjusted: float
    significant: bool


@dataclass(frozen=True)
class HomogeneityResult:
    """Overall chi-square test and BH-adjusted pairwise tests.

    ``pairwise_tests[k]`` names the test used for ``pairwise[k]``: ``"chi2"`` or ``"fisher"``.
    """

    statistic: float
    df: int
    p_value: float
    expected_min: float
    pairwise: list[PairwiseComparison]
    pairwise_tests: list[str]


def _two_by_two_p(a: float, b: float, c: float, d: float) -> tuple[float, str]:
    table = np.array([[a, b], [c, d]])
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    if expected.min() < 5.0:
        return float(sps.fisher_exact(table.astype(np.int64)).pvalue), "fisher"
    res = sps.chi2_contingency(table, correction=False)
    return float(res.pvalue), "chi2"


def chi_square_homogeneity(
    x: npt.ArrayLike, n: npt.ArrayLike, *, alpha: float = 0.05
) -> HomogeneityResult:
    """Do k groups (e.g. regions) share one pass rate? Pearson chi-square, then pairwise.

    Overall: Pearson's X² = Σ (O − E)²/E on the 2×k table (passed, failed) × groups, with
    df = k − 1 (``scipy.stats.chi2_contingency(correction=False)``). No Yates correction is
    applied for any k, including k = 2, where X² equals the squared two-proportion z statistic
    (SciPy's default would apply Yates there). ``expected_min`` is the smallest expected count;
    below 5 the chi-square approximation is doubtful and the pairwise Fisher tests are the ones
    to read. Groups with n = 0 are left out; if every batch passed (or every one failed) the
    rates are trivially equal: statistic 0, p-value 1.

    Pairwise: every pair's 2×2 table is tested with Pearson's chi-square without correction,
    or Fisher's exact test (two-sided) when any expected count is below 5 (Cochran 1954's
    rule). The p-values are adjusted with Benjamini–Hochberg (1995) at ``alpha``. For two
    groups the single pairwise p-value may differ from the overall one when Fisher is used.
    """
    a = _check_probability(alpha, "alpha")
    xa, na = _as_counts(x, n, integer=True)
    if xa.ndim != 1:
        raise ValueError("x and n must be one-dimensional (one entry per group)")
    keep = np.flatnonzero(na > 0)
    if keep.shape[0] < 2:
        raise ValueError("need at least two groups with batches tested (n > 0)")
    xk, fk = xa[keep], na[keep] - xa[keep]
    k = keep.shape[0]
    if xk.sum() == 0 or fk.sum() == 0:
        statistic, df, p_value, expected_min = 0.0, k - 1, 1.0, 0.0
    else:
        res = sps.chi2_contingency(np.vstack([xk, fk]), correction=False)
        statistic = float(res.statistic)
        df = int(res.dof)
        p_value = float(res.pvalue)
        expected_min = float(np.min(res.expected_freq))

    pairs: list[tuple[int, int]] = []
    raw: list[float] = []
    tests: list[str] = []
    for ai in range(k):
        for bi in range(ai + 1, k):
            p_raw, test = _two_by_two_p(xk[ai], fk[ai], xk[bi], fk[bi])
            pairs.append((int(keep[ai]), int(keep[bi])))
            raw.append(p_raw)
            tests.append(test)
    reject, adjusted = benjamini_hochberg(np.array(raw), alpha=a)
    pairwise = [
        PairwiseComparison(i, j, raw[t], float(adjusted[t]), bool(reject[t]))
        for t, (i, j) in enumerate(pairs)
    ]
    return HomogeneityResult(statistic, df, p_value, expected_min, pairwise, tests)


@dataclass(frozen=True)
class TrendResult:
    """Cochran–Armitage trend test; floats for one series, arrays for several."""

    statistic: float | FloatArray
    p_value: float | FloatArray
    p_value_decreasing: float | FloatArray
    direction: str | StrArray
    p_value_increasing: float | FloatArray = math.nan


def cochran_armitage(
    x: npt.ArrayLike, n: npt.ArrayLike, scores: npt.ArrayLike | None = None
) -> TrendResult:
    """Cochran–Armitage test for a linear trend in the pass rate over ordered periods.

    Cochran (1954), Armitage (1955). With scores s_i (default 0, 1, …, k − 1), N = Σn_i and
    p̄ = Σx_i/N:  T = Σ s_i (x_i − n_i p̄),  Var(T) = p̄(1 − p̄)[Σ n_i s_i² − (Σ n_i s_i)²/N],
    z = T/√Var(T). (This is Armitage's N form; the linear-by-linear statistic of Agresti uses
    N − 1 instead, M² = z²(N − 1)/N; R's ``prop.trend.test`` reports z².)

    z > 0 means the pass rate rises with the score. ``p_value`` is two-sided 2Φ(−|z|),
    ``p_value_decreasing`` = Φ(z) tests H1 "the pass rate falls", ``p_value_increasing`` = Φ(−z).
    ``direction`` is ``"increasing"``, ``"decreasing"`` or ``"flat"`` (sign of z only — read the
    p-values for significance). If nothing varies (all passed, all failed, or one period with
    data) there is no evidence of a trend: statistic 0, every p-value 1, ``"flat"``.

    Periods run along the last axis, so a (groups × periods) array tests each group at once.
    Periods with n = 0 contribute nothing.
    """
    xa, na = _as_counts(x, n, integer=True)
    if xa.ndim == 0 or xa.shape[-1] < 2:
        raise ValueError("need at least two ordered periods")
    k = xa.shape[-1]
    s = np.arange(k, dtype=float) if scores is None else np.asarray(scores, dtype=float)
    if s.shape != (k,) or not np.all(np.isfinite(s)):
        raise ValueError(f"scores must be {k} finite numbers, one per period")
    big_n = na.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_bar = xa.sum(axis=-1) / big_n
        # centred scores: same T and Var, and an exact 0 when the scores do not vary
        s_c = s - ((na * s).sum(axis=-1) / big_n)[..., None]
        t_stat = (s_c * (xa - na * p_bar[..., None])).sum(axis=-1)
        spread = (na * s_c * s_c).sum(axis=-1)
        var = p_bar * (1.0 - p_bar) * spread
        # relative guard: rounding leaves a tiny spread when only one period has data
        ok = (var > 0) & (spread > 1e-10 * (na * s * s).sum(axis=-1))
        z = np.where(ok, t_stat / np.sqrt(np.where(ok, var, 1.0)), 0.0)
    p_two = np.where(ok, 2.0 * sps.norm.sf(np.abs(z)), 1.0)
    p_dec = np.where(ok, sps.norm.cdf(z), 1.0)
    p_inc = np.where(ok, sps.norm.sf(z), 1.0)
    direction = np.where(z > 0, "increasing", np.where(z < 0, "decreasing", "flat"))
    if z.ndim == 0:
        return TrendResult(
            statistic=float(z),
            p_value=float(p_two),
            p_value_decreasing=float(p_dec),
            direction=str(direction),
            p_value_increasing=float(p_inc),
        )
    return TrendResult(z, p_two, p_dec, direction, p_inc)


# --------------------------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------------------------


def _ceil_int(values: FloatArray) -> IntArray:
    # 96.00000000001 from rounding must not become 97
    return np.ceil(values - 1e-9).astype(np.int64)


@overload
def sample_size_proportion(
    margin: float, confidence: float = ..., p: float = ..., population: int | None = ...
) -> int: ...
@overload
def sample_size_proportion(
    margin: npt.ArrayLike,
    confidence: float = ...,
    p: npt.ArrayLike = ...,
    population: npt.ArrayLike | None = ...,
) -> IntArray: ...
def sample_size_proportion(
    margin: npt.ArrayLike,
    confidence: float = 0.95,
    p: npt.ArrayLike = 0.5,
    population: npt.ArrayLike | None = None,
) -> int | IntArray:
    """Sample size to estimate a rate within ±``margin`` at ``confidence``.

    Cochran (1977) Sampling Techniques §4.4: n₀ = z²p(1 − p)/e², z = Φ⁻¹(1 − α/2); with a
    finite population N, n = n₀ / (1 + (n₀ − 1)/N); rounded up (never above N).
    p = 0.5 is the conservative default. Example: e = 0.05, 95% → 385; N = 1000 → 278.
    Scalars give an ``int``; arrays give an integer array.
    """
    conf = _check_probability(confidence, "confidence")
    e = np.asarray(margin, dtype=float)
    pa = np.asarray(p, dtype=float)
    if not np.all((e > 0.0) & (e < 1.0)):
        raise ValueError("margin must lie strictly between 0 and 1")
    if not np.all((pa > 0.0) & (pa < 1.0)):
        raise ValueError("p (expected rate) must lie strictly between 0 and 1")
    z = sps.norm.isf((1.0 - conf) / 2.0)
    n0 = z * z * pa * (1.0 - pa) / (e * e)
    scalar = e.ndim == 0 and pa.ndim == 0
    if population is not None:
        big_n = np.asarray(population, dtype=float)
        scalar = scalar and big_n.ndim == 0
        if not np.all((big_n >= 1) & np.isfinite(big_n)):
            raise ValueError("population must be a finite number >= 1")
        n0 = np.minimum(n0 / (1.0 + (n0 - 1.0) / big_n), big_n)
    out = _ceil_int(np.asarray(n0, dtype=float))
    return int(out) if scalar else out


@overload
def zero_failure_sample_size(p0: float, alpha: float = ...) -> int: ...
@overload
def zero_failure_sample_size(p0: npt.ArrayLike, alpha: float = ...) -> IntArray: ...
def zero_failure_sample_size(p0: npt.ArrayLike, alpha: float = 0.05) -> int | IntArray:
    """Batches to test, all passing, to show the pass rate exceeds ``p0`` at level α.

    If every one of n batches passes, P(all pass | p = p₀) = p₀ⁿ ≤ α gives
    n = ⌈ln α / ln p₀⌉ (success-run / zero-acceptance plan; the exact binomial test at x = n,
    Clopper & Pearson 1934). Example: p₀ = 0.95, α = 0.05 → 59.
    """
    a = _check_probability(alpha, "alpha")
    pa = np.asarray(p0, dtype=float)
    if not np.all((pa > 0.0) & (pa < 1.0)):
        raise ValueError("p0 must lie strictly between 0 and 1")
    out = _ceil_int(np.log(a) / np.log(pa))
    return int(out) if pa.ndim == 0 else out


def allocate(
    total: int,
    stratum_sizes: npt.ArrayLike,
    *,
    method: str = "proportional",
    p: npt.ArrayLike | None = None,
) -> IntArray:
    """Split ``total`` sample units across strata; integers summing to ``total``.

    Cochran (1977) §5.5 (proportional, n_h ∝ N_h) and §5.5–5.9 (Neyman, n_h ∝ N_h·S_h with
    S_h = √(p_h(1 − p_h)), p_h the expected rate of stratum h, required for ``"neyman"``).

    Real shares a_h = clip(λ·N_h[·S_h], 1, N_h) with λ chosen so that Σ a_h = total (capped
    proportional "water filling"), then largest-remainder (Hamilton) rounding:
    - no stratum gets more than N_h; the excess goes to the others in proportion;
    - every stratum with N_h ≥ 1 gets at least 1 when ``total`` is at least the number of such
      strata (otherwise the floor is dropped);
    - strata with N_h = 0 get 0. Ties in rounding go to the lower index.
    Under Neyman a stratum with p_h in {0, 1} has weight 0: it gets its floor of 1, and more
    (by size) only if the other strata are full. If every weight is 0 the allocation is
    proportional.
    """
    if method not in ("proportional", "neyman"):
        raise ValueError(f"method must be 'proportional' or 'neyman', got {method!r}")
    sizes = np.asarray(stratum_sizes, dtype=float)
    if sizes.ndim != 1 or sizes.shape[0] == 0:
        raise ValueError("stratum_sizes must be a non-empty one-dimensional array")
    if np.any(sizes < 0) or np.any(sizes != np.round(sizes)) or not np.all(np.isfinite(sizes)):
        raise ValueError("stratum sizes must be whole numbers >= 0")
    if total != int(total) or total < 0:
        raise ValueError(f"total must be a whole number >= 0, got {total!r}")
    total = int(total)
    if total > sizes.sum():
        raise ValueError(f"total {total} exceeds the population size {int(sizes.sum())}")
    if method == "neyman":
        if p is None:
            raise ValueError("Neyman allocation needs the expected pass rate p per stratum")
        pa = np.broadcast_to(np.asarray(p, dtype=float), sizes.shape)
        if not np.all((pa >= 0.0) & (pa <= 1.0)):
            raise ValueError("p must lie in [0, 1]")
        share = sizes * np.sqrt(pa * (1.0 - pa))
        if share.sum() == 0:
            share = sizes.copy()
    else:
        share = sizes.copy()

    nonempty = sizes >= 1
    lo = np.where(nonempty & (total >= int(nonempty.sum())), 1.0, 0.0)
    hi = sizes
    positive = share > 0
    if total <= hi[positive].sum() + lo[~positive].sum():
        alloc = _water_fill(float(total), share, lo, hi)
    else:
        # strata with weight 0 (Neyman, p_h in {0, 1}) take what the others cannot hold
        rest = float(total - hi[positive].sum())
        alloc = hi.copy()
        alloc[~positive] = _water_fill(rest, sizes[~positive], lo[~positive], hi[~positive])

    base = np.floor(alloc)
    short = int(round(total - base.sum()))
    remainder = np.where(base < hi, alloc - base, -1.0)
    if short > 0:
        # stable sort on -remainder: largest remainder first, lower index on ties
        order = np.argsort(-remainder, kind="stable")[:short]
        base[order] += 1.0
    return base.astype(np.int64)


def _water_fill(total: float, share: FloatArray, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """Real allocation a_h = clip(λ·share_h, lo_h, hi_h) with Σ a_h = total.

    f(λ) = Σ clip(λ·s_h, lo_h, hi_h) is continuous, non-decreasing and linear between the
    breakpoints lo_h/s_h and hi_h/s_h, so λ is found exactly on the segment where f crosses
    ``total`` (strata with s_h = 0 stay at lo_h).
    """
    positive = share > 0

    def filled(lam: float) -> FloatArray:
        return np.where(positive, np.clip(lam * share, lo, hi), lo)

    s_pos = share[positive]
    breaks = np.unique(np.concatenate([[0.0], lo[positive] / s_pos, hi[positive] / s_pos]))
    values = np.array([filled(float(b)).sum() for b in breaks])
    j = int(np.searchsorted(values, total, side="left"))
    if j >= breaks.shape[0]:
        return filled(float(breaks[-1]))
    if j == 0 or values[j] == total:
        return filled(float(breaks[j]))
    middle = filled(0.5 * float(breaks[j - 1] + breaks[j]))
    free = positive & (middle > lo) & (middle < hi)
    lam = (total - middle[~free].sum()) / share[free].sum()
    return filled(float(lam))


# --------------------------------------------------------------------------------------------
# flags and early warning
# --------------------------------------------------------------------------------------------


def flag_small(
    n_eff: npt.ArrayLike,
    lower: npt.ArrayLike,
    upper: npt.ArrayLike,
    *,
    min_n: float = 30.0,
    max_width: float = 0.30,
) -> BoolArray:
    """True where there is too little data to publish a rate on its own.

    Flagged when n_eff < ``min_n`` or the interval width U − L > ``max_width``, or either is
    missing (nan). The thresholds follow the usual suppression rules for survey proportions
    (Korn & Graubard 1998 on small effective sample sizes); the bureau may change them.
    """
    ne = np.asarray(n_eff, dtype=float)
    width = np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float)
    with np.errstate(invalid="ignore"):
        ok = (ne >= min_n) & (width <= max_width)
    return np.asarray(~ok, dtype=bool)


@dataclass(frozen=True)
class EarlyWarningResult:
    """Per group p-values for a fall against the previous period and against the target.

    ``evidence`` is the p-value used for ranking; ``q_value`` its Benjamini–Hochberg adjustment
    across groups; ``flagged`` is q ≤ α; ``order`` lists group indices, strongest evidence first
    (groups without data last).
    """

    rate_cur: FloatArray
    rate_prev: FloatArray
    change: FloatArray
    p_fall: FloatArray
    p_below_target: FloatArray
    evidence: FloatArray
    q_value: FloatArray
    flagged: BoolArray
    order: IntArray


def early_warning(
    x_cur: npt.ArrayLike,
    n_cur: npt.ArrayLike,
    x_prev: npt.ArrayLike,
    n_prev: npt.ArrayLike,
    *,
    target: npt.ArrayLike | None = None,
    alpha: float = 0.05,
) -> EarlyWarningResult:
    """Which groups' pass rates fell significantly? One entry per group.

    Fall: one-sided Fisher exact test (conditional on the total passed; Fisher 1935 / Agresti
    2013 §3.5) of H1 p_cur < p_prev: with M = n_cur + n_prev batches of which K = x_cur + x_prev
    passed, p_fall = P(X ≤ x_cur), X ~ Hypergeometric(M, K, n_cur) — the same as
    ``scipy.stats.fisher_exact(..., alternative="less")``, computed for all groups at once.
    Exact, hence conservative with small counts; no normal approximation is used.

    Target (optional, per group or one value): p_below_target = P(X ≤ x_cur | n_cur, target),
    the exact binomial test of :func:`target_test` for being below target.

    Evidence: p_fall alone, or with a target the Bonferroni combination
    min(1, 2·min(p_fall, p_below_target)), a valid p-value for "fell or is below target"
    (factor 1 when only one of the two could be computed).
    ``q_value`` applies Benjamini–Hochberg (1995) across groups so that the flags control the
    false discovery rate when many groups are screened. Groups with n_cur = 0 or n_prev = 0
    have nan for the comparisons they lack data for.
    """
    a = _check_probability(alpha, "alpha")
    xc, nc = _as_counts(x_cur, n_cur, integer=True)
    xp, np_ = _as_counts(x_prev, n_prev, integer=True)
    xc, nc, xp, np_ = np.broadcast_arrays(xc, nc, xp, np_)
    if xc.ndim > 1:
        raise ValueError("early_warning takes one-dimensional arrays (one entry per group)")
    xc, nc, xp, np_ = (np.atleast_1d(v) for v in (xc, nc, xp, np_))
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_cur = np.where(nc > 0, xc / nc, np.nan)
        rate_prev = np.where(np_ > 0, xp / np_, np.nan)
    both = (nc > 0) & (np_ > 0)
    p_fall = np.where(both, sps.hypergeom.cdf(xc, nc + np_, xc + xp, nc), np.nan)
    if target is None:
        p_below = np.full(xc.shape, np.nan)
        evidence = p_fall
    else:
        ta = np.broadcast_to(np.asarray(target, dtype=float), xc.shape)
        if not np.all((ta > 0.0) & (ta < 1.0)):
            raise ValueError("target must lie strictly between 0 and 1")
        p_below = np.where(nc > 0, sps.binom.cdf(xc, nc, ta), np.nan)
        available = (~np.isnan(p_fall)).astype(float) + (~np.isnan(p_below)).astype(float)
        evidence = np.minimum(1.0, available * np.fmin(p_fall, p_below))
    flagged, q = benjamini_hochberg(evidence, alpha=a)
    order = np.argsort(np.where(np.isnan(evidence), np.inf, evidence), kind="stable")
    return EarlyWarningResult(
        rate_cur=rate_cur.astype(float),
        rate_prev=rate_prev.astype(float),
        change=(rate_cur - rate_prev).astype(float),
        p_fall=p_fall.astype(float),
        p_below_target=p_below.astype(float),
        evidence=evidence.astype(float),
        q_value=q,
        flagged=flagged,
        order=order.astype(np.int64),
    )
