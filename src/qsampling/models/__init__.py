"""ORM models, one module per aggregate. Importing this package registers every table."""

from qsampling.models.audit import AuditEntry
from qsampling.models.auth import ROLES, ApiToken, LoginAttempt, User
from qsampling.models.base import Base

__all__ = ["ROLES", "ApiToken", "AuditEntry", "Base", "LoginAttempt", "User"]
