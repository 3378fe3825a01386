"""ORM models of the credit module."""

from __future__ import annotations
