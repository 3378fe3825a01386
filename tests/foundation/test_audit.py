from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from qsampling.audit.service import seal, verify


async def test_changes_are_audited_and_chained(client, login, session) -> None:
    await login("supervisor", username="sup1")
    rows = (
        await session.execute(text("SELECT action, entity_type, actor FROM audit_log ORDER BY id"))
    ).all()
    actions = [r.action for r in rows]
    assert "user.create" in actions and "auth.login" in actions
    n = await seal(session)
    assert n == len(rows)
    rep = await verify(session)
    assert rep.ok and rep.checked == len(rows) and rep.unsealed == 0
    # sealing again is a no-op
    assert await seal(session) == 0


async def test_database_refuses_delete_and_update(login, session) -> None:
    await login("analyst")
    await seal(session)
    await session.commit()  # releases the savepoint; the outer test transaction stays
    for stmt in (
        "DELETE FROM audit_log",
        "UPDATE audit_log SET actor = 'mallory'",
        "UPDATE audit_log SET entry_hash = repeat('0', 64)",
        "TRUNCATE audit_log",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with session.begin_nested():
                await session.execute(text(stmt))


async def test_unsealed_row_can_only_be_sealed_not_edited(session, login) -> None:
    await login("analyst")
    with pytest.raises(DBAPIError, match="append-only"):
        async with session.begin_nested():
            await session.execute(
                text(
                    "UPDATE audit_log SET action = 'x', seq = 999, prev_hash = 'a', "
                    "entry_hash = 'b'"
                )
            )


async def test_tampering_as_superuser_is_caught_by_verify(session, login) -> None:
    await login("supervisor")
    await login("analyst")
    await seal(session)
    first_ok = await verify(session)
    assert first_ok.ok and first_ok.checked >= 4
    # a superuser bypasses the trigger and rewrites history
    await session.execute(text("SET LOCAL session_replication_role = replica"))
    await session.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    await session.execute(text("SET LOCAL session_replication_role = origin"))
    rep = await verify(session)
    assert not rep.ok
    assert rep.seq == 2
    assert "altered" in (rep.problem or "")


async def test_deleted_row_shows_as_gap(session, login) -> None:
    await login("supervisor")
    await login("analyst")
    await seal(session)
    await session.execute(text("SET LOCAL session_replication_role = replica"))
    await session.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    await session.execute(text("SET LOCAL session_replication_role = origin"))
    rep = await verify(session)
    assert not rep.ok and rep.seq == 3 and "gap" in (rep.problem or "")


async def test_audit_endpoint_admin_only(client, login) -> None:
    admin = await login("admin")
    r = await client.get("/api/v1/audit", headers=admin)
    assert r.status_code == 200
    assert any(e["action"] == "auth.login" for e in r.json())
    sup = await login("supervisor")
    assert (await client.get("/api/v1/audit", headers=sup)).status_code == 403
