"""The pure parts: the state machine, cross-field validation, the demo's generated rows."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest

from qsampling.inspections.demo import _quarters, _result_row
from qsampling.inspections.schemas import BatchRowIn, ResultIn
from qsampling.inspections.states import IllegalTransition, submit_action, transition
from qsampling.inspections.validation import check_result
from qsampling.models.directory import CheckItem


def test_transitions() -> None:
    assert transition("assigned", "start") == "in_progress"
    assert transition("assigned", "submit") == "submitted"
    assert transition("in_progress", "submit") == "submitted"
    assert transition("submitted", "notify") == "notified"
    assert transition("notified", "object") == "objected"
    assert transition("objected", "retest") == "retested"
    assert transition("retested", "finalise") == "final"
    assert transition("notified", "finalise") == "final"
    with pytest.raises(IllegalTransition) as err:
        transition("final", "object")
    assert err.value.status == 409 and err.value.extra["current_state"] == "final"
    assert "final" in err.value.detail
    assert submit_action(["9"]) == "close" and submit_action(["F"]) == "close"
    assert submit_action(["8"]) == "submit" and submit_action(["1"]) == "submit"


def _body(**kw: object) -> ResultIn:
    base: dict[str, object] = {
        "inspected_at": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "category_codes": ["1"],
        "conclusion": "pass",
        "samples": [
            {"product_name": "x", "quantity": 1, "items": [{"name": "a", "verdict": "pass"}]}
        ],
    }
    base.update(kw)
    return ResultIn.model_validate(base)


@pytest.mark.parametrize(
    ("kw", "loc"),
    [
        ({"category_codes": ["1", "E"]}, ["body", "category_codes"]),
        (
            {"category_codes": ["6", "8"], "samples": [], "conclusion": None},
            ["body", "category_codes"],
        ),
        ({"category_codes": ["1", "1"]}, ["body", "category_codes", 1]),
        ({"category_codes": ["7"]}, ["body", "samples"]),
        ({"conclusion": None}, ["body", "conclusion"]),
        ({"conclusion": "fail", "category_codes": ["A"]}, ["body", "conclusion"]),
    ],
)
def test_cross_field_errors(kw: dict[str, object], loc: list[object]) -> None:
    errors = check_result(_body(**kw), now=datetime.now(UTC))
    assert loc in [e["loc"] for e in errors]


def test_consistent_results_pass() -> None:
    now = datetime.now(UTC)
    assert check_result(_body(), now=now) == []
    assert check_result(_body(category_codes=["8"], samples=[], conclusion=None), now=now) == []
    assert (
        check_result(_body(category_codes=["B", "E"], samples=[], conclusion=None), now=now) == []
    )
    failing = _body(
        conclusion="fail",
        category_codes=["A", "E"],
        samples=[{"product_name": "x", "quantity": 1, "items": [{"name": "a", "verdict": "fail"}]}],
    )
    assert check_result(failing, now=now) == []


def test_demo_rows_are_valid() -> None:
    rng = random.Random(3)
    now = datetime.now(UTC)
    items = [CheckItem(code="P", category_codes=["03"]), CheckItem(code="G", category_codes=[])]
    for k in range(600):
        row = _result_row(
            rng,
            task_id=k + 1,
            item=items[k % 2],
            categories=["03.01.02"],
            day=date.today() - timedelta(days=10),
            quarter=k % 4,
            key=f"k{k}",
        )
        body = BatchRowIn.model_validate(row)
        assert check_result(body, now=now) == [], row


def test_demo_quarters_end_today() -> None:
    today = date(2026, 11, 22)
    qs = _quarters(today)
    assert [q[0] for q in qs] == [
        date(2026, 1, 2),
        date(2026, 4, 2),
        date(2026, 7, 2),
        date(2026, 10, 2),
    ]
    assert qs[-1][2] == today - timedelta(days=3) and qs[-1][3] == today
    assert all(a < b <= c <= d for a, b, c, d in qs)
    early = _quarters(date(2027, 1, 5))  # too early in a quarter: the newest is the last one
    assert early[-1][0] == date(2026, 10, 2)
