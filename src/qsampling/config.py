"""Settings: one pydantic-settings class, every variable prefixed ``QSAMPLING_``.

Secrets have no defaults outside development mode (``QSAMPLING_ENV=development``):
in production a missing signing key or an unset database stops start-up with a
one-line explanation instead of running with a guessable secret.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SIGNING_SEED = "qsampling-development-signing-key-not-for-production"


class SettingsError(Exception):
    """A setting is wrong; the message is one line a person can act on."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QSAMPLING_", extra="ignore")

    env: Literal["development", "production", "test"] = Field(
        "development",
        description="development: embedded PostgreSQL and development secrets allowed; "
        "production: every secret must be set.",
    )
    database_url: str | None = Field(
        None,
        description="postgresql+asyncpg://user:pass@host:port/db; unset → embedded PostgreSQL "
        "(development and test only).",
    )
    data_dir: Path = Field(Path(".data"), description="Where the embedded server keeps data.")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    token_ttl_hours: float = Field(12.0, gt=0, le=24 * 30)
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    login_max_failures: int = Field(10, ge=1)
    login_window_minutes: int = Field(15, ge=1)
    min_entropy_chars: int = Field(20, ge=1)
    audit_seal_interval_seconds: float = Field(
        1.0, ge=0, description="0 disables the background audit sealer (tests, CLI)."
    )
    pool_size: int = Field(20, ge=1)
    pool_max_overflow: int = Field(10, ge=0)
    signing_key: str | None = Field(
        None, description="Ed25519 private key seed (64 hex chars) for export manifests."
    )
    public_rate_limit_per_minute: int = Field(600, ge=1)
    evidence_max_bytes: int = Field(10 * 1024 * 1024, gt=0)

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if not v.startswith(("postgresql+asyncpg://", "postgresql://", "postgres://")):
            raise ValueError("must start with postgresql+asyncpg:// (PostgreSQL only)")
        if v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://") :]
        if v.startswith("postgresql://"):
            v = "postgresql+asyncpg://" + v[len("postgresql://") :]
        return v

    @field_validator("signing_key")
    @classmethod
    def _check_key(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        try:
            raw = bytes.fromhex(v)
        except ValueError:
            raise ValueError("must be 64 hexadecimal characters (an Ed25519 seed)") from None
        if len(raw) != 32:
            raise ValueError("must be 64 hexadecimal characters (an Ed25519 seed)")
        return v

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        if self.env == "production":
            if not self.database_url:
                raise ValueError(
                    "QSAMPLING_DATABASE_URL must be set in production "
                    "(the embedded server is for development)"
                )
            if not self.signing_key:
                raise ValueError("QSAMPLING_SIGNING_KEY must be set in production")
        return self

    @property
    def signing_seed(self) -> bytes:
        if self.signing_key:
            return bytes.fromhex(self.signing_key)
        import hashlib

        return hashlib.sha256(DEV_SIGNING_SEED.encode()).digest()


def load_settings() -> Settings:
    """Read settings from the environment; a wrong one raises SettingsError with one line."""
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        name = f"QSAMPLING_{loc.upper()}" if loc else "settings"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        raise SettingsError(f"{name}: {msg}") from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
