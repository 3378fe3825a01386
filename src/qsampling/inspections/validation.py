"""Cross-field checks of a result (pure: plain values in, a list of errors out).

Each error names its field the way FastAPI does (``loc`` like ``["body", "samples", 0,
"production_date"]``), so a client shows it next to the right input. The rules:

- result category codes come from DESIGN §3, each at most once;
- ``1`` (未发现问题) stands alone; ``6`` (unreachable) and ``8`` (refused) exclude each other;
- nothing is sampled when the enterprise is unreachable (6), gone (7, 9, 10, 11, 12) or does
  not carry on the activity (F); refusal (8) needs no samples;
- with samples, the conclusion is required and is ``fail`` exactly when some item fails; a
  failed sample is a problem found, so ``fail`` carries ``A`` or ``E``; without samples there
  is no conclusion;
- the inspection is not in the future (5 minutes of clock skew allowed) and not before the
  task was drawn; a production date is not after the inspection day (China time).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from qsampling.errors import InvalidInput
from qsampling.inspections.schemas import ResultIn

CHINA = ZoneInfo("Asia/Shanghai")
CLOCK_SKEW = timedelta(minutes=5)

CODES: tuple[str, ...] = ("1", "B", "C", "6", "A", "E", "8", "F", "7", "9", "10", "11", "12")
PROBLEM_CODES = frozenset({"B", "C", "6", "A", "E", "8"})
NO_SAMPLE_CODES = frozenset({"6", "F", "7", "9", "10", "11", "12"})
FAIL_CODES = frozenset({"A", "E"})

Loc = tuple[str | int, ...]


def local_date(moment: datetime) -> date:
    """The calendar day in China of an aware timestamp."""
    return moment.astimezone(CHINA).date()


def _err(errors: list[dict[str, Any]], loc: Loc, msg: str, typ: str) -> None:
    errors.append({"loc": list(loc), "msg": msg, "type": typ})


def check_result(
    body: ResultIn,
    *,
    now: datetime,
    drawn_on: date | None = None,
    prefix: Loc = ("body",),
) -> list[dict[str, Any]]:
    """Every cross-field problem of ``body``; empty when it is consistent."""
    errors: list[dict[str, Any]] = []
    codes = body.category_codes
    seen: set[str] = set()
    for i, code in enumerate(codes):
        if code not in CODES:
            _err(
                errors,
                (*prefix, "category_codes", i),
                f"unknown result category {code!r}; use one of {' '.join(CODES)}",
                "unknown_category_code",
            )
        elif code in seen:
            _err(errors, (*prefix, "category_codes", i), f"{code!r} is listed twice", "duplicate")
        seen.add(code)
    loc_codes = (*prefix, "category_codes")
    if "1" in seen and len(seen) > 1:
        others = ", ".join(sorted(seen - {"1"}))
        _err(
            errors,
            loc_codes,
            f"1 (未发现问题, no problem found) cannot be combined with {others}",
            "codes_incompatible",
        )
    if {"6", "8"} <= seen:
        _err(
            errors,
            loc_codes,
            "6 (unreachable) and 8 (refused inspection) exclude each other",
            "codes_incompatible",
        )
    no_sample = sorted(seen & NO_SAMPLE_CODES)
    if no_sample and body.samples:
        _err(
            errors,
            (*prefix, "samples"),
            f"code {', '.join(no_sample)} means nothing could be sampled; remove the samples",
            "samples_not_allowed",
        )

    any_fail = any(it.verdict == "fail" for s in body.samples for it in s.items)
    loc_conc = (*prefix, "conclusion")
    if body.samples:
        if body.conclusion is None:
            _err(errors, loc_conc, "required when samples were tested", "missing")
        elif body.conclusion == "fail" and not any_fail:
            _err(
                errors,
                loc_conc,
                "conclusion is fail but every test item passes",
                "conclusion_inconsistent",
            )
        elif body.conclusion == "pass" and any_fail:
            _err(
                errors,
                loc_conc,
                "conclusion is pass but a test item fails",
                "conclusion_inconsistent",
            )
    elif body.conclusion is not None:
        _err(
            errors,
            loc_conc,
            "no samples were tested, so there is no conclusion; leave it empty",
            "conclusion_without_samples",
        )
    if any_fail:
        if "1" in seen:
            _err(
                errors,
                loc_codes,
                "1 (未发现问题) contradicts a failed test item",
                "codes_inconsistent",
            )
        elif not seen & FAIL_CODES:
            _err(
                errors,
                loc_codes,
                "a failed sample is a problem found: add A (待后续处理) or E (已责令改正)",
                "codes_inconsistent",
            )

    loc_at = (*prefix, "inspected_at")
    if body.inspected_at > now + CLOCK_SKEW:
        _err(errors, loc_at, "the inspection time is in the future", "future_date")
    day = local_date(body.inspected_at)
    if drawn_on is not None and day < drawn_on:
        _err(
            errors,
            loc_at,
            f"the inspection ({day}) is before the task was drawn ({drawn_on})",
            "before_draw",
        )
    today = local_date(now)
    for i, sample in enumerate(body.samples):
        pd = sample.production_date
        if pd is None:
            continue
        loc_pd = (*prefix, "samples", i, "production_date")
        if pd > today:
            _err(errors, loc_pd, "the production date is in the future", "future_date")
        elif pd > day:
            _err(
                errors,
                loc_pd,
                f"the production date {pd} is after the inspection day {day}",
                "after_inspection",
            )
    return errors


def invalid(errors: Sequence[dict[str, Any]]) -> InvalidInput:
    """The 422 error for ``errors`` (same shape as FastAPI's validation errors)."""
    first = errors[0]
    loc = [str(p) for p in first["loc"]]
    field = ".".join(loc[1:] if len(loc) > 1 else loc)
    return InvalidInput(
        f"Invalid input at {field}: {first['msg']}. 输入无效。",
        # loc segments as strings, like the app's handler for FastAPI's own validation errors
        extra={"errors": [{**e, "loc": [str(p) for p in e["loc"]]} for e in errors]},
    )
