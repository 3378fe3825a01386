"""The error body shape, the OpenAPI description of error responses, and keyset paging."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from qsampling.errors import QSamplingError

T = TypeVar("T")


def split_page(rows: Sequence[T], limit: int, key: Callable[[T], Any]) -> tuple[list[T], Any]:
    """Keyset paging: ``rows`` were fetched with ``LIMIT limit + 1``. Returns the page and
    the next cursor (the key of the page's last row), or None when this is the last page."""
    page = list(rows[:limit])
    return page, (key(page[-1]) if len(rows) > limit and page else None)


class ErrorBody(BaseModel):
    error: str = Field(description="Machine-readable code, e.g. `NotFound`, `InvalidInput`")
    detail: str = Field(description="A sentence a person understands (English, often with 中文)")
    errors: list[dict[str, Any]] | None = Field(
        None, description="Per-field problems for validation errors: `loc`, `msg`, `type`"
    )


ERROR_DESCRIPTIONS = {
    400: "Bad request / 请求错误",
    401: "Not signed in or token invalid / 未登录或令牌无效",
    403: "Role not allowed / 无权限",
    404: "Not found / 不存在",
    409: "Conflict with the current state / 状态冲突",
    413: "Body too large / 请求体过大",
    422: "Invalid input / 输入无效",
    429: "Too many requests / 请求过多",
    503: "Database unavailable / 服务暂不可用",
}


def errors_for(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        c: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS.get(c, "Error")} for c in codes
    }


def error_body(err: QSamplingError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": err.code, "detail": err.detail}
    body.update(err.extra)
    return body
