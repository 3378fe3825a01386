"""ORM models, one module per aggregate. Importing this package registers every table."""

from qsampling.models.audit import AuditEntry
from qsampling.models.auth import ROLES, ApiToken, LoginAttempt, User
from qsampling.models.base import Base
from qsampling.models.directory import (
    Category,
    CheckItem,
    Conflict,
    Enterprise,
    Inspector,
    Region,
    Unit,
)
from qsampling.models.draws import Commitment, Draw, Plan, PoolChunk, Task, TaskInspector

__all__ = [
    "ROLES",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Category",
    "CheckItem",
    "Commitment",
    "Conflict",
    "Draw",
    "Enterprise",
    "Inspector",
    "LoginAttempt",
    "Plan",
    "PoolChunk",
    "Region",
    "Task",
    "TaskInspector",
    "Unit",
    "User",
]

# modules whose tables register on import (their classes are imported from the module)
from qsampling.models import credit as credit  # noqa: E402
from qsampling.models import disclosure as disclosure  # noqa: E402
from qsampling.models import inspections as inspections  # noqa: E402
