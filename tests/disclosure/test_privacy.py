"""Every public endpoint, export and portal page, scanned for what must never be public:
identity numbers, phone numbers, a sole trader's address, the credit class, inspector ids,
and inspectors' free-text notes."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import httpx
from fastapi.routing import APIRoute

from tests.disclosure.conftest import (
    INSPECTOR_IDS,
    SOLE_ADDRESS,
    SOLE_ID,
    SOLE_PHONE,
    Province,
)

try:
    from fastapi.routing import _iter_included_route_candidates as _effective
except ImportError:  # pragma: no cover

    def _effective(routes: Any) -> Any:  # type: ignore[misc]
        return iter(routes)


ID_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
    r"(?![0-9A-Za-z])"
)
MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
CREDIT_FIELDS = re.compile(r"credit_class|score_class|信用风险分类|\"score\"")
# The draws module's own public routes publish inspector ids: QSDRAW-1 (DESIGN §4) needs
# them in inspectors.csv and result.json to re-run the team assignment.
DRAW_ROUTES = ("/api/v1/public/draws", "/api/v1/public/commitments")


def _bodies(content: bytes) -> list[str]:
    """The text of a response, or of every member of a zip/xlsx."""
    if content[:2] == b"PK":
        out = []
        with zipfile.ZipFile(io.BytesIO(content)) as z:
            for name in z.namelist():
                out.extend(_bodies(z.read(name)))
        return out
    return [content.decode("utf-8", "replace")]


def _paths(app: Any, p: Province, publication_ids: list[int]) -> list[str]:
    fills: dict[str, list[str]] = {
        "uscc": [p.company, p.sole, p.listed],
        "publication_id": [str(i) for i in publication_ids],
        "list_name": ["abnormal", "serious", "joint-punishment"],
        "plan_id": [str(p.plan_id)],
        "commitment": ["c" * 64],
        "name": ["portal.css"],
    }
    out: list[str] = []
    for r in _effective(app.routes):
        if not isinstance(r, APIRoute) or "GET" not in r.methods:
            continue
        path = r.path
        if path.startswith("/api/") and not path.startswith("/api/v1/public/"):
            continue
        # (the bare search needs ?q=, added below)
        if path in ("/healthz", "/readyz", "/openapi.json", "/api/v1/public/enterprises"):
            continue
        if "{dataset}" in path:
            for ds in ("results", "lists", "draws", "stats"):
                for fmt in ("csv", "json", "xlsx"):
                    out.append(path.replace("{dataset}", ds).replace("{fmt}", fmt))
            continue
        variants = [path]
        for key, values in fills.items():
            if "{" + key + "}" in path:
                variants = [v.replace("{" + key + "}", val) for v in variants for val in values]
        out.extend(v for v in variants if "{" not in v)
    # pages with query strings the portal offers
    out += [
        "/search?q=童车",
        "/results?conclusion=fail",
        "/lists/abnormal?status=listed",
        "/api/v1/public/results?changed_since=2000-01-01T00:00:00Z",
        "/api/v1/public/enterprises?q=童车",
        "/api/v1/public/lists/joint-punishment?changed_since=2000-01-01T00:00:00Z",
        "/stats?group_by=region:city",
    ]
    return out


async def test_nothing_private_in_any_public_output(
    app: Any, client: httpx.AsyncClient, published: Province
) -> None:
    items = (await client.get("/api/v1/public/results")).json()["items"]
    paths = _paths(app, published, [i["id"] for i in items])
    usccs = {published.company, published.sole, published.listed}
    checked = 0
    for path in paths:
        r = await client.get(path)
        assert r.status_code in (200, 303), f"{path}: {r.status_code} {r.text[:200]}"
        for body in _bodies(r.content):
            where = f"{path}"
            assert SOLE_ADDRESS not in body, f"sole trader's address in {where}"
            assert "幸福小区" not in body, where
            assert SOLE_ID not in body and SOLE_PHONE not in body, where
            assert "13812345678" not in body, f"phone in {where}"
            ids = [m.group(0) for m in ID_NUMBER.finditer(body) if m.group(0) not in usccs]
            assert ids == [], f"identity-number pattern {ids} in {where}"
            phones = MOBILE.findall(body)
            assert phones == [], f"phone pattern in {where}"
            assert not CREDIT_FIELDS.search(body), f"credit class field in {where}"
            assert "负责人张三" not in body, f"inspector notes in {where}"
            assert "内部提议" not in body, f"a list proposal in {where}"
            if not path.startswith(DRAW_ROUTES):
                for iid in INSPECTOR_IDS:
                    assert iid not in body, f"inspector id {iid} in {where}"
            checked += 1
    assert checked > 40
    # inspector *names* are public on results
    assert any(
        "王检查" in b
        for b in _bodies((await client.get("/api/v1/public/export/results.csv")).content)
    )


def test_redaction_masks_numbers_but_not_codes() -> None:
    from qsampling.disclosure.privacy import MASK, public_address, redact

    assert redact(f"电话 {SOLE_PHONE}，身份证 {SOLE_ID}") == f"电话 {MASK}，身份证 {MASK}"
    assert redact("+86 139-1234-5678") == MASK
    assert redact("0591-87654321") == MASK
    # hashes, USCCs and batch numbers are left alone
    assert redact("91350100MA2YT0018H") == "91350100MA2YT0018H"
    assert redact("a1391234567812") == "a1391234567812"
    assert redact("20240801") == "20240801"
    assert public_address("个体工商户", "某小区") is None
    assert public_address("企业", "五四路1号") == "五四路1号"
