"""ORM models of the inspections module."""

from __future__ import annotations
