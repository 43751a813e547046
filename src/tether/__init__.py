"""tether: durable, observable background agents on stable interfaces with swappable backends."""

from tether.client import RunView, Tether
from tether.errors import (
    BudgetExceeded,
    ChildFailed,
    ConfigurationError,
    CrossFamilyJudgeError,
    DatabaseUnavailable,
    GuardError,
    IdentityError,
    InvalidInput,
    LoopDetected,
    ModelError,
    NonDeterminismError,
    NonRetryableError,
    PolicyDenied,
    RateLimited,
    RunNotFound,
    RunStateError,
    StepFailed,
    TetherError,
    ToolArgumentError,
    UnsafeReplayError,
    WorkflowNotFound,
)
from tether.foundation.checkpoint.contract import RunRecord, RunStatus
from tether.runtime.context import Context
from tether.runtime.registry import WorkflowDef, workflow
from tether.runtime.retry import RetryPolicy
from tether.settings import Settings

__all__ = [
    "BudgetExceeded",
    "ChildFailed",
    "ConfigurationError",
    "Context",
    "CrossFamilyJudgeError",
    "DatabaseUnavailable",
    "GuardError",
    "IdentityError",
    "InvalidInput",
    "LoopDetected",
    "ModelError",
    "NonDeterminismError",
    "NonRetryableError",
    "PolicyDenied",
    "RateLimited",
    "RetryPolicy",
    "RunNotFound",
    "RunRecord",
    "RunStateError",
    "RunStatus",
    "RunView",
    "Settings",
    "StepFailed",
    "TetherError",
    "Tether",
    "ToolArgumentError",
    "UnsafeReplayError",
    "WorkflowDef",
    "WorkflowNotFound",
    "workflow",
]
