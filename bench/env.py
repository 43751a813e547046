"""What one measurement knows about its surroundings, passed from the harness to the child.

The harness decides where data lives (a fresh directory on disk at default durability, on
tmpfs when fsync is off) and which servers exist; the adapter only asks for a SQLite path, a
fresh PostgreSQL database, or the Temporal address.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import postgres


@dataclass(frozen=True)
class Env:
    system: str  # e.g. "tether-sqlite"
    family: str  # "tether", "floor", "dbos", "langgraph", "temporal"
    backend: str  # "sqlite" or "postgres"
    option: str  # a family's variant, e.g. Temporal's "activity" or "local"; "" if none
    workload: str
    durable: bool  # False: fsync off (tmpfs / synchronous=OFF / synchronous_commit=off)
    workdir: str
    temporal_address: str = ""
    phoenix_url: str = ""  # a live Phoenix, for the tether-sqlite-phoenix row
    harness_pid: int = 0  # names this harness's PostgreSQL databases apart from another's

    @property
    def dir(self) -> Path:
        return Path(self.workdir)

    def sqlite_path(self, name: str = "bench") -> Path:
        return self.dir / f"{name}.db"

    @property
    def sqlite_synchronous(self) -> str:
        return "FULL" if self.durable else "OFF"

    def fresh_postgres(self) -> str:
        """A freshly recreated database for this family; its URL."""
        return postgres.fresh_database(f"bench_{self.family}_{self.harness_pid}")

    def dump(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def load(cls, text: str) -> Env:
        data: dict[str, Any] = json.loads(text)
        return cls(**data)
