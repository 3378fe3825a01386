"""The committed HTTP contract: ``api/openapi.json`` is generated from the app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qsampling.config import Settings


def build_openapi() -> dict[str, Any]:
    from qsampling.app import create_app

    # a placeholder URL: building the schema never connects
    app = create_app(Settings(database_url="postgresql+asyncpg://openapi@localhost/openapi"))
    return app.openapi()


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_openapi(path: str | Path) -> None:
    Path(path).write_text(render(build_openapi()), encoding="utf-8")
