"""Export manifests: what was exported, how many rows, SHA-256 of each file, Ed25519-signed.

An export directory (or zip bundle) holds the data file(s), ``manifest.json`` and
``manifest.sig``. ``manifest.sig`` is the lower-case hex Ed25519 signature of the exact bytes
of ``manifest.json`` (one line). The public key is published at
``GET /api/v1/public/signing-key``; ``qsampling verify-export`` checks every file's size and
SHA-256 and the signature (against ``--public-key``, or this installation's key).

No I/O except reading the files being verified; no web framework, no database.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
FORMAT_VERSION = 1


# --- keys -------------------------------------------------------------------------------------


def private_key(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(pub: bytes) -> str:
    """A short fingerprint: the first 16 hex characters of SHA-256 of the raw public key."""
    return hashlib.sha256(pub).hexdigest()[:16]


def public_key_info(seed: bytes) -> dict[str, str]:
    key = private_key(seed)
    raw = public_key_bytes(key)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "algorithm": "Ed25519",
        "key_id": key_id(raw),
        "public_key_hex": raw.hex(),
        "public_key_pem": pem.decode("ascii"),
    }


def load_public_key(text: str) -> Ed25519PublicKey:
    """A public key given as 64 hex characters or as PEM (SubjectPublicKeyInfo)."""
    t = text.strip()
    if t.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(t.encode("ascii"))
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the PEM key is not an Ed25519 public key")
        return key
    try:
        raw = bytes.fromhex(t)
    except ValueError:
        raise ValueError("a public key is 64 hexadecimal characters or a PEM block") from None
    if len(raw) != 32:
        raise ValueError("a public key is 64 hexadecimal characters or a PEM block")
    return Ed25519PublicKey.from_public_bytes(raw)


# --- building ---------------------------------------------------------------------------------


@dataclass
class FileEntry:
    name: str
    sha256: str
    bytes: int
    rows: int | None = None


@dataclass
class Manifest:
    dataset: str
    format: str
    filters: dict[str, Any]
    row_count: int
    files: list[FileEntry]
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    generator: str = "qsampling"
    schema: str | None = None

    def to_dict(self, pub: bytes) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "dataset": self.dataset,
            "format": self.format,
            "filters": self.filters,
            "row_count": self.row_count,
            "generated_at": self.generated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "generator": self.generator,
            "schema": self.schema,
            "files": [
                {"name": f.name, "sha256": f.sha256, "bytes": f.bytes}
                | ({"rows": f.rows} if f.rows is not None else {})
                for f in self.files
            ],
            "signature": {
                "algorithm": "Ed25519",
                "file": SIGNATURE_NAME,
                "key_id": key_id(pub),
                "public_key_hex": pub.hex(),
            },
        }


def render_manifest(manifest: Manifest, seed: bytes) -> tuple[bytes, bytes]:
    """``(manifest.json bytes, manifest.sig bytes)``: pretty JSON, and its hex signature."""
    key = private_key(seed)
    body = (
        json.dumps(
            manifest.to_dict(public_key_bytes(key)), ensure_ascii=False, indent=2, sort_keys=True
        )
        + "\n"
    ).encode("utf-8")
    sig = key.sign(body).hex().encode("ascii") + b"\n"
    return body, sig


# --- verifying --------------------------------------------------------------------------------


@dataclass
class VerifyReport:
    ok: bool
    problems: list[str]
    dataset: str | None = None
    row_count: int | None = None
    files: list[str] = field(default_factory=list)
    key_id: str | None = None


class _Source:
    """A directory or a zip bundle, read the same way."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if path.is_file():
            self.zip = zipfile.ZipFile(path)

    def exists(self, name: str) -> bool:
        if self.zip is not None:
            return name in self.zip.namelist()
        return (self.path / name).is_file()

    def read_small(self, name: str) -> bytes:
        if self.zip is not None:
            return self.zip.read(name)
        return (self.path / name).read_bytes()

    def digest(self, name: str) -> tuple[str, int]:
        h = hashlib.sha256()
        size = 0
        if self.zip is not None:
            fh: Any = self.zip.open(name)
        else:
            fh = (self.path / name).open("rb")
        with fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
        return h.hexdigest(), size

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _safe_name(name: Any) -> bool:
    return (
        isinstance(name, str)
        and bool(name)
        and "/" not in name
        and "\\" not in name
        and name not in {".", ".."}
    )


def verify_export(path: Path, trusted: Ed25519PublicKey) -> VerifyReport:
    """Check an export directory or zip: signature over manifest.json, then every file."""
    problems: list[str] = []
    if not path.exists():
        return VerifyReport(False, [f"{path} does not exist"])
    try:
        src = _Source(path)
    except zipfile.BadZipFile:
        return VerifyReport(False, [f"{path} is neither a directory nor a zip bundle"])
    try:
        if not src.exists(MANIFEST_NAME):
            return VerifyReport(False, [f"{MANIFEST_NAME} is missing"])
        if not src.exists(SIGNATURE_NAME):
            return VerifyReport(False, [f"{SIGNATURE_NAME} is missing"])
        body = src.read_small(MANIFEST_NAME)
        sig_text = src.read_small(SIGNATURE_NAME).decode("ascii", "replace").strip()
        kid = key_id(public_key_bytes(trusted))
        try:
            trusted.verify(bytes.fromhex(sig_text), body)
        except (InvalidSignature, ValueError):
            problems.append(
                f"the signature does not match manifest.json for key {kid} "
                "(tampered manifest, or signed by another key)"
            )
        try:
            doc = json.loads(body)
        except ValueError:
            return VerifyReport(False, [*problems, "manifest.json is not valid JSON"])
        if not isinstance(doc, dict) or not isinstance(doc.get("files"), list):
            return VerifyReport(False, [*problems, "manifest.json has no list of files"])
        names: list[str] = []
        for entry in doc["files"]:
            name = entry.get("name") if isinstance(entry, dict) else None
            if not _safe_name(name):
                problems.append(f"unsafe or missing file name in manifest: {name!r}")
                continue
            assert isinstance(entry, dict) and isinstance(name, str)
            names.append(name)
            if not src.exists(name):
                problems.append(f"{name}: listed in the manifest but missing")
                continue
            digest, size = src.digest(name)
            if size != entry.get("bytes"):
                problems.append(f"{name}: {size} bytes, manifest says {entry.get('bytes')}")
            if digest != entry.get("sha256"):
                problems.append(f"{name}: SHA-256 {digest} differs from the manifest")
        return VerifyReport(
            ok=not problems,
            problems=problems,
            dataset=doc.get("dataset"),
            row_count=doc.get("row_count"),
            files=names,
            key_id=kid,
        )
    finally:
        src.close()
