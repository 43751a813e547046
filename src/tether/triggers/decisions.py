"""The ten decisions of the build-your-own agent stack (D1-D10), each as a query.

The seeds' rule is that a trigger is a query, not "we'll know it when we see it". Each function
here reads the `Evidence` and says, for one decision: the default, the condition that switches
it, what was measured and from which rows, and whether it fired. A part of a condition that no
row tether keeps can answer (an audit mandate, an SLA penalty, a licence preference) is named
as such in `why`, and never counted as "not fired": a decision with no measurable part at all
is `not measurable yet`.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from enum import StrEnum
from statistics import fmean

from pydantic import BaseModel, ConfigDict

from tether.foundation.checkpoint.contract import EntryKind, EntryStatus
from tether.foundation.limits.config import load_limits_config
from tether.foundation.models.config import DEFAULT_ROUTES
from tether.foundation.tools.contract import PersistenceClass
from tether.foundation.tools.registry import tools as TOOLS
from tether.settings import Settings
from tether.triggers.evidence import Evidence

MONTH = 30 * 24 * 3600.0
# Backend types whose models are a vendor's closed models; `openai` only when it points at
# OpenAI itself (with another `base_url` it is an OpenAI-compatible server: vLLM, Ollama...).
CLOSED_TYPES = frozenset({"anthropic", "openai"})
OFFLINE_TYPES = frozenset({"local", "scripted"})  # the demo's stand-ins: neither closed nor open
DECIDED = frozenset({"approved", "rejected", "edited"})  # history events a person caused


class State(StrEnum):
    FIRED = "fired"
    NOT_FIRED = "not fired"
    NOT_MEASURABLE = "not measurable yet"


class Trigger(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    decision: str
    default: str
    switch: str
    measured: str
    source: str
    state: State
    why: str


def evaluate(evidence: Evidence, settings: Settings) -> list[Trigger]:
    return [check(evidence, settings) for check in DECISIONS]


def d1_hitl_transport(ev: Evidence, settings: Settings) -> Trigger:
    personas = _personas(ev)
    unmeasured = "an audit mandate and Slack's rate limits are not in any table"
    base = {
        "id": "D1",
        "decision": "HITL transport",
        "default": "Slack",
        "switch": ">3 personas OR audit mandate OR Slack rate limit",
        "source": "I6 approval requests (approvers, escalation groups, deciders)",
    }
    if not ev.approvals:
        return _unmeasurable(
            base, "no approval requests", f"no run asked for approval in the window; {unmeasured}"
        )
    return Trigger(
        **base,
        measured=f"{len(personas)} personas ({', '.join(sorted(personas))}) over "
        f"{len(ev.approvals)} requests",
        state=State.FIRED if len(personas) > 3 else State.NOT_FIRED,
        why=f"personas {'>' if len(personas) > 3 else '<='} 3; {unmeasured}",
    )


def d2_trace_hosting(ev: Evidence, settings: Settings) -> Trigger:
    spans = len(ev.runs) + sum(len(j) for j in ev.journals.values())
    per_month = spans * MONTH / ev.seconds
    base = {
        "id": "D2",
        "decision": "Phoenix self-host vs cloud",
        "default": "cloud",
        "switch": ">10M spans/month OR compliance OR cloud bill >$2k/month",
        "source": "I2 runs and journal: one span per run and per journal entry",
    }
    unmeasured = "compliance and the trace vendor's bill are not in any table"
    if not ev.runs:
        return _unmeasurable(base, "no runs", f"no run in the window; {unmeasured}")
    return Trigger(
        **base,
        measured=f"{spans} spans in the window, {per_month:,.0f}/month at that rate",
        state=State.FIRED if per_month > 10_000_000 else State.NOT_FIRED,
        why=f"trace export configured: {settings.trace}; {unmeasured}",
    )


def d3_sandbox_lanes(ev: Evidence, settings: Settings) -> Trigger:
    restricted_runs = {c.run_id for c in ev.model_calls if c.sensitivity == "restricted"}
    workflows = sorted({ev.workflow_of[r] for r in restricted_runs})
    base = {
        "id": "D3",
        "decision": "Sandbox lane defaults",
        "default": "Daytona (persistent) + E2B (ephemeral)",
        "switch": "Tensorlake when the first HIPAA workflow appears; OpenComputer if Apache-2.0",
        "source": "I2 journal: model calls at sensitivity `restricted` (tether's HIPAA marker)",
    }
    unmeasured = "a licence preference (OpenComputer) is a policy, not a row"
    if not ev.model_calls:
        return _unmeasurable(base, "no model calls", f"no model call in the window; {unmeasured}")
    return Trigger(
        **base,
        measured=f"{len(workflows)} workflows send restricted data"
        + (f" ({', '.join(workflows)})" if workflows else ""),
        state=State.FIRED if workflows else State.NOT_FIRED,
        why=f"lanes configured: {_lanes(settings)}; {unmeasured}",
    )


def d4_engine(ev: Evidence, settings: Settings) -> Trigger:
    base = {
        "id": "D4",
        "decision": "WorkflowEngine timing",
        "default": "tether's own runtime (the seeds: LangGraph alone)",
        "switch": "a run longer than 24 h OR an SLA penalty OR cross-region failover",
        "source": "I2 runs (created to finished, or to now) and journal waits (sleep, event)",
    }
    unmeasured = "SLA penalties and failover needs are contracts, not rows"
    if not ev.runs:
        return _unmeasurable(base, "no runs", f"no run in the window; {unmeasured}")
    longest = max(ev.runs, key=ev.duration)
    waits = [
        (e.finished_at - e.started_at, e.run_id)
        for j in ev.journals.values()
        for e in j
        if e.kind in (EntryKind.SLEEP, EntryKind.EVENT) and e.finished_at >= e.started_at
    ]
    hours = ev.duration(longest) / 3600
    if waits:
        wait, wait_run = max(waits)
        waited = f"longest wait {_hours(wait / 3600)} ({wait_run})"
    else:
        waited = "no sleep or event wait"
    return Trigger(
        **base,
        measured=f"longest run {_hours(hours)} ({longest.id}, {longest.workflow_id}); {waited}",
        state=State.FIRED if hours > 24 else State.NOT_FIRED,
        why=f"engine in use: {settings.engine}; {unmeasured}",
    )


def d5_hitl_ui(ev: Evidence, settings: Settings) -> Trigger:
    reviewers: dict[str, set[str]] = defaultdict(set)
    for a in ev.approvals:
        reviewers[ev.workflow_of[a.run_id]] |= {
            *a.approvers,
            *(p for g in a.escalate_to for p in g),
        }
    distinct = len({frozenset(r) for r in reviewers.values()})
    base = {
        "id": "D5",
        "decision": "HITL UI",
        "default": "Slack bot + a minimal page (tether serve)",
        "switch": ">=3 workflows with distinct reviewers OR an external reviewer",
        "source": "I6 approval requests by workflow (I2 runs)",
    }
    unmeasured = "whether a reviewer is external is not recorded"
    if not ev.approvals:
        return _unmeasurable(
            base, "no approval requests", f"no run asked for approval in the window; {unmeasured}"
        )
    return Trigger(
        **base,
        measured=f"{len(reviewers)} workflows ask for approval, {distinct} distinct reviewer sets",
        state=State.FIRED if distinct >= 3 else State.NOT_FIRED,
        why=unmeasured,
    )


def d6_model_call_cap(ev: Evidence, settings: Settings) -> Trigger:
    limits = load_limits_config(settings)
    per_workflow: dict[str, list[int]] = defaultdict(list)
    for run_id, calls in ev.calls_per_run(EntryKind.MODEL).items():
        per_workflow[ev.workflow_of[run_id]].append(calls)
    capped = Counter(run.workflow for run in ev.runs if run.error and "BudgetExceeded" in run.error)
    base = {
        "id": "D6",
        "decision": "Per-workflow LLM-call cap",
        "default": f"{limits.model_call_cap} calls per run",
        "switch": "raise to 200 when runs reach the cap; lower to 25 when they use fewer than 10",
        "source": "I2 journal: model calls per finished run; runs stopped by BudgetExceeded",
    }
    if not per_workflow:
        return _unmeasurable(base, "no finished runs", "no run finished in the window")
    measured, moves = [], []
    for workflow, counts in sorted(per_workflow.items()):
        cap = limits.budget_for(workflow).model_call_cap
        p95 = _p95(counts)
        measured.append(f"{workflow} p95 {p95} of cap {cap} over {len(counts)} runs")
        if p95 >= cap or capped[workflow]:
            moves.append(f"raise {workflow} to 200")
        elif p95 < 10 and cap > 25:
            moves.append(f"lower {workflow} to 25")
    return Trigger(
        **base,
        measured="; ".join(measured),
        state=State.FIRED if moves else State.NOT_FIRED,
        why="; ".join(moves) or "every workflow's p95 is between 10 and its cap",
    )


def d7_tool_persistence(ev: Evidence, settings: Settings) -> Trigger:
    called = {
        e.name for j in ev.journals.values() for e in j
        if e.kind is EntryKind.TOOL and e.status is not EntryStatus.ATTEMPT
    }  # fmt: skip
    declared = {t.name: t.persistence for t in TOOLS if t.name in called}
    stateful = sorted(n for n, p in declared.items() if p is not PersistenceClass.EPHEMERAL)
    base = {
        "id": "D7",
        "decision": "Default persistence_class for new tools",
        "default": "ephemeral",
        "switch": "persistent_session when >50% of tools need cross-call state",
        "source": "I2 journal: tools called in the window, with the class each declares",
    }
    unknown = sorted(called - declared.keys())
    note = f"; not loaded here, not counted: {', '.join(unknown)}" if unknown else ""
    if not declared:
        return _unmeasurable(
            base, "no tool calls of a loaded tool", f"no tool called in the window{note}"
        )
    share = len(stateful) / len(declared)
    return Trigger(
        **base,
        measured=f"{len(stateful)} of {len(declared)} tools keep state ({share:.0%})"
        + (f": {', '.join(stateful)}" if stateful else ""),
        state=State.FIRED if share > 0.5 else State.NOT_FIRED,
        why=f"share {'>' if share > 0.5 else '<='} 50%{note}",
    )


def d8_database_split(ev: Evidence, settings: Settings) -> Trigger:
    writes: dict[str, Counter[int]] = defaultdict(Counter)
    for run in ev.runs:
        writes["I2 checkpoint"][int(run.created_at)] += 1
    for journal in ev.journals.values():
        for e in journal:
            second = int(e.finished_at or e.started_at)
            writes["I2 checkpoint"][second] += 1
            if e.kind is EntryKind.TOOL:
                writes["I1 tool results"][second] += 2  # the intent row, then its result
            elif e.kind is EntryKind.MODEL:
                writes["I11 cost"][second] += 1
    for a in ev.approvals:
        if a.created_at is not None:
            writes["I6 approvals"][int(a.created_at.timestamp())] += 1
    peaks = {iface: max(c.values()) for iface, c in writes.items() if c}
    base = {
        "id": "D8",
        "decision": "PostgreSQL single vs split",
        "default": "one database (every interface its own tables, no cross-interface FK)",
        "switch": "one interface over 1k requests/s OR operations on one block the others",
        "source": "I2 runs and journal timestamps, per interface whose rows they stand for",
    }
    unmeasured = "lock waits between interfaces are not recorded"
    if not peaks:
        return _unmeasurable(base, "no writes", f"no run in the window; {unmeasured}")
    top = max(peaks, key=lambda k: peaks[k])
    return Trigger(
        **base,
        measured="peak writes/s: " + ", ".join(f"{k} {v}" for k, v in sorted(peaks.items())),
        state=State.FIRED if peaks[top] > 1000 else State.NOT_FIRED,
        why=f"busiest: {top}; {unmeasured}",
    )


def d9_model_router(ev: Evidence, settings: Settings) -> Trigger:
    kinds = {c.backend: provider_kind(c.backend, settings) for c in ev.model_calls}
    closed = sorted(b for b, k in kinds.items() if k == "closed")
    open_weight = sorted(b for b, k in kinds.items() if k == "open")
    keyed = {key.partition(":")[2] for key in (*DEFAULT_ROUTES, *settings.model_routes)} - {""}
    routed = sorted({c.sensitivity for c in ev.model_calls} & keyed)
    base = {
        "id": "D9",
        "decision": "Default ModelRouter backend",
        "default": "one closed provider (Anthropic)",
        "switch": ">1 closed provider OR open-weight enabled OR sensitivity routing required",
        "source": "I2 journal: the backend each model call was routed to; model_routes keys",
    }
    if not ev.model_calls:
        return _unmeasurable(base, "no model calls", "no model call in the window")
    reasons = [
        *(["more than one closed provider"] if len(closed) > 1 else []),
        *(["open-weight backends in use"] if open_weight else []),
        *([f"calls routed by sensitivity ({', '.join(routed)})"] if routed else []),
    ]
    return Trigger(
        **base,
        measured=f"closed: {', '.join(closed) or 'none'}; open-weight: "
        f"{', '.join(open_weight) or 'none'}; sensitivity-routed: {', '.join(routed) or 'none'}",
        state=State.FIRED if reasons else State.NOT_FIRED,
        why="; ".join(reasons) or "one closed provider or fewer, no sensitivity route used",
    )


def d10_open_weight_share(ev: Evidence, settings: Settings) -> Trigger:
    base = {
        "id": "D10",
        "decision": "Open-weight share",
        "default": "0%; cheap_classify first",
        "switch": "an open-weight candidate within 2pp of the closed baseline on the golden set",
        "source": "I5 eval results: the latest eval run of each ref, by the routes it used",
    }
    latest: dict[tuple[str, str], str] = {}
    for r in ev.evals:  # newest first: the first eval run seen per (workflow, ref) is its latest
        latest.setdefault((r.workflow, r.ref), r.eval_run)
    scores: dict[tuple[str, str], list[float]] = defaultdict(list)
    open_refs: dict[tuple[str, str], bool] = {}
    for r in ev.evals:
        if latest[(r.workflow, r.ref)] == r.eval_run:
            scores[(r.workflow, r.ref)].append(r.score)
            backends = {route.partition("/")[0] for rs in r.config.routes.values() for route in rs}
            open_refs[(r.workflow, r.ref)] = any(
                provider_kind(b, settings) == "open" for b in backends
            )
    compared = []
    for workflow in sorted({w for w, _ in scores}):
        refs = [(ref, fmean(s)) for (w, ref), s in scores.items() if w == workflow]
        closed = [(ref, m) for ref, m in refs if not open_refs[(workflow, ref)]]
        candidates = [(ref, m) for ref, m in refs if open_refs[(workflow, ref)]]
        if closed and candidates:
            base_ref, base_mean = max(closed, key=lambda x: x[1])
            best_ref, best_mean = max(candidates, key=lambda x: x[1])
            compared.append((workflow, base_ref, best_ref, (base_mean - best_mean) * 100))
    if not compared:
        return _unmeasurable(
            base,
            "no open-weight candidate evaluated beside a baseline",
            "run `tether eval run --candidate` with an open-weight route",
        )
    within = [c for c in compared if c[3] <= 2.0]
    return Trigger(
        **base,
        measured="; ".join(
            f"{w}: {cand} is {delta:+.1f}pp below {b}" for w, b, cand, delta in compared
        ),
        state=State.FIRED if within else State.NOT_FIRED,
        why="within 2pp: " + ", ".join(w for w, *_ in within) if within else "every delta > 2pp",
    )


def provider_kind(backend: str, settings: Settings) -> str:
    """`closed`, `open` (open-weight or self-hosted) or `offline` (the demo's stand-ins), from
    the backend instance's configured type and, for `openai`, where it points."""
    config = settings.model_backends.get(backend, {})
    kind = str(config.get("type") or backend)
    if kind in OFFLINE_TYPES:
        return "offline"
    if kind in CLOSED_TYPES:
        url = str(config.get("base_url") or "")
        return "closed" if kind == "anthropic" or not url or "api.openai.com" in url else "open"
    return "open"


def _lanes(settings: Settings) -> str:
    lanes = settings.tools
    named = [f"{c.value} {lanes.lanes.get(c.value, lanes.default)}" for c in PersistenceClass]
    return ", ".join(named + [f"{tool} {lane}" for tool, lane in sorted(lanes.overrides.items())])


def _unmeasurable(base: dict[str, str], measured: str, why: str) -> Trigger:
    return Trigger(**base, measured=measured, state=State.NOT_MEASURABLE, why=why)


def _personas(ev: Evidence) -> set[str]:
    found: set[str] = set()
    for a in ev.approvals:
        found |= {*a.approvers, *(p for group in a.escalate_to for p in group)}
        found |= {h.by for h in a.history if h.event in DECIDED}
    return found


def _p95(values: Iterable[int]) -> int:
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def _hours(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.1f} min"


DECISIONS: tuple[Callable[[Evidence, Settings], Trigger], ...] = (
    d1_hitl_transport, d2_trace_hosting, d3_sandbox_lanes, d4_engine, d5_hitl_ui,
    d6_model_call_cap, d7_tool_persistence, d8_database_split, d9_model_router,
    d10_open_weight_share,
)  # fmt: skip
