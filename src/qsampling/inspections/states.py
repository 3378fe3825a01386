"""The task life cycle (pure: no I/O).

::

    assigned ─start→ in_progress ─submit→ submitted ─notify→ notified ─(15 days)→ final
        │                 │            (correct ↺)                  │
        │                 │                                         └─object→ objected
        │                 │                                   ─retest→ retested → final
        └─────────────────┴─close (codes 7, 9, 10, 11, 12, F)→ closed

A submission from ``assigned`` starts the task implicitly. ``closed`` is terminal and its
result is final at once: the enterprise is gone (7 已关闭停业或正在组织清算, 9 注销, 10 被吊销,
11 被撤销, 12 迁出) or does not carry on the inspected activity (F), so there is nobody to
notify and nothing to retest. ``cancelled`` belongs to the draws module (a cancelled plan).
"""

from __future__ import annotations

from qsampling.errors import Conflict

STATES: tuple[str, ...] = (
    "assigned",
    "in_progress",
    "submitted",
    "notified",
    "objected",
    "retested",
    "final",
    "closed",
    "cancelled",
)

STATE_NAMES_ZH: dict[str, str] = {
    "assigned": "已分派",
    "in_progress": "检查中",
    "submitted": "已提交结果",
    "notified": "已告知",
    "objected": "异议中",
    "retested": "已复检",
    "final": "结果已确定",
    "closed": "已关闭",
    "cancelled": "已取消",
}

TRANSITIONS: dict[str, dict[str, str]] = {
    "start": {"assigned": "in_progress"},
    "submit": {"assigned": "submitted", "in_progress": "submitted"},
    "close": {"assigned": "closed", "in_progress": "closed"},
    "correct": {"submitted": "submitted"},
    "notify": {"submitted": "notified"},
    "object": {"notified": "objected"},
    "retest": {"objected": "retested"},
    "finalise": {"notified": "final", "retested": "final"},
}

ACTION_WORDS: dict[str, str] = {
    "start": "start",
    "submit": "submit a result for",
    "close": "close",
    "correct": "correct the result of",
    "notify": "record the notification of",
    "object": "record an objection for",
    "retest": "record a retest for",
    "finalise": "finalise",
}

# result codes that close the task instead of submitting it (DESIGN §3)
CLOSURE_CODES = frozenset({"7", "9", "10", "11", "12", "F"})
OPEN_STATES = frozenset({"assigned", "in_progress"})
TERMINAL_STATES = frozenset({"final", "closed", "cancelled"})


class IllegalTransition(Conflict):
    code = "IllegalTransition"


def illegal(current: str, action: str) -> IllegalTransition:
    allowed = sorted(TRANSITIONS[action])
    zh = STATE_NAMES_ZH.get(current, current)
    return IllegalTransition(
        f"Cannot {ACTION_WORDS[action]} a task that is {current!r} (allowed from: "
        f"{', '.join(allowed)}). 当前状态为“{zh}”，不能执行此操作。",
        extra={"current_state": current, "allowed_from": allowed},
    )


def transition(current: str, action: str) -> str:
    """The state after ``action``; raises :class:`IllegalTransition` naming the current one."""
    nxt = TRANSITIONS[action].get(current)
    if nxt is None:
        raise illegal(current, action)
    return nxt


def submit_action(category_codes: list[str] | tuple[str, ...] | set[str]) -> str:
    """``close`` when a code says the enterprise is gone or out of scope, else ``submit``."""
    return "close" if CLOSURE_CODES.intersection(category_codes) else "submit"
