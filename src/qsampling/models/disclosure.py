"""ORM models of the disclosure module."""

from __future__ import annotations
