"""Evidence uploads: type by content, size limit, stored once, referenced by results."""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import Any

import httpx
import pytest

from qsampling.inspections.evidence import sniff

from .conftest import World, result_body


def png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"
WEBP = (
    b"RIFF"
    + struct.pack("<I", 4 + 8 + 10)
    + b"WEBP"
    + b"VP8 "
    + struct.pack("<I", 10)
    + b"\x00" * 10
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (png(), "image/png"),
        (PDF, "application/pdf"),
        (JPEG, "image/jpeg"),
        (WEBP, "image/webp"),
        (b"MZ\x90\x00 this is an exe", None),
        (b"%PDF-1.4 truncated without the end marker", None),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, None),
        (b"GIF89a" + b"\x00" * 20, None),
    ],
)
def test_sniff(data: bytes, expected: str | None) -> None:
    assert sniff(data) == expected


async def _upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    ctype: str = "image/png",
    name: str = "photo.png",
) -> httpx.Response:
    return await client.post(
        "/api/v1/evidence", files={"file": (name, data, ctype)}, headers=headers
    )


async def test_upload_then_reference_from_a_result(
    client: httpx.AsyncClient, world: World, as_inspector
) -> None:
    h = await as_inspector("TI-1")
    data = png(3, 3)
    r = await _upload(client, h, data)
    assert r.status_code == 201, r.text
    digest = r.json()["sha256"]
    assert digest == hashlib.sha256(data).hexdigest()
    assert r.json()["media_type"] == "image/png" and r.json()["size_bytes"] == len(data)
    again = await _upload(client, h, data, ctype="application/octet-stream", name="x.bin")
    assert again.status_code == 200 and again.json()["sha256"] == digest

    pdf = await _upload(client, h, PDF, ctype="application/pdf", name="报告.pdf")
    assert pdf.status_code == 201
    task = await world.task()
    body = result_body(evidence=[digest.upper(), pdf.json()["sha256"]])
    r = await client.post(f"/api/v1/tasks/{task}/result", json=body, headers=h)
    assert r.status_code == 201, r.text
    res = (await client.get(f"/api/v1/results/{r.json()['result_id']}", headers=h)).json()
    assert res["evidence"] == [digest, pdf.json()["sha256"]]
    dl = await client.get(f"/api/v1/evidence/{digest}", headers=h)
    assert dl.status_code == 200 and dl.content == data
    assert dl.headers["content-type"] == "image/png"
    assert (await client.get(f"/api/v1/evidence/{'0' * 64}", headers=h)).status_code == 404


@pytest.mark.parametrize(
    ("data", "ctype", "status", "code"),
    [
        (b"#!/bin/sh\nrm -rf /\n", "image/png", 415, "UnsupportedEvidenceType"),
        (b"GIF89a" + b"\x00" * 20, "image/gif", 415, "UnsupportedEvidenceType"),
        (PDF, "image/png", 422, "EvidenceTypeMismatch"),
        (b"", "image/png", 422, "EmptyEvidence"),
    ],
)
async def test_refused_uploads(
    client: httpx.AsyncClient, as_inspector, data: bytes, ctype: str, status: int, code: str
) -> None:
    r = await _upload(client, await as_inspector("TI-1"), data, ctype=ctype)
    assert r.status_code == status, r.text
    assert r.json()["error"] == code


async def test_size_limit(test_settings: Any, sessionmaker: Any, login) -> None:
    from qsampling.app import create_app

    app = create_app(
        test_settings.model_copy(update={"evidence_max_bytes": 1000}), sessionmaker=sessionmaker
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        h = await login("inspector", inspector_id="TI-1")
        r = await _upload(c, h, png(40, 40) + b"\x00" * 2000)
        assert r.status_code == 413 and r.json()["error"] == "EvidenceTooLarge"
        assert (await _upload(c, h, png())).status_code == 201


async def test_roles(client: httpx.AsyncClient, login) -> None:
    r = await _upload(client, await login("analyst"), png())
    assert r.status_code == 403
    r = await _upload(client, await login("supervisor"), png())
    assert r.status_code == 201
