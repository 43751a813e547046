"""A case's waits answered from its recording: the events and approvals the captured run
received are served to the replayed run as it parks, so a case that waited for a person runs
to its end unattended.

The eval's own checkpointer (in memory) answers a wait it has an answer for at the moment the
run parks on it, the way any checkpointer resolves a wait that can be satisfied at once: the
event is stored and its consumption journaled in the same call, and the run goes on holding its
lease. An approval is decided on the eval's I6 broker first, so the decision the run reads, and
that a gated tool call consumes, is a real one for this run's request.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

from tether.foundation.checkpoint.contract import JournalEntry, Wait, WaitKind
from tether.foundation.checkpoint.events import event_entry
from tether.foundation.checkpoint.memory.checkpointer import MemoryCheckpointer
from tether.foundation.evals.contract import CaseAnswer
from tether.foundation.hitl.contract import APPROVAL_EVENT, Approver, HITLBroker, Verdict


class AnsweringCheckpointer(MemoryCheckpointer):
    def __init__(self, answers: Sequence[CaseAnswer], hitl: HITLBroker, **options: Any) -> None:
        super().__init__(**options)
        self._answers: dict[str, deque[Any]] = defaultdict(deque)
        for a in answers:
            self._answers[a.wait].append(a.data)
        self._hitl, self._answering = hitl, threading.Lock()

    def park(
        self, run_id: str, token: str, waits: Sequence[Wait], entries: Sequence[JournalEntry] = ()
    ) -> list[JournalEntry]:
        answered: list[JournalEntry] = []
        with self._answering:
            for w in waits:
                if w.kind is WaitKind.EVENT and self._answers[w.name]:
                    answered.append(self._answer(run_id, w, self._answers[w.name].popleft()))
        if not answered:
            return super().park(run_id, token, waits, entries)
        self.append(run_id, token, [*entries, *answered])
        return answered

    def _answer(self, run_id: str, wait: Wait, data: Any) -> JournalEntry:
        if wait.event == APPROVAL_EVENT:
            data = self._decide(wait.match["request_id"], data["decision"])
        event = wait.event or wait.name
        receipt = self.send_event(event, json.dumps(data), run_id=run_id)
        return event_entry(run_id, wait.step_id, wait.name, receipt.event_id, json.dumps(data),
                           time.time())  # fmt: skip

    def _decide(self, request_id: str, recorded: dict[str, Any]) -> dict[str, Any]:
        """The recorded decision taken again on this run's request, by the same person. They
        were entitled to decide it then; the eval's broker is told so through the roles the
        request asks for, which the recording does not keep."""
        request = self._hitl.get(request_id)
        roles = tuple(a.partition(":")[2] for a in request.approvers if a.startswith("role:"))
        verdict = Verdict(recorded["verdict"])
        args = recorded["action"]["args"] if verdict is Verdict.EDITED else None
        decision = self._hitl.decide(
            request_id, verdict, Approver(subject=recorded["by"], roles=roles),
            reason=recorded.get("reason"), args=args,
        )  # fmt: skip
        return {"request_id": request_id, "decision": decision.model_dump(mode="json")}
