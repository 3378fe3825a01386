"""Evidence files (photos, PDFs), content-addressed by SHA-256 and stored in PostgreSQL.

The type is decided by the bytes, not by the name or the declared content type: JPEG, PNG,
WebP and PDF only, each with a structural check beyond the first magic bytes, so a renamed
executable or a truncated upload is refused.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from qsampling.audit import service as audit
from qsampling.context import Actor
from qsampling.errors import InvalidInput, NotFound, PayloadTooLarge, QSamplingError
from qsampling.inspections.schemas import EvidenceOut
from qsampling.models.inspections import EvidenceFile


class UnsupportedEvidence(QSamplingError):
    status = 415
    code = "UnsupportedEvidenceType"


GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-pdf": "application/pdf",
}


def sniff(data: bytes) -> str | None:
    """The media type the bytes really are (one of the four allowed), or None."""
    if len(data) >= 4 and data[:3] == b"\xff\xd8\xff":
        # a JPEG ends with the EOI marker (some cameras pad after it)
        return "image/jpeg" if b"\xff\xd9" in data[-1024:] else None
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        if len(data) >= 33 and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            if width > 0 and height > 0:
                return "image/png"
        return None
    if len(data) >= 16 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        (riff_size,) = struct.unpack("<I", data[4:8])
        if data[12:16] in (b"VP8 ", b"VP8L", b"VP8X") and riff_size + 8 <= len(data) + 1:
            return "image/webp"
        return None
    if data[:5] == b"%PDF-":
        return "application/pdf" if b"%%EOF" in data[-2048:] else None
    return None


def check(data: bytes, declared: str | None, *, max_bytes: int) -> str:
    """The media type of an upload, or the error a client should see."""
    if not data:
        raise InvalidInput("The file is empty. 文件为空。", code="EmptyEvidence")
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"The file has {len(data)} bytes; the limit is {max_bytes}. 文件过大。",
            code="EvidenceTooLarge",
        )
    found = sniff(data)
    if found is None:
        raise UnsupportedEvidence(
            "Only JPEG, PNG, WebP images and PDF documents are accepted, checked by their "
            "content. 仅接受 JPEG、PNG、WebP 图片和 PDF 文件（按文件内容检查）。"
        )
    decl = (declared or "").split(";")[0].strip().lower()
    decl = ALIASES.get(decl, decl)
    if decl not in GENERIC_TYPES and decl != found:
        raise InvalidInput(
            f"The file was declared as {decl} but its content is {found}. "
            "声明的文件类型与内容不符。",
            code="EvidenceTypeMismatch",
        )
    return found


async def store(
    session: AsyncSession,
    *,
    actor: Actor,
    data: bytes,
    declared_type: str | None,
    filename: str | None,
    max_bytes: int,
) -> tuple[EvidenceOut, bool]:
    """Store the file (once per content); returns it and whether it was new."""
    media_type = check(data, declared_type, max_bytes=max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    name = (filename or "")[:255] or None
    inserted = await session.scalar(
        insert(EvidenceFile)
        .values(
            sha256=digest,
            media_type=media_type,
            size_bytes=len(data),
            content=data,
            filename=name,
            uploaded_by=actor.username,
        )
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(EvidenceFile.sha256)
    )
    row = await get_meta(session, sha256=digest)
    if inserted is not None:
        await audit.record(
            session,
            actor=actor,
            action="evidence.upload",
            entity_type="evidence",
            entity_id=digest,
            payload={"sha256": digest, "media_type": media_type, "size": len(data)},
        )
    return row, inserted is not None


async def get_meta(session: AsyncSession, *, sha256: str) -> EvidenceOut:
    row = (
        await session.execute(
            select(
                EvidenceFile.sha256,
                EvidenceFile.media_type,
                EvidenceFile.size_bytes,
                EvidenceFile.created_at,
            ).where(EvidenceFile.sha256 == sha256.lower())
        )
    ).first()
    if row is None:
        raise NotFound(f"No evidence file {sha256}. 证据文件不存在。", code="EvidenceNotFound")
    return EvidenceOut(
        sha256=row.sha256,
        media_type=row.media_type,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
    )


async def get_content(session: AsyncSession, *, sha256: str) -> tuple[bytes, str]:
    row = (
        await session.execute(
            select(EvidenceFile.content, EvidenceFile.media_type).where(
                EvidenceFile.sha256 == sha256.lower()
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"No evidence file {sha256}. 证据文件不存在。", code="EvidenceNotFound")
    return bytes(row.content), row.media_type


async def known(session: AsyncSession, digests: Iterable[str]) -> set[str]:
    wanted = sorted(set(digests))
    if not wanted:
        return set()
    rows = await session.execute(
        text("SELECT sha256 FROM evidence_files WHERE sha256 = ANY(CAST(:d AS text[]))"),
        {"d": wanted},
    )
    return {r[0] for r in rows}
