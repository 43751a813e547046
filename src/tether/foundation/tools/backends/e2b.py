"""The `e2b` lanes: each ephemeral tool call in a fresh E2B sandbox, killed afterwards.

The SDK is imported here only, lazily; its exceptions become tether's at this boundary (a bad
key is a ConfigurationError; a sandbox that fails before the command ran is a plain failure;
one that fails after may have run the tool, so it counts as interrupted). E2B has no
persistent lanes: persistent tools need `daytona` or a local backend.
"""

from __future__ import annotations

import os
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
from tether.foundation.tools.process import request, timeout_failure

# Time a sandbox may live beyond the tool's own timeout (start, upload, answer).
_SANDBOX_SLACK = 60


class E2BLanes:
    def __init__(self, api_key: str, template: str | None = None) -> None:
        self._api_key, self._template = api_key, template
        self._ephemeral = _EphemeralLane(self)

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> E2BLanes:
        extra = settings.model_extra or {}
        key = os.environ.get("E2B_API_KEY") or extra.get("e2b_api_key")
        if not key:
            raise ConfigurationError(
                "tools = 'e2b' needs an E2B API key: set E2B_API_KEY, or set tools = 'local'"
            )
        return cls(key, template=extra.get("e2b_template"), **options)

    def lane(self, persistence: PersistenceClass) -> Lane:
        if persistence is not PersistenceClass.EPHEMERAL:
            raise ConfigurationError(
                f"the e2b backend runs ephemeral tools only, not {persistence.value} ones: "
                f"map [tools.lanes] {persistence.value} to another backend (daytona, "
                "opencomputer, tensorlake, local)"
            )
        return self._ephemeral

    async def park(self, run_id: str) -> None:
        pass  # every sandbox is killed when its call ends

    async def end_run(self, run_id: str) -> None:
        pass

    async def close(self) -> None:
        pass


class _EphemeralLane:
    def __init__(self, backend: E2BLanes) -> None:
        self._backend = backend

    async def run(self, invocation: ToolInvocation) -> LaneResult:
        from e2b import (
            AsyncSandbox,
            AuthenticationException,
            CommandExitException,
            SandboxException,
            TimeoutException,
        )

        tool, b = invocation.tool, self._backend
        try:
            sandbox = await AsyncSandbox.create(
                template=b._template, api_key=b._api_key, allow_internet_access=tool.network,
                timeout=int(tool.timeout) + _SANDBOX_SLACK,
                metadata={"tether_run": invocation.run_id, "tether_step": invocation.step_id},
            )  # fmt: skip
        except AuthenticationException as e:
            raise ConfigurationError(f"E2B refused the API key: {e}") from e
        except SandboxException as e:
            return LaneResult(failure=ToolFailure(type="SandboxUnavailable", message=str(e)))
        try:
            path = request_path()
            try:
                await sandbox.files.write(CHILD_PATH, child_source())
                await sandbox.files.write(path, request(invocation))
            except SandboxException as e:
                return LaneResult(failure=ToolFailure(type="SandboxUnavailable", message=str(e)))
            try:
                done = await sandbox.commands.run(command(path), timeout=tool.timeout)
            except CommandExitException as e:
                done = e
            except TimeoutException:
                return LaneResult(failure=timeout_failure(tool.timeout))
            except SandboxException as e:
                return LaneResult(failure=ToolFailure(
                    type="SandboxError", message=str(e), interrupted=True
                ))  # fmt: skip
            return parse(done.stdout, done.exit_code, tool)
        finally:
            await sandbox.kill()
