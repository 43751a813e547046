"""A served tether for the API and browser tests: the app over a fresh SQLite data dir, an
authenticator with a process-local key, and tokens for each role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tether import Tether
from tether.server.app import create_app
from tether.server.auth import Authenticator, for_tether

WORKFLOWS = [
    "tests.runtime.flows",
    "tests.receipts.agents",
    "tests.hitl.flows",
    "workflows.research_report",
]


@dataclass
class Served:
    tether: Tether
    auth: Authenticator
    client: TestClient

    def token(self, *roles: str, subject: str = "ana") -> str:
        return self.auth.provider.issue(subject, roles=roles)

    def as_role(self, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(*roles)}"}


@pytest.fixture
def served(make_tether: Callable[..., Tether]) -> Iterator[Served]:
    t = make_tether(workflows=WORKFLOWS)
    auth = for_tether(t)
    with TestClient(create_app(t, auth), raise_server_exceptions=False) as client:
        yield Served(t, auth, client)
    auth.close()


@pytest.fixture
def operator(served: Served) -> dict[str, str]:
    return served.as_role("operator")


@pytest.fixture
def viewer(served: Served) -> dict[str, str]:
    return served.as_role("viewer")
