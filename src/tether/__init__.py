"""tether: durable, observable background agents on stable interfaces with swappable backends.

The top level is what a workflow author writes every day: the decorators, the context and
its messages, the client and its settings, the replay and retry vocabulary. Every error is in
`tether.errors` (its docstring draws the hierarchy); `NonRetryableError`, the one a workflow
raises itself, is also here.
"""

from tether.client import RunView, Tether
from tether.errors import NonRetryableError
from tether.foundation.checkpoint.contract import RunRecord, RunStatus
from tether.foundation.checkpoint.queues import Queue
from tether.foundation.checkpoint.starts import Debounce, Throttle
from tether.foundation.models.contract import Message, ModelResponse, Sensitivity, ToolCall
from tether.foundation.tools.contract import PersistenceClass, ReplayClass
from tether.foundation.tools.decorator import tool
from tether.runtime.context import Context
from tether.runtime.registry import WorkflowDef, workflow
from tether.runtime.retry import RetryPolicy
from tether.settings import Settings

__all__ = [
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
]
