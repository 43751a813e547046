"""Tool calls served from a case's fixtures: the lane an eval runs every tool in.

It is an I1 lane backend, so the ToolRunner validates arguments and applies its replay rules as
in production; only the dispatch differs: the result recorded for (tool name, argument hash) is
returned (else the tool's fixture without arguments, if the case has one), nothing is
imported into a sandbox, no process starts and no side effect fires. A call with no fixture
raises FixtureMissing, which fails the case naming the tool and arguments.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tether.errors import FixtureMissing
from tether.foundation.evals.contract import ANY_ARGS, Fixture, digest
from tether.foundation.tools.contract import (
    Lane,
    LaneResult,
    PersistenceClass,
    ToolInvocation,
)


class FixtureLanes:
    """Every persistence class gets the same lane: a lookup in the fixtures."""

    def __init__(self, fixtures: Iterable[Fixture]) -> None:
        self._results = {f.key: f.result for f in fixtures}

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> FixtureLanes:
        return cls(options.get("fixtures", ()))

    def lane(self, persistence: PersistenceClass) -> Lane:
        return self

    async def run(self, invocation: ToolInvocation) -> LaneResult:
        name = invocation.tool.name
        for key in ((name, digest(invocation.args)), (name, ANY_ARGS)):
            if key in self._results:
                return LaneResult(value=json.dumps(self._results[key]))
        raise FixtureMissing(name, invocation.args)

    async def park(self, run_id: str) -> None:
        """No process to stop."""

    async def end_run(self, run_id: str) -> None:
        """Nothing kept for the run."""

    async def close(self) -> None:
        """Nothing started."""
