"""The public portal at ``/``: server-rendered zh-CN pages (Jinja2), no scripts, no build.

Semantic HTML, one stylesheet (``/static/portal.css``), works on a phone and with the
keyboard alone. Every HTML response carries a Content-Security-Policy without inline
scripts or styles. Pages read the same service functions as the open-data API.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from qsampling.deps import Session
from qsampling.disclosure import service
from qsampling.disclosure.ratelimit import check as rate_check
from qsampling.errors import InvalidInput, NotFound, QSamplingError

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"
STATIC_FILES = {"portal.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}


async def _rate_limit(request: Request) -> None:
    rate_check(
        request.scope,  # type: ignore[arg-type]
        request.app.state,
        request.app.state.settings.public_rate_limit_per_minute,
    )


router = APIRouter(include_in_schema=False, dependencies=[Depends(_rate_limit)])


@lru_cache
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("qsampling", "templates/portal"),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["dt"] = _dt
    env.globals["conclusion_class"] = {"pass": "ok", "fail": "bad", "not_tested": "muted"}
    env.globals["list_titles"] = service.LIST_TITLES_ZH
    return env


def _pct(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "—"
    return f"{v * 100:.{digits}f}%"


def _dt(v: Any) -> str:
    if v is None:
        return "—"
    if hasattr(v, "astimezone") and hasattr(v, "hour"):
        return str(v.astimezone(service.CHINA).strftime("%Y-%m-%d %H:%M"))
    return str(v)


def render(name: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    html = _env().get_template(name).render(**ctx)
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={"Content-Security-Policy": CSP, "Cache-Control": "public, max-age=30"},
    )


def error_page(exc: QSamplingError) -> HTMLResponse:
    title = "未找到" if exc.status == 404 else "请求有误"
    return render("error.html", status_code=exc.status, title=title, message=exc.detail)


def _opt(v: str | None) -> str | None:
    v = (v or "").strip()
    return v or None


def _date(v: str | None, label: str) -> date | None:
    v = _opt(v)
    if v is None:
        return None
    try:
        return date.fromisoformat(v)
    except ValueError:
        raise InvalidInput(f"{label}日期格式应为 YYYY-MM-DD。 Dates are YYYY-MM-DD.") from None


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, session: Session) -> Response:
    draws = await service.recent_draws(session, limit=5)
    latest = await service.list_results(session, filters=service.ResultFilters(), limit=8)
    stats = None
    try:
        stats = await service.public_stats(session, group_by=["category:1"], weighted=False)
    except QSamplingError:
        stats = None
    return render("home.html", draws=draws, results=latest.items, stats=stats, nav="home")


@router.get("/search", response_class=HTMLResponse)
async def search(
    request: Request, session: Session, q: Annotated[str, Query(max_length=200)] = ""
) -> Response:
    q = q.strip()
    rows: list[dict[str, Any]] = []
    error = None
    if q:
        try:
            rows = await service.search_enterprises(session, q=q, limit=50)
        except QSamplingError as exc:
            error = exc.detail
    if len(rows) == 1 and rows[0]["uscc"] == q.upper():
        return RedirectResponse(f"/enterprises/{rows[0]['uscc']}", status_code=303)
    return render("search.html", q=q, rows=rows, error=error, nav="home")


@router.get("/enterprises/{uscc}", response_class=HTMLResponse)
async def enterprise(request: Request, session: Session, uscc: str) -> Response:
    try:
        data = await service.get_enterprise(session, uscc=uscc[:40])
    except QSamplingError as exc:
        return error_page(exc)
    return render("enterprise.html", e=data, nav="home")


@router.get("/results", response_class=HTMLResponse)
async def results(
    request: Request,
    session: Session,
    region: str | None = None,
    category: str | None = None,
    date_from: Annotated[str | None, Query(alias="from")] = None,
    date_to: Annotated[str | None, Query(alias="to")] = None,
    result_code: str | None = None,
    conclusion: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
) -> Response:
    form = {
        "region": _opt(region) or "",
        "category": _opt(category) or "",
        "from": _opt(date_from) or "",
        "to": _opt(date_to) or "",
        "result_code": _opt(result_code) or "",
        "conclusion": _opt(conclusion) or "",
    }
    try:
        page = await service.list_results(
            session,
            filters=service.ResultFilters(
                region=_opt(region),
                category=_opt(category),
                date_from=_date(date_from, "开始"),
                date_to=_date(date_to, "结束"),
                result_codes=(form["result_code"],) if form["result_code"] else (),
                conclusion=_opt(conclusion),
            ),
            cursor=_opt(cursor),
            limit=50,
        )
    except QSamplingError as exc:
        return render(
            "results.html",
            status_code=exc.status,
            form=form,
            items=[],
            error=exc.detail,
            next_url=None,
            codes=service.RESULT_CODE_ZH,
            nav="results",
        )
    next_url = None
    if page.next_cursor:
        qs = {k: v for k, v in form.items() if v}
        qs["cursor"] = page.next_cursor
        next_url = "/results?" + urlencode(qs)
    return render(
        "results.html",
        form=form,
        items=page.items,
        error=None,
        next_url=next_url,
        codes=service.RESULT_CODE_ZH,
        nav="results",
    )


@router.get("/results/{publication_id}", response_class=HTMLResponse)
async def result(request: Request, session: Session, publication_id: str) -> Response:
    try:
        if not publication_id.isdigit() or len(publication_id) > 18:
            raise NotFound("该结果不存在。 No such result.")
        item = await service.get_result(session, publication_id=int(publication_id))
    except QSamplingError as exc:
        return error_page(exc)
    return render("result.html", r=item, nav="results")


@router.get("/lists/{list_name}", response_class=HTMLResponse)
async def lists(
    request: Request,
    session: Session,
    list_name: str,
    status: str | None = None,
    cursor: str | None = None,
) -> Response:
    try:
        page = await service.list_entries(
            session, list_name=list_name, status=_opt(status), cursor=_opt(cursor), limit=50
        )
    except QSamplingError as exc:
        return error_page(exc)
    next_url = None
    if page.next_cursor:
        qs = {"cursor": page.next_cursor}
        if _opt(status):
            qs["status"] = str(status)
        next_url = f"/lists/{list_name}?" + urlencode(qs)
    return render(
        "lists.html",
        list_name=list_name,
        title=service.LIST_TITLES_ZH[list_name],
        items=page.items,
        status=_opt(status) or "",
        next_url=next_url,
        nav=f"list-{list_name}",
    )


@router.get("/draws", response_class=HTMLResponse)
async def draws(request: Request, session: Session) -> Response:
    rows = await service.recent_draws(session, limit=100)
    return render("draws.html", draws=rows, nav="draws")


@router.get("/draws/{plan_id}", response_class=HTMLResponse)
async def draw(request: Request, session: Session, plan_id: str) -> Response:
    try:
        if not plan_id.isdigit() or len(plan_id) > 18:
            raise NotFound("该计划不存在或尚未抽取。 No such draw.")
        d = await service.draw_detail(session, plan_id=int(plan_id))
    except QSamplingError as exc:
        return error_page(exc)
    return render("draw.html", d=d, nav="draws")


def _stats_args(
    group_by: str | None, target: str | None, date_from: str | None, date_to: str | None
) -> dict[str, Any]:
    gb = _opt(group_by) or "category:1"
    if gb not in ("category:1", "region:city", "period:quarter"):
        raise InvalidInput("分组方式无效。 Unknown grouping.")
    t = _opt(target)
    tv: float | None = None
    if t is not None:
        try:
            tv = float(t)
        except ValueError:
            raise InvalidInput("目标值应为 0 到 1 之间的小数，如 0.93。") from None
        if tv > 1:
            tv = tv / 100.0
        if not 0 < tv < 1:
            raise InvalidInput("目标值应为 0 到 1 之间的小数，如 0.93。")
    return {
        "group_by": [gb],
        "target": tv,
        "date_from": _date(date_from, "开始"),
        "date_to": _date(date_to, "结束"),
    }


@router.get("/stats", response_class=HTMLResponse)
async def stats(
    request: Request,
    session: Session,
    group_by: str | None = None,
    target: str | None = None,
    date_from: Annotated[str | None, Query(alias="from")] = None,
    date_to: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    form = {
        "group_by": _opt(group_by) or "category:1",
        "target": _opt(target) or "0.93",
        "from": _opt(date_from) or "",
        "to": _opt(date_to) or "",
    }
    try:
        args = _stats_args(form["group_by"], form["target"], date_from, date_to)
        res = await service.public_stats(session, **args)
    except QSamplingError as exc:
        return render(
            "stats.html",
            status_code=exc.status,
            form=form,
            res=None,
            error=exc.detail,
            chart_url=None,
            nav="stats",
        )
    chart_url = "/stats/chart.svg?" + urlencode({k: v for k, v in form.items() if v})
    return render("stats.html", form=form, res=res, error=None, chart_url=chart_url, nav="stats")


@router.get("/stats/chart.svg")
async def stats_chart(
    request: Request,
    session: Session,
    group_by: str | None = None,
    target: str | None = None,
    date_from: Annotated[str | None, Query(alias="from")] = None,
    date_to: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    from qsampling.stats.charts import chart_for_pass_rates

    try:
        args = _stats_args(group_by, target, date_from, date_to)
        res = await service.public_stats(session, **args)
    except QSamplingError as exc:
        return error_page(exc)
    svg = chart_for_pass_rates(res, title="抽检合格率（加权总体估计）与目标")
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"Content-Security-Policy": SVG_CSP, "Cache-Control": "public, max-age=60"},
    )


@router.get("/about/open-data", response_class=HTMLResponse)
async def open_data(request: Request) -> Response:
    return render("open_data.html", nav="open-data")


@router.get("/static/{name}")
async def static(name: str) -> Response:
    media = STATIC_FILES.get(name)
    if media is None:
        return error_page(NotFound("文件不存在。 No such file."))
    data = _static_bytes(name)
    return Response(data, media_type=media, headers={"Cache-Control": "public, max-age=3600"})


@lru_cache
def _static_bytes(name: str) -> bytes:
    return resources.files("qsampling").joinpath("static", name).read_bytes()


@router.get("/downloads/verify_draw.py")
async def verify_script() -> Response:
    """The standalone draw verifier (standard library only) shipped in ``scripts/``."""
    from qsampling.db import REPO_ROOT

    path = REPO_ROOT / "scripts" / "verify_draw.py"
    if not path.is_file():
        return error_page(NotFound("验证脚本不可用。 The verifier is not installed here."))
    return Response(
        path.read_bytes(),
        media_type="text/x-python; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="verify_draw.py"'},
    )
