from __future__ import annotations

import subprocess
import sys

import pytest

from qsampling.config import SettingsError, load_settings


def test_wrong_setting_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QSAMPLING_PORT", "not-a-port")
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert str(exc.value).startswith("QSAMPLING_PORT:")
    assert "\n" not in str(exc.value)


def test_production_requires_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QSAMPLING_ENV", "production")
    monkeypatch.delenv("QSAMPLING_DATABASE_URL", raising=False)
    with pytest.raises(SettingsError, match="QSAMPLING_DATABASE_URL must be set"):
        load_settings()
    monkeypatch.setenv("QSAMPLING_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    with pytest.raises(SettingsError, match="QSAMPLING_SIGNING_KEY must be set"):
        load_settings()
    monkeypatch.setenv("QSAMPLING_SIGNING_KEY", "ab" * 32)
    assert load_settings().env == "production"


def test_non_postgres_url_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QSAMPLING_DATABASE_URL", "sqlite:///x.db")
    with pytest.raises(SettingsError, match="PostgreSQL only"):
        load_settings()


def test_cli_reports_bad_setting_in_one_line() -> None:
    env = {"QSAMPLING_PORT": "99999999", "PATH": ""}
    p = subprocess.run(
        [sys.executable, "-m", "qsampling.cli", "db", "url"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "QSAMPLING_PORT" in lines[0]
