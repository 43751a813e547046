"""child.py in a vendor's sandbox: what to upload, what to run, how to read the answer.

The sandbox's image must hold the tool's package (and tether) so `module:qualname` imports
there as it does on the worker; only child.py and the request are uploaded per call.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from tether.foundation.tools import child
from tether.foundation.tools.contract import LaneResult, ToolDef
from tether.foundation.tools.process import answer_result, exit_failure

CHILD_PATH = "/tmp/tether_child.py"


def child_source() -> bytes:
    return Path(child.__file__).read_bytes()


def request_path() -> str:
    return f"/tmp/tether-request-{uuid.uuid4().hex}.json"


def command(request_file: str) -> str:
    """Tool output on stderr is dropped: the answer line carries any error's message."""
    return f"python3 -P {CHILD_PATH} once < {request_file} 2>/dev/null"


def parse(stdout: str, exit_code: int, tool: ToolDef) -> LaneResult:
    for line in reversed(stdout.splitlines()):
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if isinstance(answer, dict) and "ok" in answer:
            return answer_result(answer)
    return LaneResult(failure=exit_failure(exit_code, tool.limits.cpu_seconds))
