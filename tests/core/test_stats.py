"""qsampling.core.stats against statsmodels, SciPy, published values and worked examples."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.contingency_tables import Table
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from qsampling.core import stats
from qsampling.core.stats import (
    METHODS,
    allocate,
    benjamini_hochberg,
    binomial_interval,
    chi_square_homogeneity,
    cochran_armitage,
    early_warning,
    flag_small,
    sample_size_proportion,
    target_test,
    weighted_estimate,
    weighted_estimate_grouped,
    zero_failure_sample_size,
)

CONFIDENCES = (0.90, 0.95, 0.99)
BIG = 10**7
# (x, n): empty-ish, all/none passing, n = 1, tiny, published examples, huge n
CASES = [
    (0, 1),
    (1, 1),
    (0, 5),
    (5, 5),
    (1, 5),
    (2, 7),
    (0, 20),
    (1, 29),
    (15, 148),
    (81, 263),
    (999, 1000),
    (0, BIG),
    (1, BIG),
    (BIG // 2, BIG),
    (BIG - 10, BIG),
    (BIG, BIG),
]
X = np.array([c[0] for c in CASES])
N = np.array([c[1] for c in CASES])
INTERIOR = (X > 0) & (X < N)
SM_NAME = {
    "wilson": "wilson",
    "clopper_pearson": "beta",
    "jeffreys": "jeffreys",
    "agresti_coull": "agresti_coull",
}


def _sm(x: np.ndarray, n: np.ndarray, method: str, confidence: float) -> tuple[np.ndarray, ...]:
    lo, hi = proportion_confint(x, n, alpha=1 - confidence, method=SM_NAME[method])
    return np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)


# --------------------------------------------------------------------------------------------
# single-proportion intervals
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize("method", ["wilson", "clopper_pearson"])
def test_interval_matches_statsmodels_everywhere(method: str, confidence: float) -> None:
    lo, hi = binomial_interval(X, N, method=method, confidence=confidence)
    sm_lo, sm_hi = _sm(X, N, method, confidence)
    np.testing.assert_allclose(lo, sm_lo, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hi, sm_hi, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize("method", ["jeffreys", "agresti_coull"])
def test_interval_matches_statsmodels_away_from_the_ends(method: str, confidence: float) -> None:
    lo, hi = binomial_interval(X, N, method=method, confidence=confidence)
    sm_lo, sm_hi = _sm(X, N, method, confidence)
    np.testing.assert_allclose(lo[INTERIOR], sm_lo[INTERIOR], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hi[INTERIOR], sm_hi[INTERIOR], rtol=1e-9, atol=1e-12)
    # statsmodels leaves x = 0 / x = n ends to the formula; the other end must still agree
    at_zero, at_n = X == 0, X == N
    np.testing.assert_allclose(hi[at_zero], sm_hi[at_zero], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(lo[at_n], sm_lo[at_n], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize("method", METHODS)
def test_exact_zero_and_one_ends_for_every_method(method: str, confidence: float) -> None:
    lo, hi = binomial_interval(X, N, method=method, confidence=confidence)
    assert np.all(lo[X == 0] == 0.0)
    assert np.all(hi[X == N] == 1.0)
    assert np.all((lo >= 0) & (lo <= X / N) & (X / N <= hi) & (hi <= 1))
    if method != "agresti_coull":  # A-C can overshoot 1 (then clipped), e.g. 999/1000 at 90%
        assert np.all(hi[X < N] < 1.0)
        assert np.all(lo[X > 0] > 0.0)


def test_jeffreys_ends_differ_from_the_raw_statsmodels_formula() -> None:
    # Brown, Cai & DasGupta (2001): the Jeffreys upper end at x = n is 1, not a beta quantile
    _, sm_hi = proportion_confint(20, 20, alpha=0.05, method="jeffreys")
    _, hi = binomial_interval(20, 20, method="jeffreys")
    assert sm_hi < 1.0
    assert hi == 1.0


# Newcombe (1998), Statistics in Medicine 17:857-872, Table I, 95% intervals.
# Method 3: Wilson score; method 4: score with continuity correction; method 5: exact (C-P).
NEWCOMBE_TABLE_I = [
    # x, n, wilson, wilson_cc, clopper_pearson
    (81, 263, (0.2553, 0.3662), (0.2535, 0.3682), (0.2527, 0.3676)),
    (15, 148, (0.0624, 0.1605), (0.0598, 0.1644), (0.0578, 0.1617)),
    (0, 20, (0.0000, 0.1611), (0.0000, 0.2005), (0.0000, 0.1684)),
    (1, 29, (0.0061, 0.1718), (0.0018, 0.1963), (0.0009, 0.1776)),
]


@pytest.mark.parametrize(("x", "n", "wilson", "wilson_cc", "exact"), NEWCOMBE_TABLE_I)
def test_newcombe_table_i(x: int, n: int, wilson: tuple, wilson_cc: tuple, exact: tuple) -> None:
    for method, expected in (
        ("wilson", wilson),
        ("wilson_cc", wilson_cc),
        ("clopper_pearson", exact),
    ):
        lo, hi = binomial_interval(x, n, method=method)
        assert (float(lo), float(hi)) == pytest.approx(expected, abs=5.1e-5), method


def test_wilson_cc_is_wider_than_wilson_and_symmetric() -> None:
    for confidence in CONFIDENCES:
        lo, hi = binomial_interval(X, N, method="wilson", confidence=confidence)
        clo, chi = binomial_interval(X, N, method="wilson_cc", confidence=confidence)
        assert np.all(clo <= lo + 1e-15)
        assert np.all(chi >= hi - 1e-15)
        rlo, rhi = binomial_interval(N - X, N, method="wilson_cc", confidence=confidence)
        np.testing.assert_allclose(clo, 1 - rhi, atol=1e-12)
        np.testing.assert_allclose(chi, 1 - rlo, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_one_sided_bounds(method: str) -> None:
    for confidence in (0.9, 0.95, 0.99):
        lo1, one = binomial_interval(X, N, method=method, confidence=confidence, sided="lower")
        zero, hi1 = binomial_interval(X, N, method=method, confidence=confidence, sided="upper")
        lo2, hi2 = binomial_interval(X, N, method=method, confidence=2 * confidence - 1)
        np.testing.assert_allclose(lo1, lo2, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(hi1, hi2, rtol=1e-12, atol=1e-15)
        assert np.all(one == 1.0)
        assert np.all(zero == 0.0)


def test_one_sided_clopper_pearson_against_scipy_binomtest() -> None:
    for x, n in [(57, 60), (60, 60), (0, 12), (940, 1000)]:
        ci = sps.binomtest(x, n, 0.5, alternative="greater").proportion_ci(0.95, "exact")
        lo, hi = binomial_interval(x, n, method="clopper_pearson", sided="lower")
        assert float(lo) == pytest.approx(ci.low, abs=1e-12)
        assert float(hi) == 1.0


def test_empty_groups_give_nan_and_shapes_are_kept() -> None:
    lo, hi = binomial_interval([[0, 3], [5, 0]], [[0, 4], [10, 0]])
    assert lo.shape == hi.shape == (2, 2)
    assert np.isnan(lo[0, 0]) and np.isnan(hi[0, 0]) and np.isnan(lo[1, 1])
    assert not np.isnan(lo[0, 1])
    lo0, hi0 = binomial_interval(3, 4)
    assert lo0.shape == () and isinstance(float(hi0), float)
    nl, nu = binomial_interval(0, 0, sided="lower")
    assert np.isnan(nl) and np.isnan(nu)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": -1, "n": 5}, "x"),
        ({"x": 6, "n": 5}, "exceed"),
        ({"x": 1, "n": -2}, "n"),
        ({"x": 1, "n": 5, "confidence": 1.0}, "confidence"),
        ({"x": 1, "n": 5, "confidence": 0.0}, "confidence"),
        ({"x": 1, "n": 5, "confidence": float("nan")}, "confidence"),
        ({"x": 1, "n": 5, "method": "wald"}, "unknown interval method"),
        ({"x": 1, "n": 5, "sided": "both"}, "sided"),
        ({"x": 1, "n": 5, "sided": "lower", "confidence": 0.4}, "one-sided"),
        ({"x": [1, 2], "n": [3, 4, 5]}, "shapes"),
        ({"x": float("inf"), "n": 5}, "finite"),
    ],
)
def test_interval_validation(kwargs: dict, message: str) -> None:
    x = kwargs.pop("x")
    n = kwargs.pop("n")
    with pytest.raises(ValueError, match=message):
        binomial_interval(x, n, **kwargs)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=5000),
    frac=st.floats(min_value=0, max_value=1),
    method=st.sampled_from(METHODS),
    confidence=st.floats(min_value=0.6, max_value=0.999),
)
def test_interval_properties(n: int, frac: float, method: str, confidence: float) -> None:
    x = round(frac * n)
    lo, hi = binomial_interval(x, n, method=method, confidence=confidence)
    assert 0.0 <= lo <= x / n <= hi <= 1.0
    rlo, rhi = binomial_interval(n - x, n, method=method, confidence=confidence)
    assert float(lo) == pytest.approx(1 - float(rhi), abs=1e-9)
    wlo, whi = binomial_interval(x, n, method=method, confidence=min(confidence + 0.0005, 0.9999))
    assert wlo <= lo + 1e-12 and whi >= hi - 1e-12


# --------------------------------------------------------------------------------------------
# design-weighted estimates
# --------------------------------------------------------------------------------------------


def _worked_example() -> tuple[np.ndarray, ...]:
    # Stratum A (credit class A): N = 1000, n = 50 tested, 48 passed; pi = 50/1000 = 0.05
    # Stratum D (credit class D): N = 100,  n = 20 tested, 14 passed; pi = 20/100  = 0.20
    y = np.r_[np.ones(48), np.zeros(2), np.ones(14), np.zeros(6)]
    pi = np.r_[np.full(50, 0.05), np.full(20, 0.20)]
    strata = np.array(["A"] * 50 + ["D"] * 20)
    sizes = np.r_[np.full(50, 1000.0), np.full(20, 100.0)]
    return y, pi, strata, sizes


def test_worked_stratified_example() -> None:
    y, pi, strata, sizes = _worked_example()
    est = weighted_estimate(y, pi, strata=strata, stratum_sizes={"A": 1000, "D": 100})
    # weights 20 and 5: p = (20*48 + 5*14) / (20*50 + 5*20) = 1030/1100
    assert est.estimate == pytest.approx(1030 / 1100) == pytest.approx(0.9363636364)
    # V = sum W_h^2 (1 - f_h) p_h q_h / (n_h - 1)
    #   = (10/11)^2 * 0.95 * 0.96*0.04/49 + (1/11)^2 * 0.80 * 0.70*0.30/19
    #   = 0.00061528082 + 0.00007307525 = 0.00068835607
    v = (10 / 11) ** 2 * 0.95 * 0.96 * 0.04 / 49 + (1 / 11) ** 2 * 0.80 * 0.70 * 0.30 / 19
    assert v == pytest.approx(0.00068835607, rel=1e-8)
    assert est.se == pytest.approx(math.sqrt(v)) == pytest.approx(0.0262365408, rel=1e-8)
    # p q / V = 0.93636 * 0.06364 / 0.00068836 = 86.5639 > n = 70: the design effect
    # 70/86.56 = 0.81 < 1 is floored at 1, so n_eff = 70 (Korn & Graubard; NCHS)
    assert est.n_eff == 70
    untruncated = weighted_estimate(y, pi, strata=strata, stratum_sizes=sizes, truncate_n_eff=False)
    assert untruncated.n_eff == pytest.approx(86.5638863, rel=1e-8)
    assert untruncated.upper - untruncated.lower < est.upper - est.lower
    # Kish: (sum w)^2 / sum w^2 = 1100^2 / (50*400 + 20*25) = 1210000/20500 = 59.0244
    assert est.n_eff_kish == pytest.approx(1210000 / 20500)
    assert est.n == 70
    assert est.interval_method == "wilson"
    lo, hi = binomial_interval(est.estimate * est.n_eff, est.n_eff, method="wilson")
    assert (est.lower, est.upper) == pytest.approx((float(lo), float(hi)))
    assert (est.lower, est.upper) == pytest.approx(
        proportion_confint(1030 / 1100 * 70, 70, method="wilson"), abs=1e-12
    )
    # the unweighted rate 62/70 = 0.886 is well below: risky class D is over-sampled
    assert y.mean() == pytest.approx(62 / 70)
    assert est.estimate - y.mean() > 0.05


def test_worked_example_same_result_every_way_of_passing_the_design() -> None:
    y, pi, strata, sizes = _worked_example()
    ref = weighted_estimate(y, pi, strata=strata, stratum_sizes=sizes)
    for other in (
        weighted_estimate(y, pi, strata=strata, stratum_sizes={"A": 1000, "D": 100}),
        weighted_estimate(y, weights=1 / pi, strata=strata, stratum_sizes=sizes),
        # without N_h the sampling fraction is the mean pi in the stratum: the same here
        weighted_estimate(y, pi, strata=strata),
    ):
        assert other.estimate == pytest.approx(ref.estimate)
        assert other.se == pytest.approx(ref.se)
        assert (other.lower, other.upper) == pytest.approx((ref.lower, ref.upper))


def test_simple_random_sample_reduces_to_the_textbook_formula() -> None:
    # SRSWOR, n = 40 of N = 200, 34 pass: V = (1 - f) p q / (n - 1)  (Cochran 1977, 3.4)
    y = np.r_[np.ones(34), np.zeros(6)]
    est = weighted_estimate(y, np.full(40, 0.2), stratum_sizes=np.full(40, 200))
    assert est.estimate == pytest.approx(0.85)
    assert est.se**2 == pytest.approx(0.8 * 0.85 * 0.15 / 39)
    no_fpc = weighted_estimate(y, np.full(40, 0.2), stratum_sizes=np.full(40, 10**9))
    assert no_fpc.se**2 == pytest.approx(0.85 * 0.15 / 39, rel=1e-6)


def test_korn_graubard_for_small_effective_samples() -> None:
    y = np.r_[np.ones(11), np.zeros(3)]
    pi = np.r_[np.full(7, 0.1), np.full(7, 0.5)]
    strata = np.r_[np.zeros(7), np.ones(7)]
    est = weighted_estimate(y, pi, strata=strata, stratum_sizes=np.r_[np.full(7, 70), [14] * 7])
    # stratum 0 shows no failure, so its variance estimate is 0 and p q / V = 117 > n = 14
    assert est.n_eff == 14
    assert est.interval_method == "korn_graubard"
    x_star, n_star = est.estimate * est.n_eff, est.n_eff
    assert est.lower == pytest.approx(sps.beta.ppf(0.025, x_star, n_star - x_star + 1))
    assert est.upper == pytest.approx(sps.beta.ppf(0.975, x_star + 1, n_star - x_star))
    adj = weighted_estimate(
        y, pi, strata=strata, stratum_sizes=np.r_[np.full(7, 70), [14] * 7], df_adjust=True
    )
    # df = 14 - 2 = 12: n* shrinks by (z/t_12)^2, so the interval widens
    factor = (sps.norm.isf(0.025) / sps.t.isf(0.025, 12)) ** 2
    xs, ns = adj.estimate * adj.n_eff * factor, adj.n_eff * factor
    assert adj.lower == pytest.approx(sps.beta.ppf(0.025, xs, ns - xs + 1))
    assert adj.lower < est.lower and adj.upper > est.upper
    forced = weighted_estimate(
        y, pi, strata=strata, stratum_sizes=np.r_[np.full(7, 70), [14] * 7], interval="wilson"
    )
    assert forced.interval_method == "wilson"


def test_all_passed_uses_kish_n_eff_and_exact_upper_end() -> None:
    pi = np.r_[np.full(10, 0.1), np.full(10, 0.5)]
    est = weighted_estimate(np.ones(20), pi, strata=np.r_[[0] * 10, [1] * 10])
    assert est.estimate == 1.0 and est.se == 0.0
    assert est.n_eff == pytest.approx(120**2 / (10 * 100 + 10 * 4))  # Kish, 13.85
    assert est.upper == 1.0
    assert est.interval_method == "korn_graubard"
    assert est.lower == pytest.approx(0.025 ** (1 / est.n_eff))


def test_census_has_no_sampling_error() -> None:
    y = np.r_[np.ones(9), np.zeros(1)]
    est = weighted_estimate(y, np.ones(10), stratum_sizes=np.full(10, 10))
    assert est.estimate == 0.9 and est.se == 0.0
    assert est.lower == est.upper == 0.9
    assert est.interval_method == "census" and est.n_eff == math.inf
    # one census stratum and one sampled stratum: only the sampled one has error
    mixed = weighted_estimate(
        np.r_[y, 1, 1, 0, 1],
        np.r_[np.ones(10), np.full(4, 0.1)],
        strata=np.r_[np.zeros(10), np.ones(4)],
        stratum_sizes={0.0: 10, 1.0: 40},
    )
    assert mixed.interval_method == "korn_graubard" and mixed.se > 0


def test_weighted_validation() -> None:
    y, pi, strata, sizes = _worked_example()
    with pytest.raises(ValueError, match="exactly one"):
        weighted_estimate(y)
    with pytest.raises(ValueError, match="0 \\(fail\\) or 1"):
        weighted_estimate(np.full(70, 2), pi)
    with pytest.raises(ValueError, match="pi"):
        weighted_estimate(y, np.zeros(70))
    with pytest.raises(ValueError, match="no stratum size"):
        weighted_estimate(y, pi, strata=strata, stratum_sizes={"A": 1000})
    with pytest.raises(ValueError, match="N_h"):
        weighted_estimate(y, pi, strata=strata, stratum_sizes={"A": 10, "D": 100})
    with pytest.raises(ValueError, match="differ"):
        weighted_estimate(y, pi, strata=strata, stratum_sizes=np.arange(70.0) + 1000)
    empty = weighted_estimate(np.zeros(0), np.zeros(0))
    assert empty.n == 0 and math.isnan(empty.estimate)


def _domain_estimate_slow(
    g: np.ndarray, y: np.ndarray, pi: np.ndarray, h: np.ndarray, big_n: dict
) -> tuple[dict, dict]:
    """Row-by-row domain linearisation (Särndal et al. §10.3), independent of the vector code."""
    est, var = {}, {}
    w = 1 / pi
    for d in np.unique(g):
        ind = (g == d).astype(float)
        p = (w * ind * y).sum() / (w * ind).sum()
        z = w * ind * (y - p) / (w * ind).sum()
        v = 0.0
        for s in np.unique(h):
            zs = z[h == s]
            n_s = len(zs)
            v += (1 - n_s / big_n[s]) * n_s / (n_s - 1) * ((zs - zs.mean()) ** 2).sum()
        est[d], var[d] = p, v
    return est, var


def test_grouped_domains_match_a_slow_reference() -> None:
    rng = np.random.default_rng(20240611)
    big_n = {0: 3000, 1: 800, 2: 150}
    n_h = {0: 90, 1: 60, 2: 75}
    h = np.concatenate([np.full(n_h[s], s) for s in big_n])
    pi = np.array([n_h[s] / big_n[s] for s in h])
    y = (rng.random(h.size) < np.array([0.97, 0.9, 0.75])[h]).astype(float)
    g = rng.choice(np.array(["toys", "strollers", "cots"]), size=h.size)
    res = weighted_estimate_grouped(g, y, pi, h, np.array([big_n[s] for s in h]))
    est, var = _domain_estimate_slow(g, y, pi, h, big_n)
    assert list(res.groups) == sorted(est)
    for k, d in enumerate(res.groups):
        assert res.estimate[k] == pytest.approx(est[d])
        assert res.se[k] ** 2 == pytest.approx(var[d])
        assert res.n[k] == (g == d).sum()


def test_grouped_equals_single_when_strata_nest_in_groups() -> None:
    y, pi, strata, sizes = _worked_example()
    y2 = np.r_[y, 1 - y[:10]]
    pi2 = np.r_[pi, np.full(10, 0.5)]
    strata2 = np.r_[strata, np.full(10, "Z")]
    sizes2 = np.r_[sizes, np.full(10, 20.0)]
    groups = np.r_[np.full(70, 1), np.full(10, 2)]
    res = weighted_estimate_grouped(groups, y2, pi2, strata2, sizes2, 0.95)
    one = weighted_estimate(y, pi, strata=strata, stratum_sizes=sizes)
    two = weighted_estimate(y2[70:], pi2[70:], strata=strata2[70:], stratum_sizes=sizes2[70:])
    for k, single in enumerate((one, two)):
        assert res.estimate[k] == pytest.approx(single.estimate)
        assert res.se[k] == pytest.approx(single.se)
        assert res.lower[k] == pytest.approx(single.lower)
        assert res.upper[k] == pytest.approx(single.upper)
        assert res.interval_method[k] == single.interval_method


# Synthetic population for the coverage drill (fixed seed): credit classes A-D.
POP_SIZES = np.array([20000, 5000, 2000, 500])
POP_RATES = np.array([0.98, 0.95, 0.85, 0.70])
RATIOS = np.array([0.03, 0.05, 0.20, 0.60])  # DESIGN.md §3 default sampling ratios
REPS = 300


def _coverage_draws(ratios: np.ndarray) -> tuple[np.ndarray, ...]:
    pop_rng = np.random.default_rng(1998)
    population = [
        pop_rng.random(size) < rate for size, rate in zip(POP_SIZES, POP_RATES, strict=True)
    ]
    true_rate = np.concatenate(population).mean()
    n_h = np.ceil(ratios * POP_SIZES).astype(int)
    rows_per_rep = n_h.sum()
    y = np.empty(REPS * rows_per_rep)
    pi = np.empty_like(y)
    big_n = np.empty_like(y)
    stratum = np.empty(y.size, dtype=np.int64)
    rep = np.repeat(np.arange(REPS), rows_per_rep)
    pos = 0
    for r in range(REPS):
        rng = np.random.default_rng([20240611, r])
        for s in range(4):
            drawn = rng.choice(POP_SIZES[s], size=n_h[s], replace=False)
            block = slice(pos, pos + n_h[s])
            y[block] = population[s][drawn]
            pi[block] = n_h[s] / POP_SIZES[s]
            big_n[block] = POP_SIZES[s]
            stratum[block] = r * 4 + s
            pos += n_h[s]
    return true_rate, rep, y, pi, stratum, big_n


def test_coverage_of_weighted_interval_and_bias_of_unweighted_rate() -> None:
    true_rate, rep, y, pi, stratum, big_n = _coverage_draws(RATIOS)
    assert true_rate == pytest.approx(0.96, abs=0.005)
    res = weighted_estimate_grouped(rep, y, pi, stratum, big_n, 0.95)
    covered = (res.lower <= true_rate) & (true_rate <= res.upper)
    assert covered.mean() >= 0.90
    assert abs(res.estimate.mean() - true_rate) < 0.003
    # the design-based SE agrees with the spread of the estimates over repeated draws
    assert res.se.mean() == pytest.approx(res.estimate.std(ddof=1), rel=0.2)

    passed = np.bincount(rep, weights=y)
    tested = np.bincount(rep)
    unweighted = passed / tested
    assert unweighted.mean() < true_rate - 0.05  # about 0.887 against 0.960
    u_lo, u_hi = binomial_interval(passed, tested)
    assert ((u_lo <= true_rate) & (true_rate <= u_hi)).mean() < 0.05


def test_coverage_of_korn_graubard_with_small_samples() -> None:
    true_rate, rep, y, pi, stratum, big_n = _coverage_draws(np.array([0.001, 0.003, 0.01, 0.04]))
    res = weighted_estimate_grouped(rep, y, pi, stratum, big_n, 0.95, interval="korn_graubard")
    covered = (res.lower <= true_rate) & (true_rate <= res.upper)
    assert covered.mean() >= 0.90


# --------------------------------------------------------------------------------------------
# target test
# --------------------------------------------------------------------------------------------


def test_target_test_matches_scipy_binomtest() -> None:
    x = np.array([95, 99, 80, 59, 58, 0, 1000, 930])
    n = np.array([100, 100, 100, 59, 58, 10, 1000, 1000])
    for target in (0.91, 0.93, 0.95, 0.985):
        res = target_test(x, n, target)
        for k in range(x.size):
            greater = sps.binomtest(int(x[k]), int(n[k]), target, alternative="greater")
            less = sps.binomtest(int(x[k]), int(n[k]), target, alternative="less")
            assert res.p_value[k] == pytest.approx(greater.pvalue, rel=1e-9, abs=1e-300)
            assert res.p_value_below[k] == pytest.approx(less.pvalue, rel=1e-9, abs=1e-300)
            ci = greater.proportion_ci(confidence_level=0.95, method="exact")
            assert res.lower_bound[k] == pytest.approx(ci.low, abs=1e-12)
        met = res.verdict == "met"
        not_met = res.verdict == "not met"
        assert np.array_equal(met, res.lower_bound > target)
        assert np.array_equal(not_met, res.upper_bound < target)


def test_target_verdicts_examples() -> None:
    res = target_test([99, 80, 95, 59, 58, 0], [100, 100, 100, 59, 58, 0], 0.93)
    assert list(res.verdict[:3]) == ["met", "not met", "not shown"]
    # zero-failure plan: 59 of 59 shows p > 0.95 (0.95**59 = 0.0485), 58 of 58 does not
    res95 = target_test([59, 58], [59, 58], 0.95)
    assert list(res95.verdict) == ["met", "not shown"]
    assert res95.p_value[0] == pytest.approx(0.95**59)
    assert res.verdict[5] == "not shown" and np.isnan(res.p_value[5])
    per_group = target_test([92, 92], [100, 100], [0.85, 0.98])
    assert list(per_group.verdict) == ["met", "not met"]
    with pytest.raises(ValueError, match="target"):
        target_test(5, 10, 1.2)
    with pytest.raises(ValueError, match="whole"):
        target_test(5.5, 10, 0.9)


# --------------------------------------------------------------------------------------------
# homogeneity, BH, trend
# --------------------------------------------------------------------------------------------


def test_chi_square_matches_scipy_and_pairwise_uses_fisher_for_small_counts() -> None:
    x = np.array([480, 455, 180, 48, 0])
    n = np.array([500, 500, 200, 50, 0])  # the last region tested nothing
    res = chi_square_homogeneity(x, n)
    ref = sps.chi2_contingency(np.vstack([x[:4], n[:4] - x[:4]]), correction=False)
    assert res.statistic == pytest.approx(ref.statistic)
    assert res.p_value == pytest.approx(ref.pvalue)
    assert res.df == 3
    assert res.expected_min == pytest.approx(ref.expected_freq.min())
    assert len(res.pairwise) == 6 and all(4 not in (c.i, c.j) for c in res.pairwise)
    raw = []
    for comp, test in zip(res.pairwise, res.pairwise_tests, strict=True):
        table = np.array([[x[comp.i], n[comp.i] - x[comp.i]], [x[comp.j], n[comp.j] - x[comp.j]]])
        expected = sps.contingency.expected_freq(table)
        if expected.min() < 5:
            assert test == "fisher"
            assert comp.p_raw == pytest.approx(sps.fisher_exact(table).pvalue)
        else:
            assert test == "chi2"
            assert comp.p_raw == pytest.approx(sps.chi2_contingency(table, correction=False).pvalue)
        raw.append(comp.p_raw)
    sm_reject, sm_adj, _, _ = multipletests(raw, alpha=0.05, method="fdr_bh")
    assert [c.p_adjusted for c in res.pairwise] == pytest.approx(list(sm_adj))
    assert [c.significant for c in res.pairwise] == list(sm_reject)
    assert "fisher" in res.pairwise_tests and "chi2" in res.pairwise_tests


def test_chi_square_two_groups_has_no_yates_correction() -> None:
    x, n = np.array([180, 160]), np.array([200, 200])
    res = chi_square_homogeneity(x, n)
    p1, p2, p = 0.9, 0.8, 340 / 400
    z = (p1 - p2) / math.sqrt(p * (1 - p) * (1 / 200 + 1 / 200))
    assert res.statistic == pytest.approx(z**2)
    assert res.df == 1
    yates = sps.chi2_contingency(np.vstack([x, n - x])).statistic
    assert yates < res.statistic


def test_chi_square_degenerate_inputs() -> None:
    res = chi_square_homogeneity([10, 20, 30], [10, 20, 30])
    assert res.statistic == 0.0 and res.p_value == 1.0
    assert all(c.p_raw == 1.0 and not c.significant for c in res.pairwise)
    with pytest.raises(ValueError, match="two groups"):
        chi_square_homogeneity([3, 0], [5, 0])


def test_benjamini_hochberg_matches_statsmodels() -> None:
    rng = np.random.default_rng(7)
    for size in (1, 2, 10, 500):
        p = np.concatenate([rng.random(size) ** 3, rng.random(size)])
        p[: size // 3] = p[size // 3]  # ties
        for alpha in (0.01, 0.05, 0.2):
            reject, adj = benjamini_hochberg(p, alpha=alpha)
            sm_reject, sm_adj, _, _ = multipletests(p, alpha=alpha, method="fdr_bh")
            np.testing.assert_allclose(adj, sm_adj, rtol=1e-12)
            assert np.array_equal(reject, sm_reject)


def test_benjamini_hochberg_nan_and_shape() -> None:
    p = np.array([[0.001, np.nan], [0.04, 0.03]])
    reject, adj = benjamini_hochberg(p)
    assert adj.shape == (2, 2) and np.isnan(adj[0, 1]) and not reject[0, 1]
    _, sm_adj, _, _ = multipletests([0.001, 0.04, 0.03], method="fdr_bh")
    np.testing.assert_allclose(adj[~np.isnan(adj)], sm_adj[[0, 1, 2]])
    empty_reject, empty_adj = benjamini_hochberg([])
    assert empty_reject.shape == empty_adj.shape == (0,)
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        benjamini_hochberg([0.5, 1.5])


def test_cochran_armitage_r_prop_trend_test_example() -> None:
    # R documentation of prop.trend.test: smokers <- c(83, 90, 129, 70);
    # patients <- c(86, 93, 136, 82); prop.trend.test(smokers, patients)
    # -> X-squared = 8.2249, df = 1, p-value = 0.004132 (scores 1..4; any equally spaced
    # scores give the same statistic).
    res = cochran_armitage([83, 90, 129, 70], [86, 93, 136, 82])
    assert res.statistic**2 == pytest.approx(8.2249, abs=5e-5)
    assert res.p_value == pytest.approx(0.004132, abs=5e-7)
    assert res.direction == "decreasing"
    assert res.p_value_decreasing == pytest.approx(res.p_value / 2)
    shifted = cochran_armitage([83, 90, 129, 70], [86, 93, 136, 82], scores=[1, 2, 3, 4])
    assert shifted.statistic == pytest.approx(res.statistic)


def test_cochran_armitage_agresti_malformation_example() -> None:
    # Agresti, Categorical Data Analysis (2002), Table 2.7: infant malformation by maternal
    # alcohol consumption, scores 0, 0.5, 1.5, 4, 7; M^2 = (n - 1) r^2 = 6.57, P = 0.01.
    present = np.array([48, 38, 5, 1, 1])
    absent = np.array([17066, 14464, 788, 126, 37])
    scores = np.array([0, 0.5, 1.5, 4.0, 7.0])
    total = present + absent
    res = cochran_armitage(present, total, scores)
    big_n = total.sum()
    assert res.statistic**2 * (big_n - 1) / big_n == pytest.approx(6.57, abs=0.005)
    assert res.p_value == pytest.approx(0.0104, abs=1e-4)
    sm = Table(np.vstack([present, absent])).test_ordinal_association(
        row_scores=np.array([1.0, 0.0]), col_scores=scores
    )
    assert res.statistic == pytest.approx(sm.zscore * math.sqrt(big_n / (big_n - 1)), rel=1e-9)
    assert res.direction == "increasing"


def test_cochran_armitage_vectorised_and_flat_series() -> None:
    x = np.array([[83, 90, 129, 70], [50, 48, 45, 40], [5, 5, 5, 5]])
    n = np.array([[86, 93, 136, 82], [50, 50, 50, 50], [5, 5, 5, 5]])
    res = cochran_armitage(x, n)
    statistic, p_value, direction = map(np.asarray, (res.statistic, res.p_value, res.direction))
    assert statistic.shape == p_value.shape == direction.shape == (3,)
    for k in range(3):
        single = cochran_armitage(x[k], n[k])
        assert isinstance(single.statistic, float) and isinstance(single.direction, str)
        assert statistic[k] == pytest.approx(single.statistic)
        assert p_value[k] == pytest.approx(single.p_value)
        assert direction[k] == single.direction
    assert direction[2] == "flat" and p_value[2] == 1.0
    one_period = cochran_armitage([0, 3, 0], [0, 5, 0], scores=[0.1, 0.2, 0.3])
    assert one_period.statistic == 0.0 and one_period.p_value == 1.0
    with pytest.raises(ValueError, match="two ordered periods"):
        cochran_armitage([1], [2])
    with pytest.raises(ValueError, match="scores"):
        cochran_armitage([1, 2], [2, 2], scores=[0, 1, 2])


# --------------------------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------------------------


def test_sample_size_examples() -> None:
    # n0 = 1.96^2 * 0.25 / 0.05^2 = 384.15 -> 385; with N = 1000: 384.15/1.38315 = 277.7 -> 278
    assert sample_size_proportion(0.05) == 385
    assert sample_size_proportion(0.05, population=1000) == 278
    assert sample_size_proportion(0.05, confidence=0.99) == 664  # 2.5758^2 * 25 = 663.5
    assert sample_size_proportion(0.03, p=0.9) == 385  # 1.96^2 * 0.09 / 0.0009 = 384.1
    assert sample_size_proportion(0.05, population=50) == 45
    assert sample_size_proportion(0.5, population=1) == 1
    arr = sample_size_proportion(np.array([0.05, 0.05]), population=np.array([1000, 10**9]))
    assert list(arr) == [278, 385]
    with pytest.raises(ValueError, match="margin"):
        sample_size_proportion(0.0)


def test_zero_failure_sample_size() -> None:
    assert zero_failure_sample_size(0.95) == 59  # ln 0.05 / ln 0.95 = 58.4
    assert zero_failure_sample_size(0.99) == 299
    assert zero_failure_sample_size(0.90) == 29
    assert zero_failure_sample_size(0.95, alpha=0.01) == 90  # ln 0.01 / ln 0.95 = 89.8
    assert list(zero_failure_sample_size(np.array([0.9, 0.95]))) == [29, 59]
    assert 0.95**59 <= 0.05 < 0.95**58
    with pytest.raises(ValueError, match="p0"):
        zero_failure_sample_size(1.0)


def test_allocation_examples() -> None:
    sizes = [20000, 5000, 2000, 500]
    # shares 72.73, 18.18, 7.27, 1.82: floors 72, 18, 7, 1 (98); remainders .82 and .73 win
    assert list(allocate(100, sizes)) == [73, 18, 7, 2]
    # Neyman, S_h = sqrt(p q): 0.5 and 0.3 -> 5/8 and 3/8 of 80
    assert list(allocate(80, [1000, 1000], method="neyman", p=[0.5, 0.9])) == [50, 30]
    # caps: shares 99.6, 375.4 (> 300, capped), then 159.8, 40.2 (> 20, capped) -> rest 180
    assert list(allocate(500, [400, 300, 20], method="neyman", p=[0.99, 0.5, 0.5])) == [
        180,
        300,
        20,
    ]
    # at least one per non-empty stratum; empty strata get none
    assert list(allocate(30, [1000, 10, 1, 0, 3])) == [27, 1, 1, 0, 1]
    # a stratum with p = 1 has S_h = 0 but still gets its one unit
    assert list(allocate(10, [100, 100], method="neyman", p=[1.0, 0.5])) == [1, 9]
    assert list(allocate(3, [5, 5, 5, 5])) == [1, 1, 1, 0]
    assert list(allocate(11, [5, 5, 1])) == [5, 5, 1]
    with pytest.raises(ValueError, match="exceeds"):
        allocate(12, [5, 5, 1])
    with pytest.raises(ValueError, match="Neyman"):
        allocate(10, [5, 5], method="neyman")
    with pytest.raises(ValueError, match="method"):
        allocate(10, [5, 5], method="optimal")


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=8),
    frac=st.floats(min_value=0, max_value=1),
    neyman=st.booleans(),
    data=st.data(),
)
def test_allocation_properties(sizes: list[int], frac: float, neyman: bool, data) -> None:
    total = int(frac * sum(sizes))
    p = data.draw(st.lists(st.floats(0, 1), min_size=len(sizes), max_size=len(sizes)))
    alloc = allocate(total, sizes, method="neyman" if neyman else "proportional", p=p)
    arr = np.array(sizes)
    assert alloc.dtype == np.int64
    assert alloc.sum() == total
    assert np.all((alloc >= 0) & (alloc <= arr))
    if total >= (arr >= 1).sum():
        assert np.all(alloc[arr >= 1] >= 1)


# --------------------------------------------------------------------------------------------
# flags and early warning
# --------------------------------------------------------------------------------------------


def test_flag_small() -> None:
    flags = flag_small(
        [10, 100, 100, np.nan, np.inf], [0.5, 0.90, 0.50, 0.9, 0.9], [0.9, 0.95, 0.90, 1, 0.9]
    )
    assert list(flags) == [True, False, True, True, False]
    assert not flag_small(20, 0.8, 0.9, min_n=15)


def test_early_warning_matches_fisher_and_ranks_evidence() -> None:
    x_cur = np.array([40, 18, 50, 5, 0])
    n_cur = np.array([50, 20, 50, 5, 0])
    x_prev = np.array([48, 19, 45, 0, 10])
    n_prev = np.array([50, 20, 50, 0, 10])
    res = early_warning(x_cur, n_cur, x_prev, n_prev)
    for k in range(3):
        table = [[x_cur[k], n_cur[k] - x_cur[k]], [x_prev[k], n_prev[k] - x_prev[k]]]
        assert res.p_fall[k] == pytest.approx(sps.fisher_exact(table, alternative="less").pvalue)
    assert np.isnan(res.p_fall[3]) and np.isnan(res.p_fall[4])
    assert res.order[0] == 0 and set(res.order[-2:]) == {3, 4}
    _, q = benjamini_hochberg(res.p_fall)
    np.testing.assert_allclose(res.q_value, q)
    assert res.change[0] == pytest.approx(-0.16)

    with_target = early_warning(x_cur, n_cur, x_prev, n_prev, target=0.9)
    assert with_target.p_below_target[0] == pytest.approx(sps.binom.cdf(40, 50, 0.9))
    expected = min(1.0, 2 * min(with_target.p_fall[0], with_target.p_below_target[0]))
    assert with_target.evidence[0] == pytest.approx(expected)
    # no previous period: only the target test is available, so no Bonferroni factor
    assert with_target.evidence[3] == pytest.approx(with_target.p_below_target[3])
    assert np.isnan(with_target.evidence[4])


def test_early_warning_flags_a_clear_fall_among_many_groups() -> None:
    rng = np.random.default_rng(11)
    n = np.full(40, 200)
    x_prev = rng.binomial(200, 0.95, size=40)
    x_cur = rng.binomial(200, 0.95, size=40)
    x_cur[17] = 150  # 75% against about 95%
    res = early_warning(x_cur, n, x_prev, n)
    assert res.order[0] == 17
    assert res.flagged[17]
    assert res.flagged.sum() <= 2


# --------------------------------------------------------------------------------------------
# house rules
# --------------------------------------------------------------------------------------------


def test_stats_module_is_pure() -> None:
    tree = ast.parse(Path(stats.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= {
        "__future__",
        "math",
        "collections",
        "dataclasses",
        "typing",
        "numpy",
        "scipy",
    }
    source = Path(stats.__file__).read_text(encoding="utf-8")
    for forbidden in ("open(", "print(", "np.random"):
        assert forbidden not in source


def test_public_functions_cite_their_method() -> None:
    for name in stats.__all__:
        obj = getattr(stats, name)
        if callable(obj) and not isinstance(obj, type):
            doc = obj.__doc__ or ""
            assert any(ch.isdigit() for ch in doc), f"{name} docstring lacks a reference"


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 3),  # group
            st.integers(0, 2),  # stratum
            st.booleans(),  # passed
            st.integers(1, 40),  # how many identical batches the row stands for
        ),
        min_size=1,
        max_size=30,
    ),
    known_sizes=st.booleans(),
)
def test_weighted_estimate_with_counts_equals_the_expanded_rows(
    rows: list[tuple[int, int, bool, int]], known_sizes: bool
) -> None:
    """The service passes GROUP BY counts instead of one row per batch: same numbers."""
    pi_of = {0: 0.05, 1: 0.2, 2: 0.6}
    g = np.array([r[0] for r in rows])
    h = np.array([r[1] for r in rows])
    y = np.array([r[2] for r in rows])
    c = np.array([r[3] for r in rows])
    pi = np.array([pi_of[int(x)] for x in h])
    sizes = {0: 50000.0, 1: 9000.0, 2: 1500.0} if known_sizes else None
    compact = weighted_estimate_grouped(g, y, pi, h, sizes, 0.95, counts=c)
    full = weighted_estimate_grouped(
        np.repeat(g, c), np.repeat(y, c), np.repeat(pi, c), np.repeat(h, c), sizes, 0.95
    )
    np.testing.assert_array_equal(compact.groups, full.groups)
    np.testing.assert_array_equal(compact.n, full.n)
    # the interval method switches at n_eff = 30; with a design effect of exactly 1, n_eff
    # is n and the last bit of rounding (sums in another order) may fall either side
    same = compact.interval_method == full.interval_method
    assert np.allclose(full.n_eff[~same], 30.0, rtol=1e-9), (compact, full)
    for field in ("estimate", "se", "n_eff", "n_eff_kish"):
        np.testing.assert_allclose(
            getattr(compact, field), getattr(full, field), rtol=1e-9, atol=1e-8, err_msg=field
        )
    for field in ("lower", "upper"):
        np.testing.assert_allclose(
            getattr(compact, field)[same],
            getattr(full, field)[same],
            rtol=1e-9,
            atol=1e-8,
            err_msg=field,
        )


def test_weighted_estimate_counts_must_be_positive_integers() -> None:
    with pytest.raises(ValueError, match="positive integers"):
        weighted_estimate_grouped([0, 0], [1, 0], [0.5, 0.5], counts=[1, 0])
    with pytest.raises(ValueError, match="positive integers"):
        weighted_estimate_grouped([0, 0], [1, 0], [0.5, 0.5], counts=[1.5, 2])
