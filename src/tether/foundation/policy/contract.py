"""I9's audit log: one row per guard decision worth keeping (who, what, which rule, outcome).

Every policy decision, allow and deny, and every I10 trip lands here, in the audit backend's
own table (`guard_audit`). Rows are written by the guard chain after redaction, so no secret
value reaches them. The log is append-only: a call re-judged after a crash gets a second row,
because the decision really was made twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from tether.settings import Settings


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    run_id: str
    workflow: str  # name@version
    step_id: str
    kind: str  # tool | model
    target: str  # tool name or task class
    backend: str | None = None
    who: str | None = None  # the subject of the run's identity; None for an anonymous run
    arguments: str = "{}"  # the call's arguments as JSON, redacted and truncated
    guard: str  # policy | budget | loop | rate | breaker
    rule: str
    outcome: str  # allow | deny | warn | pause
    reason: str


@runtime_checkable
class AuditLog(Protocol):
    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Self:
        """How `tether.foundation.loader` builds it: from the settings (its database URL, the
        data directory) and the options of its table in tether.toml, where it has one."""
        ...

    def record(self, entry: AuditRecord) -> None:
        """Append one row; it is committed when this returns."""
        ...

    def query(
        self, *, run_id: str | None = None, outcome: str | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        """Rows oldest first, optionally only one run's or one outcome's."""
        ...

    def close(self) -> None: ...
