"""The `daytona` lanes: persistent tools in Daytona sandboxes that outlive a call.

- persistent_session: one sandbox per run (named `tether-run-<run>`); its filesystem is the
  session's state. `park` stops it (a parked run holds no running machine), the next call
  starts it again, `end_run` deletes it.
- persistent_workspace: one sandbox per workspace name (`tether-ws-<name>`), kept across runs.

Each call uploads child.py and the request and runs one process; the sandbox's image must hold
the tool's package. Each call, park and end opens a client of its own and closes it after: the
SDK's HTTP session belongs to the event loop it was opened on, and a worker's threads (and its
shutdown) each run their own. The SDK is imported here only, lazily; its errors become tether's
here: a refused key is a ConfigurationError, a failure before the command ran a plain one, a
failure after it may have run the tool, so it counts as interrupted. Daytona has no ephemeral
lane: use `e2b` or a local backend for those.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tether.errors import ConfigurationError
from tether.foundation.tools.backends._remote import (
    CHILD_PATH,
    child_source,
    command,
    parse,
    request_path,
)
from tether.foundation.tools.contract import (
    Lane,
    LaneResult,
    PersistenceClass,
    ToolFailure,
    ToolInvocation,
)
from tether.foundation.tools.local import dir_name
from tether.foundation.tools.process import request, timeout_failure


def _session_name(run_id: str) -> str:
    return f"tether-run-{dir_name(run_id)}"


class DaytonaLanes:
    """`config` is the SDK's `DaytonaConfig`: where the API is and the key to it."""

    def __init__(self, config: Any, snapshot: str | None = None) -> None:
        self._config, self._snapshot = config, snapshot
        self._lanes: dict[PersistenceClass, _SandboxLane] = {
            PersistenceClass.PERSISTENT_SESSION: _SandboxLane(self, per_run=True),
            PersistenceClass.PERSISTENT_WORKSPACE: _SandboxLane(self, per_run=False),
        }

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> DaytonaLanes:
        extra = settings.model_extra or {}
        key = os.environ.get("DAYTONA_API_KEY") or extra.get("daytona_api_key")
        if not key:
            raise ConfigurationError(
                "tools = 'daytona' needs a Daytona API key: set DAYTONA_API_KEY, "
                "or set tools = 'local'"
            )
        from daytona import DaytonaConfig

        url = os.environ.get("DAYTONA_API_URL") or extra.get("daytona_api_url")
        config = DaytonaConfig(api_key=key, api_url=url)
        return cls(config, snapshot=extra.get("daytona_snapshot"), **options)

    def lane(self, persistence: PersistenceClass) -> Lane:
        if persistence not in self._lanes:
            raise ConfigurationError(
                "the daytona backend runs persistent tools only, not ephemeral ones: "
                "map [tools.lanes] ephemeral to another backend (e2b, opencomputer, tensorlake, "
                "local)"
            )
        return self._lanes[persistence]

    async def park(self, run_id: str) -> None:
        async with self.client() as client:
            box = await _existing(client, _session_name(run_id))
            if box is not None:
                await box.stop()

    async def end_run(self, run_id: str) -> None:
        async with self.client() as client:
            box = await _existing(client, _session_name(run_id))
            if box is not None:
                await box.delete()

    async def close(self) -> None:
        pass  # every client is closed after its call

    @asynccontextmanager
    async def client(self) -> AsyncIterator[Any]:
        from daytona import AsyncDaytona

        async with AsyncDaytona(self._config) as client:
            yield client

    async def sandbox(self, client: Any, name: str, labels: dict[str, str], network: bool) -> Any:
        """The named sandbox, created if absent and started if stopped."""
        from daytona import CreateSandboxFromSnapshotParams, SandboxState

        box = await _existing(client, name)
        if box is None:
            params = CreateSandboxFromSnapshotParams(
                name=name, labels=labels, network_block_all=not network, snapshot=self._snapshot
            )
            return await client.create(params)
        if box.state != SandboxState.STARTED:
            await box.start()
        return box


async def _existing(client: Any, name: str) -> Any | None:
    from daytona import DaytonaNotFoundError

    try:
        return await client.get(name)
    except DaytonaNotFoundError:
        return None


class _SandboxLane:
    def __init__(self, backend: DaytonaLanes, per_run: bool) -> None:
        self._backend, self._per_run = backend, per_run

    def _name(self, invocation: ToolInvocation) -> tuple[str, dict[str, str]]:
        if self._per_run:
            return _session_name(invocation.run_id), {"tether_run": invocation.run_id}
        workspace = invocation.tool.workspace or ""
        return f"tether-ws-{workspace}", {"tether_workspace": workspace}

    async def run(self, invocation: ToolInvocation) -> LaneResult:
        async with self._backend.client() as client:
            return await self._run(client, invocation)

    async def _run(self, client: Any, invocation: ToolInvocation) -> LaneResult:
        from daytona import (
            DaytonaAuthenticationError,
            DaytonaError,
            DaytonaForbiddenError,
            DaytonaTimeoutError,
        )

        tool = invocation.tool
        name, labels = self._name(invocation)
        try:
            box = await self._backend.sandbox(client, name, labels, tool.network)
            path = request_path()
            await box.fs.upload_file(child_source(), CHILD_PATH)
            await box.fs.upload_file(request(invocation), path)
        except (DaytonaAuthenticationError, DaytonaForbiddenError) as e:
            raise ConfigurationError(f"Daytona refused the API key: {e}") from e
        except DaytonaError as e:
            return LaneResult(failure=ToolFailure(type="SandboxUnavailable", message=str(e)))
        try:
            done = await box.process.exec(command(path), timeout=math.ceil(tool.timeout))
        except DaytonaTimeoutError:
            return LaneResult(failure=timeout_failure(tool.timeout))
        except DaytonaError as e:
            return LaneResult(failure=ToolFailure(
                type="SandboxError", message=str(e), interrupted=True
            ))  # fmt: skip
        return parse(done.result, done.exit_code, tool)
