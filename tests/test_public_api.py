"""The public API is what `tether/__init__.py` exports; changing it is a decision, not drift."""

from __future__ import annotations

import tether

PUBLIC = {
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
    "BudgetPaused",
    "ToolFailed",
    "Message",
    "ModelResponse",
    "Sensitivity",
    "ToolCall",
    "PersistenceClass",
    "ReplayClass",
    "tool",
}


def test_public_api_is_pinned() -> None:
    assert set(tether.__all__) == PUBLIC
    assert all(hasattr(tether, name) for name in PUBLIC)
