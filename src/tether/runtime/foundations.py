"""`Foundations`: the interfaces behind `ctx.tool` and `ctx.model`, assembled from settings.

One per client, shared by the executions its worker drives (and by the client's own lifecycle
calls: identity, cost, tool resolution). The runtime reaches I1, I6, I7, I8, I9/I10, I11 and I12
only through it, and this is the one place they are built.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tether.foundation.blobs.contract import BlobStore
from tether.foundation.cost.attributor import CostAttributor
from tether.foundation.guards.chain import GuardChain
from tether.foundation.hitl.config import open_hitl, open_transports
from tether.foundation.hitl.contract import ApprovalTransport, HITLBroker
from tether.foundation.identity.config import open_identity
from tether.foundation.identity.contract import IdentityProvider
from tether.foundation.limits.config import open_limits
from tether.foundation.limits.guard import LimitsGuard
from tether.foundation.models.router import ModelRouter
from tether.foundation.policy.config import open_policy
from tether.foundation.secrets.config import open_secrets
from tether.foundation.secrets.contract import SecretsProvider
from tether.foundation.tools.runner import ToolRunner


class Foundations:
    """The interfaces behind tools and models, each built from settings on first use (a
    workflow that never calls a model never loads the router's backends)."""

    def __init__(self, settings: Any, blobs: BlobStore) -> None:
        self.settings, self.blobs = settings, blobs
        self._lock = threading.RLock()  # one foundation is built from another (I8 from I7)
        self._built: dict[str, Any] = {}
        self._leases: dict[str, float] = {}  # run id -> until when this process holds it
        # The heartbeat thread's, never held while a foundation is built (importing a vendor
        # SDK takes seconds under load, and a heartbeat must not wait that long)
        self._leases_lock = threading.Lock()

    def lease_renewed(self, run_id: str, until: float) -> None:
        """The run is held until `until` (time.monotonic()); I1 stops its tool processes then
        unless renewed. Kept here too, for a runner built during the lease."""
        with self._leases_lock:
            self._leases[run_id] = until
        runner: ToolRunner | None = self._built.get("tools")
        if runner is not None:
            runner.lease_renewed(run_id, until)

    def lease_lost(self, run_id: str) -> None:
        """Another worker may hold the run now: I1 stops its tool processes at once."""
        with self._leases_lock:
            self._leases.pop(run_id, None)
        runner: ToolRunner | None = self._built.get("tools")
        if runner is not None:
            runner.lease_lost(run_id)

    def lease_released(self, run_id: str) -> None:
        with self._leases_lock:
            self._leases.pop(run_id, None)

    def _get(self, name: str, build: Any) -> Any:
        built = self._built.get(name)  # every call asks for some: no lock once it is built
        if built is not None:
            return built
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            return self._built[name]

    @property
    def tools(self) -> ToolRunner:
        runner: ToolRunner = self._get("tools", self._tool_runner)
        return runner

    def _tool_runner(self) -> ToolRunner:
        runner = ToolRunner.from_settings(self.settings, self.blobs)
        with self._leases_lock:
            leases = list(self._leases.items())
        for run_id, until in leases:
            runner.lease_renewed(run_id, until)
        return runner

    @property
    def models(self) -> ModelRouter:
        router: ModelRouter = self._get("models", lambda: ModelRouter.from_settings(self.settings))
        return router

    @property
    def cost(self) -> CostAttributor:
        cost: CostAttributor = self._get(
            "cost", lambda: CostAttributor.from_settings(self.settings)
        )
        return cost

    @property
    def secrets(self) -> SecretsProvider:
        provider: SecretsProvider = self._get("secrets", lambda: open_secrets(self.settings))
        return provider

    @property
    def identity(self) -> IdentityProvider:
        provider: IdentityProvider = self._get(
            "identity", lambda: open_identity(self.settings, self.secrets)
        )
        return provider

    @property
    def hitl(self) -> HITLBroker:
        broker: HITLBroker = self._get("hitl", lambda: open_hitl(self.settings))
        return broker

    @property
    def hitl_transports(self) -> dict[str, ApprovalTransport]:
        transports: dict[str, ApprovalTransport] = self._get(
            "hitl_transports", lambda: open_transports(self.settings)
        )
        return transports

    @property
    def guards(self) -> GuardChain:
        chain: GuardChain = self._get("guards", self._guard_chain)
        return chain

    @property
    def limits(self) -> LimitsGuard:
        """I10: the chain's budgets and rate limits; also what `budget raise` and `inspect` ask."""
        guard: LimitsGuard = self._get("limits", lambda: open_limits(self.settings))
        return guard

    def _guard_chain(self) -> GuardChain:
        """I9's policy gate, then I10's limits (`[policy]`, `[limits]`), audited to I9's log."""
        gate, audit = open_policy(self.settings)
        return GuardChain([gate, self.limits], audit)

    def built(self, name: str) -> Any | None:
        return self._built.get(name)

    def close(self) -> None:
        with self._lock:
            built, self._built = self._built, {}
        if "tools" in built:
            asyncio.run(built["tools"].close())
        if "models" in built:
            asyncio.run(built["models"].aclose())
        if "cost" in built:
            built["cost"].close()
        if "limits" in built:
            built["limits"].store.close()
        if "hitl" in built:
            built["hitl"].close()
        for transport in built.get("hitl_transports", {}).values():
            transport.close()
