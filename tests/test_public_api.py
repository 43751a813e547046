"""The public API is what `tether/__init__.py` exports; changing it is a decision, not drift.

The top level holds what a workflow author writes every day; every error lives in
`tether.errors`, and only the one a workflow raises itself is also at the top."""

from __future__ import annotations

import tether
import tether.errors

PUBLIC = {
    "Context",
    "Debounce",
    "Message",
    "ModelResponse",
    "NonRetryableError",
    "PersistenceClass",
    "Queue",
    "ReplayClass",
    "RetryPolicy",
    "RunRecord",
    "RunStatus",
    "RunView",
    "Sensitivity",
    "Settings",
    "Tether",
    "Throttle",
    "ToolCall",
    "WorkflowDef",
    "tool",
    "workflow",
}


def test_public_api_is_pinned() -> None:
    assert set(tether.__all__) == PUBLIC
    assert all(hasattr(tether, name) for name in PUBLIC)


def test_the_top_level_re_exports_no_error_but_the_one_a_workflow_raises() -> None:
    top_errors = {
        name
        for name in tether.__all__
        if isinstance(getattr(tether, name), type)
        and issubclass(getattr(tether, name), BaseException)
    }
    assert top_errors == {"NonRetryableError"}
    assert tether.NonRetryableError is tether.errors.NonRetryableError
