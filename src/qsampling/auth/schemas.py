from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64, description="用户名 / username")
    password: str = Field(min_length=1, max_length=1024, description="密码 / password")


class TokenResponse(BaseModel):
    access_token: str = Field(description="Opaque bearer token; send as `Authorization: Bearer …`")
    token_type: str = "bearer"
    expires_at: datetime
    role: str
    username: str


class Me(BaseModel):
    username: str
    role: str
    display_name: str | None = None
    inspector_id: str | None = None
