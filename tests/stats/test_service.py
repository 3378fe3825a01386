"""Statistics service on real PostgreSQL: counts, roll-ups, filters, and every number checked
against SciPy / statsmodels / the core estimator on the same data."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest
from scipy import stats as sps
from sqlalchemy.ext.asyncio import AsyncSession
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from qsampling.core import stats as core
from qsampling.errors import InvalidInput
from qsampling.stats import service
from qsampling.stats.schemas import SampleSizeIn, StratumIn
from qsampling.stats.service import StatsFilters
from tests.stats.factories import Batch, add, rows_of

Q3 = date(2026, 8, 15)
Q2 = date(2026, 5, 10)

BASIC = [
    Batch("01.01.01", "350102", Q3, passed=47, failed=3),
    Batch("01.02.01", "350203", Q3, passed=20),
    Batch("02.01.01", "350102", Q3, passed=0, failed=5),
    Batch("03.02.01", "350203", Q3, passed=1),
]


def _row(result, **group):
    [row] = [r for r in result.rows if r.group == group]
    return row


async def test_rates_by_industry_match_statsmodels_with_exact_ends(session: AsyncSession) -> None:
    await add(session, *BASIC)
    res = await service.pass_rates(session, group_by=["category:1"])
    assert res.denominator == "batches tested (检验批次)"
    assert [(r.group["category"], r.tested, r.passed, r.failed) for r in res.rows] == [
        ("01", 70, 67, 3),
        ("02", 5, 0, 5),
        ("03", 1, 1, 0),
    ]
    assert _row(res, category="01").labels == {"category": "日用及纺织品"}
    lo, hi = proportion_confint(67, 70, alpha=0.05, method="wilson")
    assert _row(res, category="01").lower == pytest.approx(lo, abs=1e-12)
    assert _row(res, category="01").upper == pytest.approx(hi, abs=1e-12)
    # none passed: the lower end is exactly 0; all passed: the upper end is exactly 1
    assert _row(res, category="02").lower == 0.0
    assert _row(res, category="02").rate == 0.0
    assert _row(res, category="03").upper == 1.0
    assert (res.overall.tested, res.overall.passed) == (76, 68)


@pytest.mark.parametrize(
    ("method", "sm"),
    [("clopper_pearson", "beta"), ("jeffreys", "jeffreys"), ("agresti_coull", "agresti_coull")],
)
async def test_other_interval_methods_match_statsmodels(
    session: AsyncSession, method: str, sm: str
) -> None:
    await add(session, *BASIC)
    res = await service.pass_rates(session, group_by=["category:1"], method=method, confidence=0.9)
    row = _row(res, category="01")
    lo, hi = proportion_confint(67, 70, alpha=0.10, method=sm)
    assert (row.lower, row.upper) == (pytest.approx(lo, abs=1e-10), pytest.approx(hi, abs=1e-10))
    assert (row.method, row.confidence) == (method, 0.9)


async def test_category_levels_roll_up_the_tree(session: AsyncSession) -> None:
    await add(session, *BASIC, Batch("01.01.02", "350102", Q3, passed=5, failed=5))
    leaf = await service.pass_rates(session, group_by=["category"])
    assert [r.group["category"] for r in leaf.rows] == [
        "01.01.01",
        "01.01.02",
        "01.02.01",
        "02.01.01",
        "03.02.01",
    ]
    level2 = await service.pass_rates(session, group_by=["category:2"])
    clothes = _row(level2, category="01.01")
    assert (clothes.tested, clothes.passed, clothes.labels["category"]) == (60, 52, "服装")
    assert [r.group["category"] for r in level2.rows] == ["01.01", "01.02", "02.01", "03.02"]


async def test_region_levels_and_labels(session: AsyncSession) -> None:
    await add(session, *BASIC)
    prov = await service.pass_rates(session, group_by=["region:province"])
    assert [(r.group, r.labels, r.tested) for r in prov.rows] == [
        ({"region": "350000"}, {"region": "福建省"}, 76)
    ]
    city = await service.pass_rates(session, group_by=["region:city", "category:1"])
    assert {(r.labels["region"], r.group["category"], r.tested) for r in city.rows} == {
        ("福州市", "01", 50),
        ("福州市", "02", 5),
        ("厦门市", "01", 20),
        ("厦门市", "03", 1),
    }
    county = await service.pass_rates(session, group_by=["region"])
    assert [r.labels["region"] for r in county.rows] == ["鼓楼区", "思明区"]


async def test_periods_size_and_channel(session: AsyncSession) -> None:
    await add(
        session,
        Batch("01.01.01", "350102", date(2026, 1, 31), passed=3, size="large"),
        Batch("01.01.01", "350102", date(2026, 3, 1), passed=2, channel="e-commerce"),
        Batch("01.01.01", "350102", date(2026, 7, 1), passed=1, failed=1),
        Batch("01.01.01", "350102", date(2025, 12, 31), passed=4),
    )
    q = await service.pass_rates(session, group_by=["period"])
    assert [(r.group["period"], r.labels["period"], r.tested) for r in q.rows] == [
        ("2025Q4", "2025年第四季度", 4),
        ("2026Q1", "2026年第一季度", 5),
        ("2026Q3", "2026年第三季度", 2),
    ]
    m = await service.pass_rates(session, group_by=["period:month"])
    assert [r.group["period"] for r in m.rows] == ["2025-12", "2026-01", "2026-03", "2026-07"]
    y = await service.pass_rates(session, group_by=["period:year"])
    assert [(r.group["period"], r.tested) for r in y.rows] == [("2025", 4), ("2026", 7)]
    sizes = await service.pass_rates(session, group_by=["size", "channel"])
    assert {(r.labels["size"], r.labels["channel"], r.tested) for r in sizes.rows} == {
        ("大型", "生产", 3),
        ("小型", "电商", 2),
        ("小型", "生产", 6),
    }


async def test_filters_subtree_region_prefix_dates_and_follow_up(session: AsyncSession) -> None:
    await add(
        session,
        *BASIC,
        # "011" is not under "01"
        Batch("011.01", "350102", Q3, passed=9),
        Batch("01.01.01", "350102", date(2026, 6, 30), passed=7),
        Batch("01.01.01", "350102", Q3, passed=0, failed=4, follow_up=True),
        Batch("01.01.01", "350102", Q3, passed=2, check_item="CI-02"),
    )

    async def tested(**kw) -> int:
        return (await service.pass_rates(session, filters=StatsFilters(**kw))).overall.tested

    assert await tested(category="01") == 50 + 20 + 7 + 2
    assert await tested(category="01.01") == 50 + 7 + 2
    assert await tested(region="3501") == await tested(region="350100") == 50 + 5 + 9 + 7 + 2
    assert await tested(region="350000") == 94
    assert await tested(from_date=date(2026, 7, 1), to_date=date(2026, 9, 30)) == 87
    assert await tested(to_date=date(2026, 6, 30)) == 7
    assert await tested(check_item="CI-02") == 2
    # results of follow-up plans (not a random sample) count only on request
    assert await tested(category="01.01", include_follow_up=True) == 63
    res = await service.pass_rates(
        session, filters=StatsFilters(category="01", region="3502", include_follow_up=True)
    )
    assert res.filters == {"category": "01", "region": "3502", "include_follow_up": "true"}


async def test_target_verdicts_and_p_values_match_scipy(session: AsyncSession) -> None:
    await add(session, *BASIC)
    res = await service.pass_rates(session, group_by=["category:1"], target=0.8)
    ok, bad, tiny = (_row(res, category=c) for c in ("01", "02", "03"))
    assert ok.target is not None and bad.target is not None and tiny.target is not None
    assert ok.target.verdict == "met"
    assert ok.target.p_value == pytest.approx(
        sps.binomtest(67, 70, 0.8, alternative="greater").pvalue, rel=1e-9
    )
    assert bad.target.verdict == "not met"
    assert bad.target.p_value_below == pytest.approx(0.2**5, rel=1e-9)
    assert tiny.target.verdict == "not shown"
    assert ok.target.lower_bound == pytest.approx(
        proportion_confint(67, 70, alpha=0.10, method="beta")[0], abs=1e-10
    )


async def test_small_groups_are_flagged_not_hidden(session: AsyncSession) -> None:
    await add(session, *BASIC)
    res = await service.pass_rates(session, group_by=["category:1"])
    assert len(res.rows) == 3
    assert _row(res, category="01").flag.small is False
    tiny = _row(res, category="03")
    assert tiny.flag.small is True
    assert any("effective n" in r for r in tiny.flag.reasons)
    assert any("wider" in r for r in tiny.flag.reasons)


def _design_arrays(batches: list[Batch], group_of) -> tuple[np.ndarray, ...]:
    rows = rows_of(batches)
    groups = np.array([group_of(r) for r in rows])
    y = np.array([1.0 if r["passed"] else 0.0 for r in rows])
    pi = np.array([r["inclusion_probability"] for r in rows])
    strata = np.array([f"{r['plan_id']}|{r['stratum']}" for r in rows])
    return groups, y, pi, strata


async def test_weighted_estimate_is_the_core_estimator_on_the_same_rows(
    session: AsyncSession,
) -> None:
    # a worked stratified example: low-risk class A sampled at 3%, high-risk D at 60%
    batches = [
        Batch("01.01.01", "350102", Q3, passed=29, failed=1, pi=0.03, stratum="A"),
        Batch("01.01.01", "350203", Q3, passed=38, failed=2, pi=0.05, stratum="B"),
        Batch("01.02.01", "350102", Q3, passed=16, failed=4, pi=0.2, stratum="C"),
        Batch("01.02.01", "350203", Q3, passed=18, failed=12, pi=0.6, stratum="D"),
        Batch("02.01.01", "350102", Q3, passed=10, failed=0, pi=0.05, stratum="B", plan_id=2),
        Batch("02.01.01", "350102", Q3, passed=3, failed=3, pi=0.6, stratum="D", plan_id=2),
    ]
    await add(session, *batches)
    res = await service.pass_rates(session, group_by=["category:2"], weighted=True)
    groups, y, pi, strata = _design_arrays(batches, lambda r: r["category_code"][:5])
    ref = core.weighted_estimate_grouped(groups, y, pi, strata, None, 0.95)
    for i, g in enumerate(ref.groups.tolist()):
        w = _row(res, category=g).weighted
        assert w is not None
        assert w.estimate == pytest.approx(ref.estimate[i], rel=1e-12)
        assert w.se == pytest.approx(ref.se[i], rel=1e-9)
        assert w.n_eff == pytest.approx(ref.n_eff[i], rel=1e-9)
        assert (w.lower, w.upper) == (
            pytest.approx(ref.lower[i], abs=1e-10),
            pytest.approx(ref.upper[i], abs=1e-10),
        )
        assert w.interval_method == ref.interval_method[i]
    # by hand: Hájek Σw·y / Σw for 01.01 (strata A and B)
    clothes = _row(res, category="01.01").weighted
    assert clothes is not None
    assert clothes.estimate == pytest.approx((29 / 0.03 + 38 / 0.05) / (30 / 0.03 + 40 / 0.05))
    # the over-sampled risk classes pull the unweighted rate below the population estimate
    total = res.overall
    assert total.weighted is not None and total.weighted.estimate is not None
    assert total.rate is not None and total.rate < total.weighted.estimate
    assert total.weighted.n == total.tested == 136


async def test_filtered_weighted_estimates_are_domains_of_the_whole_draw(
    session: AsyncSession,
) -> None:
    batches = [
        Batch("01.01.01", "350102", Q3, passed=29, failed=1, pi=0.03, stratum="A"),
        Batch("02.01.01", "350203", Q3, passed=38, failed=2, pi=0.03, stratum="A"),
        Batch("01.01.01", "350203", Q2, passed=16, failed=4, pi=0.6, stratum="D"),
        Batch("02.01.01", "350102", Q3, passed=18, failed=12, pi=0.6, stratum="D"),
    ]
    await add(session, *batches)
    whole = await service.pass_rates(session, group_by=["category:1"], weighted=True)
    for flt in (
        StatsFilters(category="01"),
        StatsFilters(category="01", region="35"),
        StatsFilters(category="01", from_date=date(2026, 1, 1)),
    ):
        part = await service.pass_rates(
            session, group_by=["category:1"], filters=flt, weighted=True
        )
        a = _row(whole, category="01").weighted
        b = _row(part, category="01").weighted
        assert a is not None and b is not None
        assert (b.estimate, b.se, b.n) == (pytest.approx(a.estimate), pytest.approx(a.se), a.n)
        assert part.overall.weighted is not None
        assert part.overall.weighted.estimate == pytest.approx(a.estimate)
    # a domain that is a subset of the group: the core's domain estimate on all rows
    fz = await service.pass_rates(
        session, group_by=["region:city"], filters=StatsFilters(category="01"), weighted=True
    )
    groups, y, pi, strata = _design_arrays(
        batches,
        lambda r: r["region_code"][:4] if r["category_code"].startswith("01") else "outside",
    )
    ref = core.weighted_estimate_grouped(groups, y, pi, strata, None, 0.95)
    for i, g in enumerate(ref.groups.tolist()):
        if g == "outside":
            continue
        w = _row(fz, region=g + "00").weighted
        assert w is not None
        assert (w.estimate, w.se) == (pytest.approx(ref.estimate[i]), pytest.approx(ref.se[i]))


async def test_weighted_interval_covers_the_true_population_rate(session: AsyncSession) -> None:
    """Coverage with fixed seeds: 20 stratified draws (A 3%, B 5%, C 20%, D 60%) from one
    synthetic population; the weighted 95% interval must contain the true rate in most
    draws, while the unweighted interval of the over-sampled mix almost never does."""
    rng = np.random.default_rng(20260815)
    sizes = {"A": 4000, "B": 3000, "C": 800, "D": 200}
    rates = {"A": 0.99, "B": 0.95, "C": 0.85, "D": 0.6}
    ratios = {"A": 0.03, "B": 0.05, "C": 0.20, "D": 0.60}
    population = {h: rng.random(sizes[h]) < rates[h] for h in sizes}
    truth = sum(int(v.sum()) for v in population.values()) / sum(sizes.values())
    draws = 20
    batches: list[Batch] = []
    for d in range(draws):
        for h, big_n in sizes.items():
            n_h = int(np.ceil(ratios[h] * big_n))
            picked = rng.choice(big_n, size=n_h, replace=False)
            passed = int(population[h][picked].sum())
            batches.append(
                Batch(
                    "01.01.01",
                    "350102",
                    Q3,
                    passed=passed,
                    failed=n_h - passed,
                    pi=n_h / big_n,
                    stratum=h,
                    plan_id=100 + d,
                    n_h=n_h,
                    big_n=big_n,
                )
            )
    await add(session, *batches)
    covered = 0
    naive_covered = 0
    for d in range(draws):
        res = await service.pass_rates(
            session, filters=StatsFilters(plan_id=100 + d), weighted=True
        )
        w = res.overall.weighted
        assert w is not None and w.lower is not None and w.upper is not None
        covered += w.lower <= truth <= w.upper
        naive_covered += res.overall.lower <= truth <= res.overall.upper  # type: ignore[operator]
    assert covered >= 17, (covered, truth)
    assert naive_covered <= 2


async def test_weighted_target_uses_effective_counts(session: AsyncSession) -> None:
    await add(
        session,
        Batch("01.01.01", "350102", Q3, passed=195, failed=5, pi=0.05, stratum="A"),
        Batch("01.01.01", "350102", Q3, passed=40, failed=10, pi=0.5, stratum="D"),
    )
    res = await service.pass_rates(session, weighted=True, target=0.9)
    o = res.overall
    assert o.target is not None and o.weighted is not None
    assert o.target.basis.startswith("weighted")
    # the unweighted 235/250 = 94% vs the population estimate ≈ 97%
    assert o.weighted.estimate is not None and o.weighted.estimate > 0.96
    assert o.target.verdict == "met"


def test_effective_target_test_equals_the_exact_test_on_whole_counts() -> None:
    x = np.array([0, 1, 5, 9, 10, 47, 67])
    n = np.array([10, 10, 10, 10, 10, 50, 70])
    for target in (0.5, 0.8, 0.93):
        ref = core.target_test(x, n, target, alpha=0.05)
        got = service.effective_target_test(x / n, n.astype(float), target, alpha=0.05)
        np.testing.assert_allclose(got.p_value, ref.p_value, rtol=1e-9)
        np.testing.assert_allclose(got.p_value_below, ref.p_value_below, rtol=1e-9)
        np.testing.assert_allclose(got.lower_bound, ref.lower_bound, rtol=1e-9)
        assert got.verdict.tolist() == ref.verdict.tolist()
    census = service.effective_target_test([0.95, 0.9], [np.inf, np.inf], 0.93, alpha=0.05)
    assert census.verdict.tolist() == ["met", "not met"]


async def test_no_results_gives_empty_rows_not_nan(session: AsyncSession) -> None:
    res = await service.pass_rates(session, group_by=["category:1"], weighted=True, target=0.9)
    assert res.rows == []
    assert res.overall.tested == 0
    assert res.overall.rate is None and res.overall.lower is None
    assert res.overall.flag.small is True
    assert res.overall.target is not None and res.overall.target.verdict == "not shown"
    res.model_dump_json()  # serialisable: no NaN


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"group_by": ["colour"]}, "InvalidGroupBy"),
        ({"group_by": ["category:0"]}, "InvalidGroupBy"),
        ({"group_by": ["region:street"]}, "InvalidGroupBy"),
        ({"group_by": ["period:week"]}, "InvalidGroupBy"),
        ({"group_by": ["size:big"]}, "InvalidGroupBy"),
        ({"group_by": ["region:city,region:county"]}, "InvalidGroupBy"),
        ({"method": "wald"}, "InvalidMethod"),
        ({"confidence": 1.0}, "InvalidConfidence"),
        ({"target": 93.0}, "InvalidTarget"),
        ({"filters": StatsFilters(region="35x")}, "InvalidRegion"),
        ({"filters": StatsFilters(region="350")}, "InvalidRegion"),
        ({"filters": StatsFilters(category="03%")}, "InvalidCategory"),
        ({"filters": StatsFilters(from_date=Q3, to_date=Q2)}, "InvalidDateRange"),
    ],
)
async def test_bad_requests_are_invalid_input(session: AsyncSession, kwargs, code: str) -> None:
    with pytest.raises(InvalidInput) as err:
        await service.pass_rates(session, **kwargs)
    assert err.value.code == code


# --------------------------------------------------------------------------------------------
# trend, comparison, early warning
# --------------------------------------------------------------------------------------------


async def test_trend_detects_a_fall_and_keeps_empty_periods(session: AsyncSession) -> None:
    quarters = [date(2025, 11, 1), date(2026, 2, 1), date(2026, 5, 1), date(2026, 8, 1)]
    passed = [98, 95, 90, 80]
    await add(
        session,
        *[
            Batch("03.02.01", "350102", d, passed=p, failed=100 - p)
            for d, p in zip(quarters, passed, strict=True)
        ],
        Batch("01.01.01", "350102", quarters[0], passed=50),
        Batch("01.01.01", "350102", quarters[2], passed=49, failed=1),
    )
    res = await service.trend(session, group_by=["category:1"])
    assert res.periods == ["2025Q4", "2026Q1", "2026Q2", "2026Q3"]
    toys = next(s for s in res.series if s.group == {"category": "03"})
    ref = core.cochran_armitage(np.array(passed), np.array([100] * 4))
    assert toys.statistic == pytest.approx(ref.statistic)
    assert toys.p_value_decreasing == pytest.approx(ref.p_value_decreasing)
    assert toys.direction == "decreasing" and toys.significant_fall
    clothes = next(s for s in res.series if s.group == {"category": "01"})
    assert [p.tested for p in clothes.points] == [50, 0, 50, 0]
    assert clothes.points[1].rate is None and clothes.points[1].lower is None
    assert not clothes.significant_fall


async def test_odd_dates_in_the_data_do_not_break_periods(session: AsyncSession) -> None:
    await add(
        session,
        Batch("01.01.01", "350102", date(999, 3, 1), passed=1),
        Batch("01.01.01", "350102", date(999, 5, 1), passed=1),
    )
    res = await service.pass_rates(session, group_by=["period"])
    assert [(r.group["period"], r.labels["period"]) for r in res.rows] == [
        ("0999Q1", "999年第一季度"),
        ("0999Q2", "999年第二季度"),
    ]
    assert (await service.trend(session)).periods == ["0999Q1", "0999Q2"]


async def test_trend_needs_two_periods(session: AsyncSession) -> None:
    await add(session, *BASIC)
    with pytest.raises(InvalidInput) as err:
        await service.trend(session)
    assert err.value.code == "NotEnoughPeriods"
    with pytest.raises(InvalidInput):
        await service.trend(session, group_by=["period"])
    # an explicit range gives the axis even where data are thin
    res = await service.trend(
        session, filters=StatsFilters(from_date=Q2, to_date=Q3), period="quarter"
    )
    assert res.periods == ["2026Q2", "2026Q3"]


async def test_compare_matches_scipy_and_statsmodels(session: AsyncSession) -> None:
    await add(
        session,
        Batch("01.01.01", "350102", Q3, passed=95, failed=5),
        Batch("01.01.01", "350203", Q3, passed=80, failed=20),
        Batch("01.01.01", "350302", Q3, passed=90, failed=10),
        Batch("01.01.01", "350404", Q3, passed=9, failed=1),
    )
    res = await service.compare(session, group_by=["region:city"])
    x = np.array([95, 80, 90, 9])
    n = np.array([100, 100, 100, 10])
    ct = sps.chi2_contingency(np.vstack([x, n - x]), correction=False)
    assert res.statistic == pytest.approx(ct.statistic)
    assert res.p_value == pytest.approx(ct.pvalue)
    assert res.df == 3
    assert len(res.pairwise) == 6
    raw = np.array([p.p_raw for p in res.pairwise])
    adjusted = multipletests(raw, method="fdr_bh")[1]
    np.testing.assert_allclose([p.p_adjusted for p in res.pairwise], adjusted, rtol=1e-12)
    best = res.pairwise[0]
    assert {best.a_label, best.b_label} == {"福州市", "厦门市"} and best.significant
    # the small group's pairs use Fisher's exact test
    assert {p.test for p in res.pairwise if "三明市" in (p.a_label, p.b_label)} == {"fisher"}


async def test_compare_many_groups_gives_the_overall_test_only(session: AsyncSession) -> None:
    batches = [
        Batch(f"09.{i:02d}", "350102", Q3, passed=20 + i % 7, failed=1 + i % 3) for i in range(55)
    ]
    await add(session, *batches)
    res = await service.compare(session, group_by=["category"])
    x = np.array([b.passed for b in batches])
    n = np.array([b.passed + b.failed for b in batches])
    ct = sps.chi2_contingency(np.vstack([x, n - x]), correction=False)
    assert res.pairwise_omitted and res.pairwise == []
    assert (res.statistic, res.df) == (pytest.approx(ct.statistic), 54)
    assert res.p_value == pytest.approx(ct.pvalue)


async def test_public_pass_rates_are_weighted_by_default(session: AsyncSession) -> None:
    await add(
        session,
        Batch("01.01.01", "350102", Q3, passed=30, pi=0.03, stratum="A"),
        Batch("01.01.01", "350102", Q3, passed=12, failed=8, pi=0.6, stratum="D"),
    )
    res = await service.public_pass_rates(session, group_by=["category:1"])
    [row] = res.rows
    assert res.weighted and row.weighted is not None and row.weighted.estimate is not None
    assert row.weighted.estimate > row.rate  # type: ignore[operator]
    body = res.model_dump_json()
    assert "stratum" not in body and '"A"' not in body


async def test_compare_needs_two_groups(session: AsyncSession) -> None:
    await add(session, Batch("01.01.01", "350102", Q3, passed=5))
    with pytest.raises(InvalidInput) as err:
        await service.compare(session, group_by=["region:city"])
    assert err.value.code == "NotEnoughGroups"
    with pytest.raises(InvalidInput):
        await service.compare(session, group_by=[])


async def test_early_warnings_fall_and_below_target_ordered_by_evidence(
    session: AsyncSession,
) -> None:
    await add(
        session,
        # toys fell from 98% to 80%
        Batch("03.02.01", "350102", Q2, passed=98, failed=2),
        Batch("03.02.01", "350102", Q3, passed=80, failed=20),
        # clothes steady at 95%
        Batch("01.01.01", "350203", Q2, passed=95, failed=5),
        Batch("01.01.01", "350203", Q3, passed=95, failed=5),
        # appliances steady but at 85% (below a 93% target)
        Batch("02.01.01", "350302", Q2, passed=85, failed=15),
        Batch("02.01.01", "350302", Q3, passed=85, failed=15),
        # out of the two periods: ignored
        Batch("03.02.01", "350102", date(2026, 1, 5), passed=1, failed=9),
    )
    res = await service.early_warnings(
        session, period=service.parse_period("2026Q3"), group_by=["category:2"]
    )
    assert (res.period, res.previous_period, res.screened) == ("2026Q3", "2026Q2", 3)
    assert [(w.code, w.label) for w in res.warnings] == [("03.02", "玩具")]
    toys = res.warnings[0]
    assert (toys.tested, toys.passed, toys.tested_prev, toys.passed_prev) == (100, 80, 100, 98)
    assert toys.p_fall == pytest.approx(
        sps.fisher_exact([[80, 20], [98, 2]], alternative="less").pvalue, rel=1e-9
    )
    assert toys.reasons == ["fell against the previous period (较上期显著下降)"]

    with_target = await service.early_warnings(
        session,
        period=service.parse_period("2026Q3"),
        group_by=["category:2", "region:city"],
        target=0.93,
    )
    codes = [w.code for w in with_target.warnings]
    assert codes[0] in ("03.02", "350100")
    assert "02.01" in codes and "350300" in codes
    assert "01.01" not in codes
    evidence = [w.evidence for w in with_target.warnings]
    assert evidence == sorted(evidence)
    everything = await service.early_warnings(
        session, period=service.parse_period("2026Q3"), include_all=True
    )
    # industries, product categories and cities, each screened on its own
    assert len(everything.warnings) == everything.screened == 9
    assert {w.dimension for w in everything.warnings} == {
        "category:1",
        "category:2",
        "region:city",
    }


async def test_early_warnings_catch_a_slow_steady_decline(session: AsyncSession) -> None:
    quarters = [date(2025, 11, 1), date(2026, 2, 1), date(2026, 5, 1), date(2026, 8, 1)]
    passed = [147, 142, 137, 131]  # 98% → 87% in steps no single quarter shows
    await add(
        session,
        *[
            Batch("03.02.01", "350102", d, passed=p, failed=150 - p)
            for d, p in zip(quarters, passed, strict=True)
        ],
        *[Batch("01.01.01", "350203", d, passed=145, failed=5) for d in quarters],
    )
    q3 = service.parse_period("2026Q3")
    res = await service.early_warnings(session, period=q3, group_by=["category:1"])
    assert res.trend_periods == 4
    [toys] = res.warnings
    assert toys.code == "03" and toys.p_fall is not None and toys.p_fall > 0.05
    ref = core.cochran_armitage(np.array(passed), np.array([150] * 4))
    assert toys.p_trend == pytest.approx(ref.p_value_decreasing)
    assert toys.evidence == pytest.approx(min(1.0, 2 * min(toys.p_fall, toys.p_trend)))
    assert toys.reasons == ["falling over the last 4 periods (近4期持续下降)"]
    without_trend = await service.early_warnings(
        session, period=q3, group_by=["category:1"], trend_periods=0
    )
    assert without_trend.warnings == []
    with pytest.raises(InvalidInput):
        await service.early_warnings(session, period=q3, trend_periods=99)


async def test_early_warnings_default_to_latest_quarter(session: AsyncSession) -> None:
    empty = await service.early_warnings(session)
    assert empty.warnings == [] and empty.screened == 0
    await add(session, *BASIC)
    res = await service.early_warnings(session)
    assert res.period == "2026Q3"


# --------------------------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------------------------


def test_sample_size_textbook_values() -> None:
    assert service.sample_size(SampleSizeIn(margin=0.05)).total == 385
    assert service.sample_size(SampleSizeIn(margin=0.05, population=1000)).total == 278
    zf = service.sample_size(SampleSizeIn(zero_failure_p0=0.95))
    assert (zf.total, zf.zero_failure_n) == (None, 59)


def test_sample_size_allocation_across_strata() -> None:
    strata = [
        StratumIn(stratum="A", population=4000, expected_rate=0.99),
        StratumIn(stratum="B", population=3000, expected_rate=0.95),
        StratumIn(stratum="C", population=800, expected_rate=0.85),
        StratumIn(stratum="D", population=200, expected_rate=0.6),
    ]
    prop = service.sample_size(SampleSizeIn(margin=0.02, strata=strata))
    assert prop.total is not None and prop.population == 8000
    assert sum(s.n for s in prop.strata) == prop.total
    assert all(s.n <= s.population for s in prop.strata)
    # proportional: shares follow N_h (within rounding)
    assert prop.strata[0].n == pytest.approx(prop.total * 0.5, abs=1)
    ney = service.sample_size(SampleSizeIn(margin=0.02, strata=strata, allocation="neyman"))
    assert ney.total is not None and ney.total <= prop.total
    assert sum(s.n for s in ney.strata) == ney.total
    # Neyman puts relatively more into the variable strata
    assert ney.strata[3].n / 200 > ney.strata[0].n / 4000
    # the design variance equals Σ W_h p_h q_h
    w = np.array([4000, 3000, 800, 200]) / 8000
    p = np.array([0.99, 0.95, 0.85, 0.6])
    assert prop.design_rate is not None
    design_variance = float((w * p * (1 - p)).sum())
    assert prop.design_rate * (1 - prop.design_rate) == pytest.approx(design_variance)


def test_sample_size_input_rules() -> None:
    with pytest.raises(ValueError, match="margin"):
        SampleSizeIn()
    with pytest.raises(ValueError, match="unique"):
        SampleSizeIn(
            margin=0.05,
            strata=[StratumIn(stratum="A", population=5), StratumIn(stratum="A", population=6)],
        )


# --------------------------------------------------------------------------------------------
# vocabulary
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "label", "start", "end"),
    [
        ("2026Q3", "2026Q3", date(2026, 7, 1), date(2026, 10, 1)),
        ("2026-q4", "2026Q4", date(2026, 10, 1), date(2027, 1, 1)),
        ("2026-07", "2026-07", date(2026, 7, 1), date(2026, 8, 1)),
        ("2026-12", "2026-12", date(2026, 12, 1), date(2027, 1, 1)),
        ("2026", "2026", date(2026, 1, 1), date(2027, 1, 1)),
    ],
)
def test_parse_period(text: str, label: str, start: date, end: date) -> None:
    p = service.parse_period(text)
    assert (p.label, p.start, p.end) == (label, start, end)


@pytest.mark.parametrize("text", ["2026Q5", "2026Q0", "2026-13", "26Q3", "Q3", "", "2026 Q3x"])
def test_parse_period_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid period"):
        service.parse_period(text)


def test_previous_periods() -> None:
    assert service.parse_period("2026Q1").previous().label == "2025Q4"
    assert service.parse_period("2026-01").previous().label == "2025-12"
    assert service.parse_period("2026").previous().label == "2025"
    assert service.parse_period("2026Q3").back(7).label == "2024Q4"
