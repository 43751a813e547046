"""The `tensorlake` lanes: tool calls in Tensorlake sandboxes (D3's lane for the first HIPAA
workflow).

- ephemeral: a fresh sandbox per call, terminated afterwards;
- persistent_session: one sandbox per run, found again by its name (`tether-run-<run>`); its
  disk is the session's state. `park` suspends it (a parked run holds no running machine), the
  next call resumes it, `end_run` terminates it;
- persistent_workspace: one sandbox per workspace name (`tether-ws-<name>`), kept across runs.

A sandbox's internet access is the tool's `network` (for a kept sandbox, that of the call that
created it). Each call uploads child.py and the request and runs one command; the image must
hold the tool's package. The SDK is imported here only, lazily; its errors become tether's
here: a refused key is a ConfigurationError, a failure before the command ran a plain one, a
failure after it may have run the tool, so it counts as interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
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

_NAMEABLE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def sandbox_name(prefix: str, key: str) -> str:
    """A sandbox name for a run id or a workspace: itself when Tensorlake takes it as a name,
    else a hash of it."""
    return (
        f"{prefix}-{key if _NAMEABLE.match(key) else hashlib.sha256(key.encode()).hexdigest()[:32]}"
    )


def _refused(e: Exception) -> bool:
    return getattr(e, "status_code", None) in (401, 403)


class TensorlakeLanes:
    """`client` is the SDK's `AsyncSandboxClient`, built from the settings."""

    def __init__(self, client: Any, image: str | None = None) -> None:
        self._client, self._image = client, image
        self._lanes: dict[PersistenceClass, Lane] = {
            PersistenceClass.EPHEMERAL: _SandboxLane(self, prefix=None),
            PersistenceClass.PERSISTENT_SESSION: _SandboxLane(self, prefix="tether-run"),
            PersistenceClass.PERSISTENT_WORKSPACE: _SandboxLane(self, prefix="tether-ws"),
        }

    @classmethod
    def from_settings(cls, settings: Any, **options: Any) -> TensorlakeLanes:
        extra = settings.model_extra or {}
        key = os.environ.get("TENSORLAKE_API_KEY") or extra.get("tensorlake_api_key")
        if not key:
            raise ConfigurationError(
                "the tensorlake lanes need a Tensorlake API key: set TENSORLAKE_API_KEY"
            )
        from tensorlake.sandbox import AsyncSandboxClient

        url = (
            os.environ.get("TENSORLAKE_API_URL")
            or extra.get("tensorlake_api_url")
            or "https://api.tensorlake.ai"
        )
        client = AsyncSandboxClient.for_cloud(api_key=key, api_url=url)
        return cls(client, image=extra.get("tensorlake_image"), **options)

    def lane(self, persistence: PersistenceClass) -> Lane:
        return self._lanes[persistence]

    async def park(self, run_id: str) -> None:
        from tensorlake.sandbox import SandboxNotFoundError, SandboxStatus

        name = sandbox_name("tether-run", run_id)
        with contextlib.suppress(SandboxNotFoundError):
            info = await self._client.get(name)
            if info.status == SandboxStatus.RUNNING:
                await self._client.suspend(name)

    async def end_run(self, run_id: str) -> None:
        from tensorlake.sandbox import SandboxNotFoundError

        with contextlib.suppress(SandboxNotFoundError):
            await self._client.delete(sandbox_name("tether-run", run_id))

    async def close(self) -> None:
        await self._client.close()

    async def create(self, name: str | None, network: bool, timeout_secs: int | None) -> Any:
        """A new sandbox, connected."""
        from tensorlake.sandbox import RemoteAPIError

        try:
            made = await self._client.create(
                image=self._image, name=name, allow_internet_access=network,
                timeout_secs=timeout_secs,
            )  # fmt: skip
        except RemoteAPIError as e:
            if _refused(e):
                raise ConfigurationError(f"Tensorlake refused the API key: {e}") from e
            raise
        return await self._client.connect(made.sandbox_id)

    async def named(self, name: str, network: bool) -> Any:
        """The sandbox kept under `name`, resumed if suspended, or a new one."""
        from tensorlake.sandbox import RemoteAPIError, SandboxNotFoundError, SandboxStatus

        try:
            info = await self._client.get(name)
        except SandboxNotFoundError:
            return await self.create(name, network, timeout_secs=None)
        except RemoteAPIError as e:
            if _refused(e):
                raise ConfigurationError(f"Tensorlake refused the API key: {e}") from e
            raise
        if info.status in (SandboxStatus.SUSPENDED, SandboxStatus.SUSPENDING):
            await self._client.resume(name)
        return await self._client.connect(name)


class _SandboxLane:
    """`prefix` None: a sandbox per call; else the one named for the run or workspace."""

    def __init__(self, backend: TensorlakeLanes, prefix: str | None) -> None:
        self._backend, self._prefix = backend, prefix

    async def _sandbox(self, invocation: ToolInvocation) -> Any:
        tool = invocation.tool
        if self._prefix is None:
            return await self._backend.create(None, tool.network, int(tool.timeout) + 60)
        key = invocation.run_id if self._prefix == "tether-run" else tool.workspace or ""
        return await self._backend.named(sandbox_name(self._prefix, key), tool.network)

    async def run(self, invocation: ToolInvocation) -> LaneResult:
        from tensorlake.sandbox import SandboxError

        tool = invocation.tool
        try:
            box = await self._sandbox(invocation)
        except SandboxError as e:
            return LaneResult(failure=ToolFailure(type="SandboxUnavailable", message=str(e)))
        try:
            try:
                path = request_path()
                await box.write_file(CHILD_PATH, child_source())
                await box.write_file(path, request(invocation))
            except SandboxError as e:
                return LaneResult(failure=ToolFailure(type="SandboxUnavailable", message=str(e)))
            try:
                done = await asyncio.wait_for(
                    box.run("sh", args=["-c", command(path)], timeout=tool.timeout), tool.timeout
                )
            except TimeoutError:
                return LaneResult(failure=timeout_failure(tool.timeout))
            except SandboxError as e:
                return LaneResult(failure=ToolFailure(
                    type="SandboxError", message=str(e), interrupted=True
                ))  # fmt: skip
            if done.timed_out:
                return LaneResult(failure=timeout_failure(tool.timeout))
            return parse(done.stdout, done.exit_code, tool)
        finally:
            if self._prefix is None:
                await box.terminate()
            else:
                box.close()
