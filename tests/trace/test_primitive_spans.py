"""One span per primitive (step, gather, sleep, event wait, child invoke, tool and model call),
each once however often the run is replayed, all in the run tree's one trace; guard decisions
ride on the span of the call they judged, with secrets struck out."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tether import RunStatus, Tether
from tether.foundation.secrets.redaction import REDACTOR
from tether.foundation.trace.contract import Span, trace_id_for

FLOWS = ["tests.runtime.flows", "tests.trace.flows"]


def by_name(spans: list[Span]) -> dict[str, Span]:
    return {s.name: s for s in spans}


def test_every_primitive_has_one_span_however_often_the_run_is_replayed(
    make_tether: Callable[..., Tether],
) -> None:
    t = make_tether("sqlite", workflows=FLOWS)
    run_id = t.start("every_primitive", {"nap": 0.05})
    stop = threading.Event()
    at_event = lambda _run: any(e.kind == "invoke" for e in t.journal(run_id))  # noqa: E731
    t.run(run_id, stop=stop, on_wait=lambda run: stop.set() if at_event(run) else None)
    time.sleep(0.3)  # the event wait's span must cover this
    t.send_event("trace_answer", {"to": run_id, "n": 5})
    run = t.run(run_id)
    assert run.status is RunStatus.COMPLETED and t.output(run) == {"total": 29}
    assert t.status(run_id).claims >= 4  # parked at both naps, the child and the event

    spans = t.sink.spans  # type: ignore[attr-defined]
    assert Counter(s.name for s in spans) == Counter(
        ["run every_primitive", "step first", "gather", "step branch 0", "step branch 1",
         "sleep branch nap 0", "sleep branch nap 1", "invoke trace_child", "run trace_child",
         "step inside", "sleep child nap", "event answer", "step last"]
    )  # fmt: skip
    assert {s.trace_id for s in spans} == {trace_id_for(run_id)}  # the child too
    s = by_name(spans)
    root = s["run every_primitive"]
    parents = {name: s[name].parent_span_id for name in s}
    assert parents["run every_primitive"] is None
    for name in ("step first", "gather", "invoke trace_child", "event answer", "step last"):
        assert parents[name] == root.span_id, name
    for name in ("step branch 0", "step branch 1", "sleep branch nap 0", "sleep branch nap 1"):
        assert parents[name] == s["gather"].span_id, name
    assert parents["run trace_child"] == s["invoke trace_child"].span_id
    assert parents["step inside"] == parents["sleep child nap"] == s["run trace_child"].span_id

    def seconds(span: Span) -> float:
        return (span.end_ns - span.start_ns) / 1e9

    # a wait's span runs from the park to the wake, not the instant of delivery
    assert seconds(s["sleep branch nap 0"]) >= 0.05 and seconds(s["sleep child nap"]) >= 0.05
    assert seconds(s["event answer"]) >= 0.3
    inside = [s[n] for n in ("step branch 0", "step branch 1", "sleep branch nap 1")]
    assert s["gather"].start_ns <= min(c.start_ns for c in inside)
    assert s["gather"].end_ns == max(c.end_ns for c in inside)
    child, invoke = s["run trace_child"], s["invoke trace_child"]
    # the child's run span ends when its worker has committed its end, which journals the
    # invoke's result in the same transaction: a moment after the invoke's end, never before
    assert invoke.start_ns <= child.start_ns and 0 <= child.end_ns - invoke.end_ns < 100_000_000


def test_primitives_passed_to_gather_directly_hang_under_its_span_once(
    make_tether: Callable[..., Tether],
) -> None:
    t = make_tether("sqlite", workflows=FLOWS)
    run_id = t.start("direct_gather", {"nap": 0.05})
    run = t.run(run_id)
    assert run.status is RunStatus.COMPLETED and t.output(run) == {"total": 7}
    assert t.status(run_id).claims >= 2  # parked at the nap, the gather replayed
    spans = t.sink.spans  # type: ignore[attr-defined]
    assert Counter(s.name for s in spans) == Counter(
        ["run direct_gather", "step first", "gather", "step a", "sleep nap", "step b",
         "step last"]
    )  # fmt: skip
    s = by_name(spans)
    for name in ("step a", "sleep nap", "step b"):
        assert s[name].parent_span_id == s["gather"].span_id, name
    assert s["gather"].parent_span_id == s["run direct_gather"].span_id
    assert s["gather"].start_ns <= s["step a"].start_ns
    assert s["gather"].end_ns == s["sleep nap"].end_ns  # the nap settled it


def test_policy_and_budget_decisions_are_events_on_the_call_they_judged(
    make_tether: Callable[..., Tether], tmp_path: Path
) -> None:
    REDACTOR.register("hunter2-in-a-rule")
    rules = tmp_path / "policy.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: no-deletes\n"
        "    effect: deny\n"
        "    reason: not even with hunter2-in-a-rule\n"
        "    tool: 'trace_delete'\n"
    )
    t = make_tether("sqlite", workflows=FLOWS, policy={"rules": str(rules)})
    run = t.run(t.start("guarded", {}))
    assert run.status is RunStatus.COMPLETED and t.output(run) == {"total": 103}
    s = by_name(t.sink.spans)  # type: ignore[attr-defined]

    allowed, denied = s["tool trace_add"], s["tool trace_delete"]
    assert [e.name for e in allowed.events] == ["policy allow", "budget allow"]
    policy, budget = (e.attributes for e in allowed.events)
    assert policy["tether.guard"] == "policy" and policy["tether.guard.outcome"] == "allow"
    assert budget["tether.guard.rule"] == "cost_cap" and "spent $" in budget["tether.guard.reason"]
    assert all(allowed.start_ns <= e.time_ns <= allowed.end_ns for e in allowed.events)

    assert denied.status == "error"
    ((name, _, why),) = [(e.name, e.time_ns, e.attributes) for e in denied.events]
    assert name == "policy deny" and why["tether.guard.rule"] == "no-deletes"
    assert why["tether.guard.reason"] == "not even with ***"  # the secret never reaches a sink
