"""The `opencomputer` lanes: tool calls in OpenComputer sandboxes (VMs that hibernate).

- ephemeral: a fresh sandbox per call, killed afterwards;
- persistent_session: one sandbox per run; its disk is the session's state. `park` hibernates
  it (a parked run holds no running machine), the next call wakes it, `end_run` kills it;
- persistent_workspace: one sandbox per workspace name, kept across runs.

OpenComputer names a sandbox by an id it picks, and its SDK cannot look one up by metadata, so
the id of a run's or a workspace's sandbox is kept in `<data dir>/tools/opencomputer/`: a
worker restarted on the same data directory finds it again. A sandbox reaches the network
whatever a tool declares (OpenComputer's egress allowlist belongs to a secret store, not to a
sandbox). Each call uploads child.py and the request and runs one command; the template must
hold the tool's package. The SDK (httpx underneath) is imported here only, lazily; its errors
become tether's here: a refused key is a ConfigurationError, a failure before the command ran
a plain one, a failure after it may have run the tool, so it counts as interrupted.
"""

from __future__ import annotations

import asyncio
import math
import os
from pathlib import Path
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

_HIBERNATED = "hibernated"


class OpenComputerLanes:
    def __init__(
        self, api_key: str, ids: Path, api_url: str | None = None, template: str = "base"
    ) -> None:
        self._key, self._url, self._template, self._ids = api_key, api_url, template, ids
        self._lanes: dict[PersistenceClass, Lane] = {
            PersistenceClass.EPHEMERAL: _SandboxLane(self, kind=None),
            PersistenceClass.PERSISTENT_SESSION: _SandboxLane(self, kind="run"),
            PersistenceClass.PERSISTENT_WORKSPACE: _SandboxLane(self, kind="workspace"),
        }

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> OpenComputerLanes:
        extra = settings.model_extra or {}
        key = os.environ.get("OPENCOMPUTER_API_KEY") or extra.get("opencomputer_api_key")
        if not key:
            raise ConfigurationError(
                "the opencomputer lanes need an OpenComputer API key: set OPENCOMPUTER_API_KEY"
            )
        import opencomputer  # noqa: F401  (a missing SDK fails here, at start-up)

        url = os.environ.get("OPENCOMPUTER_API_URL") or extra.get("opencomputer_api_url")
        ids = settings.ensure_data_dir() / "tools" / "opencomputer"
        template = extra.get("opencomputer_template") or "base"
        return cls(key, ids, api_url=url, template=template, **options)

    def lane(self, persistence: PersistenceClass) -> Lane:
        return self._lanes[persistence]

    async def park(self, run_id: str) -> None:
        box = await self._existing("run", run_id)
        if box is not None:
            try:
                if box.status != _HIBERNATED:
                    await box.hibernate()
            finally:
                await box.close()

    async def end_run(self, run_id: str) -> None:
        box = await self._existing("run", run_id)
        if box is not None:
            try:
                await box.kill()
            finally:
                await box.close()
            self._id_file("run", run_id).unlink(missing_ok=True)

    async def close(self) -> None:
        pass  # every sandbox handle is closed after its call

    async def create(self, metadata: dict[str, str]) -> Any:
        from httpx import HTTPStatusError
        from opencomputer import Sandbox

        try:
            return await Sandbox.create(
                template=self._template, api_key=self._key, api_url=self._url, metadata=metadata
            )
        except HTTPStatusError as e:
            if e.response.status_code in (401, 403):
                raise ConfigurationError(f"OpenComputer refused the API key: {e}") from e
            raise

    async def sandbox(self, kind: str, name: str, metadata: dict[str, str]) -> Any:
        """The sandbox kept for (kind, name), woken if hibernated, or a new one."""
        box = await self._existing(kind, name)
        if box is None:
            box = await self.create(metadata)
            path = self._id_file(kind, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(box.sandbox_id)
        elif box.status == _HIBERNATED:
            await box.wake()
        return box

    def _id_file(self, kind: str, name: str) -> Path:
        return self._ids / f"{kind}-{dir_name(name)}"

    async def _existing(self, kind: str, name: str) -> Any | None:
        from httpx import HTTPStatusError
        from opencomputer import Sandbox

        path = self._id_file(kind, name)
        if not path.exists():
            return None
        try:
            return await Sandbox.connect(path.read_text(), api_key=self._key, api_url=self._url)
        except HTTPStatusError as e:
            if e.response.status_code != 404:
                raise
            path.unlink(missing_ok=True)  # gone (killed elsewhere, expired): start afresh
            return None


class _SandboxLane:
    """`kind` None: a sandbox per call; "run" or "workspace": the one kept for that name."""

    def __init__(self, backend: OpenComputerLanes, kind: str | None) -> None:
        self._backend, self._kind = backend, kind

    async def _sandbox(self, invocation: ToolInvocation) -> Any:
        metadata = {"tether_run": invocation.run_id, "tether_step": invocation.step_id}
        if self._kind is None:
            return await self._backend.create(metadata)
        if self._kind == "run":
            return await self._backend.sandbox("run", invocation.run_id, metadata)
        workspace = invocation.tool.workspace or ""
        return await self._backend.sandbox("workspace", workspace, {"tether_workspace": workspace})

    async def run(self, invocation: ToolInvocation) -> LaneResult:
        from httpx import HTTPError, TimeoutException

        tool = invocation.tool
        try:
            box = await self._sandbox(invocation)
        except HTTPError as e:
            return LaneResult(failure=ToolFailure(type="SandboxUnavailable", message=str(e)))
        try:
            try:
                path = request_path()
                await box.files.write(CHILD_PATH, child_source())
                await box.files.write(path, request(invocation))
            except HTTPError as e:
                return LaneResult(failure=ToolFailure(type="SandboxUnavailable", message=str(e)))
            try:
                # the wall timeout is kept here too: what the service does at its own is unsaid
                done = await asyncio.wait_for(
                    box.exec.run(command(path), timeout=math.ceil(tool.timeout)), tool.timeout
                )
            except (TimeoutError, TimeoutException):
                return LaneResult(failure=timeout_failure(tool.timeout))
            except HTTPError as e:
                return LaneResult(failure=ToolFailure(
                    type="SandboxError", message=str(e), interrupted=True
                ))  # fmt: skip
            return parse(done.stdout, done.exit_code, tool)
        finally:
            if self._kind is None:
                await box.kill()
            await box.close()
