"""tether: durable, observable background agents on stable interfaces with swappable backends."""

from tether.client import RunView, Tether
from tether.errors import (
    BudgetExceeded,
    BudgetPaused,
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
    ToolFailed,
    UnsafeReplayError,
    WorkflowNotFound,
)
from tether.foundation.checkpoint.contract import RunRecord, RunStatus
from tether.foundation.models.contract import Message, ModelResponse, Sensitivity, ToolCall
from tether.foundation.tools.contract import PersistenceClass, ReplayClass
from tether.foundation.tools.decorator import tool
from tether.runtime.context import Context
from tether.runtime.registry import WorkflowDef, workflow
from tether.runtime.retry import RetryPolicy
from tether.settings import Settings

__all__ = [
    "BudgetExceeded",
    "BudgetPaused",
    "ChildFailed",
    "ConfigurationError",
    "Context",
    "CrossFamilyJudgeError",
    "DatabaseUnavailable",
    "GuardError",
    "IdentityError",
    "InvalidInput",
    "LoopDetected",
    "Message",
    "ModelError",
    "ModelResponse",
    "NonDeterminismError",
    "NonRetryableError",
    "PersistenceClass",
    "PolicyDenied",
    "RateLimited",
    "ReplayClass",
    "RetryPolicy",
    "RunNotFound",
    "RunRecord",
    "RunStateError",
    "RunStatus",
    "RunView",
    "Sensitivity",
    "Settings",
    "StepFailed",
    "Tether",
    "TetherError",
    "ToolArgumentError",
    "ToolCall",
    "ToolFailed",
    "UnsafeReplayError",
    "WorkflowDef",
    "WorkflowNotFound",
    "tool",
    "workflow",
]
