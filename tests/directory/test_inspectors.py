"""The inspector directory, declared conflicts of interest and inspector imports."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import text

from qsampling.directory import importer
from tests.directory.conftest import ACTOR, UNIT, UNIT2, code, wrong_check, xlsx_bytes

pytestmark = pytest.mark.usefixtures("reference")


def body(iid: str = "FJ-350102-101", **over: object) -> dict[str, object]:
    b: dict[str, object] = {
        "inspector_id": iid,
        "name": "林志明",
        "unit_code": UNIT,
        "region_scope": ["350102"],
        "qualifications": ["QUAL-CHILD", "QUAL-GEN"],
    }
    b.update(over)
    return b


async def test_create_get_update(client, login) -> None:
    h = await login("supervisor")
    r = await client.post("/api/v1/inspectors", json=body(), headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["active"] is True
    r = await client.patch(
        "/api/v1/inspectors/FJ-350102-101",
        json={"active": False, "unit_code": UNIT2, "qualifications": None},
        headers=h,
    )
    assert r.status_code == 200, r.text
    ins = r.json()
    assert (ins["active"], ins["unit_code"], ins["qualifications"]) == (False, UNIT2, [])
    assert ins["region_scope"] == ["350102"]
    r = await client.get("/api/v1/inspectors/FJ-350102-101", headers=await login("inspector"))
    assert r.status_code == 200 and r.json()["name"] == "林志明"
    assert set(r.json()) == {
        "inspector_id",
        "name",
        "unit_code",
        "region_scope",
        "qualifications",
        "active",
        "created_at",
        "updated_at",
    }  # no ID-card number, no phone


BAD_CREATES = [
    ({"unit_code": "NOPE"}, "UnknownUnit"),
    ({"region_scope": ["350199"]}, "UnknownRegion"),
    ({"qualifications": ["QUAL-NONE"]}, "UnknownQualification"),
    ({"inspector_id": "350102199003078510"}, None),  # an ID-like id is just an id …
    ({"name": "王五 13912345678"}, "PersonalData"),  # … but a phone in the name is not
    ({"inspector_id": "has space"}, "InvalidInput"),
    ({"phone": "13912345678"}, "InvalidInput"),  # unknown field: refused
]


async def test_create_refuses_bad_input(client, login) -> None:
    h = await login("admin")
    for over, error in BAD_CREATES:
        r = await client.post("/api/v1/inspectors", json=body(**over), headers=h)
        if error is None:
            assert r.status_code == 201, (over, r.text)
        else:
            assert r.status_code == 422, (over, r.text)
            assert r.json()["error"] == error, (over, r.text)


async def test_duplicate_and_missing(client, login) -> None:
    h = await login("admin")
    await client.post("/api/v1/inspectors", json=body(), headers=h)
    r = await client.post("/api/v1/inspectors", json=body(), headers=h)
    assert r.status_code == 409 and r.json()["error"] == "InspectorExists"
    r = await client.get("/api/v1/inspectors/NOBODY", headers=h)
    assert r.status_code == 404 and r.json()["error"] == "InspectorNotFound"


async def test_filters_and_paging(client, login) -> None:
    h = await login("supervisor")
    made = [
        body("A-1", name="陈静", unit_code=UNIT, region_scope=["350102"]),
        body(
            "A-2",
            name="陈伟",
            unit_code=UNIT2,
            region_scope=["350203"],
            qualifications=["QUAL-ELEC"],
        ),
        body("A-3", name="黄丽", unit_code=UNIT, region_scope=[], active=False),
    ]
    for b in made:
        assert (await client.post("/api/v1/inspectors", json=b, headers=h)).status_code == 201

    async def ids(**params) -> list[str]:
        r = await client.get("/api/v1/inspectors", params=params, headers=h)
        assert r.status_code == 200, r.text
        return [i["inspector_id"] for i in r.json()["items"] if i["inspector_id"].startswith("A-")]

    assert await ids(unit_code=UNIT) == ["A-1", "A-3"]
    assert await ids(region="3502") == ["A-2", "A-3"]  # an empty scope is no restriction
    assert await ids(region="350100") == ["A-1", "A-3"]
    assert await ids(qualification="QUAL-ELEC") == ["A-2"]
    assert await ids(active="false") == ["A-3"]
    assert await ids(name="陈") == ["A-1", "A-2"]
    r = await client.get("/api/v1/inspectors", params={"limit": 1}, headers=h)
    assert len(r.json()["items"]) == 1 and r.json()["next_cursor"]


async def test_conflicts_declare_list_withdraw(client, login, session) -> None:
    h = await login("supervisor")
    await client.post("/api/v1/inspectors", json=body(), headers=h)
    url = "/api/v1/inspectors/FJ-350102-101/conflicts"
    c = code(31)
    r = await client.post(
        url,
        json={"uscc": c.lower(), "reason": "配偶在该企业任职", "declared_date": "2026-01-05"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    conflict = r.json()
    assert conflict["uscc"] == c and conflict["declared_date"] == "2026-01-05"
    r = await client.post(url, json={"uscc": c, "reason": "again"}, headers=h)
    assert r.status_code == 409 and r.json()["error"] == "ConflictExists"
    r = await client.post(url, json={"uscc": wrong_check(c), "reason": "x"}, headers=h)
    assert r.status_code == 422 and r.json()["error"] == "InvalidUSCC"
    r = await client.post(
        url, json={"uscc": code(32), "reason": "x", "declared_date": "2999-01-01"}, headers=h
    )
    assert r.status_code == 422
    r = await client.get(url, headers=await login("inspector"))
    assert [x["uscc"] for x in r.json()] == [c]
    r = await client.delete(f"{url}/{conflict['id']}", headers=await login("analyst"))
    assert r.status_code == 403
    r = await client.delete(f"{url}/{conflict['id']}", headers=h)
    assert r.status_code == 204
    r = await client.delete(f"{url}/{conflict['id']}", headers=h)
    assert r.status_code == 404 and r.json()["error"] == "ConflictNotFound"
    r = await client.get(url, headers=h)
    assert r.json() == []
    r = await client.get("/api/v1/inspectors/NOBODY/conflicts", headers=h)
    assert r.status_code == 404
    actions = list(
        (
            await session.execute(
                text("SELECT action FROM audit_log WHERE entity_type = 'inspector_conflict'")
            )
        ).scalars()
    )
    assert actions == ["conflict.create", "conflict.delete"]


# --- import ----------------------------------------------------------------------------------


async def test_inspector_import(session) -> None:
    data = (
        "人员编号,姓名,所属单位,执法区域,检查资质,在岗,身份证号\r\n"
        f"I-1,张伟,{UNIT},350102;350103,QUAL-CHILD;QUAL-GEN,是,\r\n"
        f"I-2,李娜,{UNIT2},,QUAL-ELEC,否,\r\n"
        "I-3,王芳,NO-UNIT,,,,\r\n"
        f"I-1,重复,{UNIT},,,,\r\n"
        f"I-4,赵强,{UNIT},359999,QUAL-XYZ,maybe,\r\n"
        f"I-5,,{UNIT},,,,\r\n"
    ).encode("gb18030")
    report = await importer.import_inspectors(
        session, f=io.BytesIO(data), filename="ins.csv", actor=ACTOR
    )
    assert report.file_format == "csv/gb18030"
    assert report.ignored_columns == ["身份证号"]
    assert (report.accepted, report.inserted, report.rejected) == (2, 2, 4)
    probs = [
        (r.row_number, r.field)
        for r in await importer.rejected_rows(session, import_id=report.id, limit=None)
    ]
    assert probs == [
        (4, "unit_code"),
        (5, "inspector_id"),
        (6, "active"),
        (6, "qualifications"),
        (6, "region_scope"),
        (7, "name"),
    ]
    rows = (
        await session.execute(
            text(
                "SELECT inspector_id, region_scope, qualifications, active FROM inspectors "
                "WHERE inspector_id IN ('I-1','I-2') ORDER BY 1"
            )
        )
    ).all()
    assert [tuple(r) for r in rows] == [
        ("I-1", ["350102", "350103"], ["QUAL-CHILD", "QUAL-GEN"], True),
        ("I-2", [], ["QUAL-ELEC"], False),
    ]
    again = await importer.import_inspectors(
        session, f=io.BytesIO(data), filename="ins.csv", actor=ACTOR
    )
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)


async def test_inspector_import_xlsx_strict(session) -> None:
    data = xlsx_bytes(
        [
            ["inspector_id", "name", "unit_code"],
            ["X-1", "周平", UNIT],
            ["X-2", "吴刚", "NOPE"],
        ]
    )
    report = await importer.import_inspectors(
        session, f=io.BytesIO(data), filename="ins.xlsx", actor=ACTOR, strict=True
    )
    assert not report.stored and report.rejected == 1
    assert not await session.scalar(
        text("SELECT count(*) FROM inspectors WHERE inspector_id = 'X-1'")
    )
