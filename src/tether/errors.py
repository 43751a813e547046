"""Every error a tether user can hit, in one hierarchy.

    TetherError                      anything tether raises on purpose (CLI: one line, exit 2)
    ├── ConfigurationError           settings, backends, data directory, an unusable database
    │   ├── BackendNotFound          no backend of that name in the entry-point group
    │   │   └── NoBackendForUrl      no backend in the group serves the database URL's scheme
    │   ├── BackendUnavailable       the backend is registered but cannot be imported (an extra)
    │   ├── BackendContractError     what the backend built does not implement the interface
    │   ├── DatabaseUnavailable      the database is down, locked or corrupt (DSN sans password)
    │   ├── EngineUnavailable        the workflow engine's cluster (Temporal) does not answer
    │   ├── SchemaVersionError       the database was written by a newer tether
    │   ├── SecretNotFound           I7 has no secret by that name
    │   ├── WorkflowImportError      a workflow module in the settings fails to import
    │   └── CrossFamilyJudgeError    the judge model shares the agent's family (INV-3)
    ├── WorkflowNotFound             no registered workflow by that name or version
    ├── GraphVersionMismatch         a LangGraph thread is pinned to a version the graph can't take
    ├── InvalidInput                 workflow input or event data fails validation
    ├── RunNotFound                  no run with that id
    ├── RunStateError                the run is not in a state that allows the operation
    ├── NonDeterminismError          replay met a different primitive than the journal holds
    ├── StepFailed                   a step failed after its retries (raised inside the workflow)
    ├── ChildFailed                  an invoked child workflow failed
    ├── NonRetryableError            raised by user code to stop retries of a step at once
    ├── ToolArgumentError            a tool call's arguments fail the tool's schema
    ├── UnsafeReplayError            an unsafe_on_replay call was interrupted; a person must decide
    ├── ToolFailed                   a tool call raised, or a limit (memory, CPU, time) stopped it
    ├── ApprovalRejected             an approval-gated tool call (I6) was rejected: it did not run
    ├── ApprovalSpent                its approval already released another call: it did not run
    ├── FixtureMissing               an eval case has no recorded result for a tool call (I5)
    ├── NoGoldenCases                a workflow has no golden cases to evaluate (I5)
    ├── NoEvalResults                the gate has no results under either ref to compare (I5)
    ├── RecordingError               a file given to `tether replay --from` is no recording (I5)
    ├── EvalStopped                  a guard refused the eval judge's call: nothing recorded (I5)
    ├── ModelError                   a model call failed after routing and fallbacks
    │   ├── ModelRetryableError      one backend attempt failed for now (429, 500, 529, network)
    │   └── ModelFatalError          one backend refused the request for good (bad request, auth)
    └── GuardError                   a guard refused a call
        ├── PolicyDenied             I9 denied it (names the rule)
        ├── BudgetExceeded           I10 call or cost cap reached
        │   └── BudgetPaused         the cost cap was reached in pause mode: wait for a person
        ├── LoopDetected             I10 saw the same call K times in a row
        ├── RateLimited              I10 rate limit or open circuit, no fallback left
        │   └── LimitsUnavailable    I10's store (Redis) is unreachable: calls refused until back
        └── IdentityError            I8 rejected a token (bad, expired, wrong audience)

Messages say what was wrong and what to do about it; nothing in them is a secret.
"""

from __future__ import annotations

import json
from typing import Any


class TetherError(Exception):
    """Base of every error tether raises on purpose."""


class ConfigurationError(TetherError):
    """Settings or an environment that tether cannot work with."""


class BackendNotFound(ConfigurationError):
    def __init__(self, group: str, name: str, known: list[str]) -> None:
        super().__init__(
            f"no backend {name!r} in entry-point group {group!r}; "
            f"known: {', '.join(known) or 'none'}; choose one of those, or install the package "
            f"that registers {name!r} in {group!r}"
        )
        self.group, self.name = group, name


class NoBackendForUrl(BackendNotFound):
    def __init__(self, group: str, url: str, scheme: str, known: list[str], env: str) -> None:
        ConfigurationError.__init__(
            self,
            f"no backend in entry-point group {group!r} serves {scheme}: URLs such as {url!r} "
            f"(known: {', '.join(known) or 'none'}); set {env} to a database one of those "
            f"serves, or install the package that registers {scheme!r} in {group!r}",
        )
        self.group, self.name, self.url = group, scheme, url


class BackendUnavailable(ConfigurationError):
    """The backend is registered but its module, or a library it needs, cannot be imported."""

    def __init__(self, group: str, name: str, error: str, hint: str) -> None:
        super().__init__(f"backend {name!r} in {group!r} cannot be imported ({error}); {hint}")
        self.group, self.name = group, name


class BackendContractError(ConfigurationError):
    """What a backend built (or the class itself) lacks members its interface requires."""

    def __init__(self, group: str, name: str, contract: str, what: str, missing: list[str]) -> None:
        super().__init__(
            f"backend {name!r} in {group!r} is {what}, which does not implement {contract}: "
            f"missing {', '.join(missing) or 'a member'}; fix the backend or choose another"
        )
        self.group, self.name, self.missing = group, name, missing


class DatabaseUnavailable(ConfigurationError):
    """The database can't be opened or used; the DSN in the message never carries a password."""


class EngineUnavailable(ConfigurationError):
    def __init__(self, engine: str, address: str, detail: str) -> None:
        super().__init__(
            f"the {engine} engine at {address} does not answer ({detail}); start it, or set "
            "TETHER_TEMPORAL_ADDRESS, or choose TETHER_ENGINE=local"
        )
        self.engine, self.address = engine, address


class SchemaVersionError(ConfigurationError):
    """The database's schema is newer than this tether understands."""


class SecretNotFound(ConfigurationError):
    def __init__(self, name: str, where: str) -> None:
        super().__init__(f"no secret {name!r} in {where}; add it there or fix the name")
        self.name = name


class CrossFamilyJudgeError(ConfigurationError):
    """INV-3: the judge must not be of the agent's model family."""


class WorkflowImportError(ConfigurationError):
    def __init__(self, module: str, error: BaseException) -> None:
        last = f"{type(error).__name__}: {error}".splitlines()[0]
        if isinstance(error, SyntaxError) and error.filename:
            last = f"SyntaxError: {error.msg} ({error.filename}, line {error.lineno})"
        super().__init__(
            f"workflow module {module!r} (listed in the settings' workflows) failed to import: "
            f"{last}; fix it or remove it from the list (--debug or TETHER_DEBUG=1 shows the "
            "traceback)"
        )
        self.module = module


class WorkflowNotFound(TetherError):
    def __init__(self, name: str, known: list[str]) -> None:
        hint = f"registered: {', '.join(sorted(known))}" if known else "no workflows are registered"
        super().__init__(f"unknown workflow {name!r} ({hint})")
        self.name = name


class InvalidInput(TetherError):
    def __init__(self, what: str, errors: list[dict[str, Any]] | str) -> None:
        if isinstance(errors, str):
            detail = errors
        else:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ())) or '(root)'}: {e.get('msg')}"
                for e in errors
            )
        super().__init__(f"invalid {what}: {detail}")
        self.errors = errors


class RunNotFound(TetherError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run {run_id!r}; `tether runs` lists them")
        self.run_id = run_id


class RunStateError(TetherError):
    """The run exists but its status does not allow the operation."""


class NonDeterminismError(TetherError):
    def __init__(self, step_id: str, journaled: str, called: str) -> None:
        super().__init__(
            f"non-deterministic replay at step {step_id}: the journal has {journaled!r} "
            f"but the workflow now calls {called!r}; the workflow code changed under a running "
            "run — register the change as a new version"
        )
        self.step_id, self.journaled, self.called = step_id, journaled, called


class StepFailed(TetherError):
    """A step failed for good; replays raise the same error without running the step."""

    def __init__(self, step: str, error_type: str, message: str) -> None:
        super().__init__(f"step {step!r} failed: {error_type}: {message}")
        self.step, self.error_type, self.message = step, error_type, message


class ChildFailed(TetherError):
    def __init__(self, child_run: str, error: str) -> None:
        super().__init__(f"child run {child_run} failed: {error}")
        self.child_run, self.error = child_run, error


class NonRetryableError(TetherError):
    """Raise from a step to fail it at once, without further attempts."""


class ToolArgumentError(TetherError):
    def __init__(self, tool: str, errors: list[dict[str, Any]]) -> None:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or '(args)'}: {e.get('msg')}"
            for e in errors
        )
        super().__init__(f"bad arguments for tool {tool!r}: {detail}")
        self.tool, self.errors = tool, errors


class UnsafeReplayError(TetherError):
    """An unsafe_on_replay call was interrupted: the outside world may or may not have seen it.

    Carries the evidence a person needs to decide (`evidence`): what was sent, when, which attempt.
    """

    def __init__(
        self, tool: str, run_id: str, step_id: str, *, attempt: int, args: dict[str, Any],
        started_at: float, reason: str,
    ) -> None:  # fmt: skip
        super().__init__(
            f"tool {tool!r} (replay='unsafe_on_replay') at step {step_id} of run {run_id} "
            f"{reason}; the outside world may or may not have seen it, so it is not run again: "
            f"decide with `tether resolve {run_id} --step {step_id} --result JSON|--skip|--rerun`"
        )
        self.tool, self.run_id, self.step_id = tool, run_id, step_id
        self.attempt, self.call_args = attempt, args
        self.started_at, self.reason = started_at, reason

    @property
    def evidence(self) -> dict[str, Any]:
        return {
            "tool": self.tool, "run_id": self.run_id, "step_id": self.step_id,
            "attempt": self.attempt, "args": self.call_args, "started_at": self.started_at,
            "reason": self.reason,
        }  # fmt: skip


class ApprovalRejected(TetherError):
    """An approval-gated tool call (I6) was rejected, or expired into rejection: it did not
    run. `decision` is the hitl Decision: who, when, why."""

    def __init__(self, decision: Any) -> None:
        why = f": {decision.reason}" if decision.reason else ""
        super().__init__(
            f"{decision.action.name} was rejected by {decision.by} at "
            f"{decision.at.isoformat()}{why}"
        )
        self.decision = decision


class ApprovalSpent(TetherError):
    """An approval's consumption is recorded on the intent row of the call it released (I1), and
    another call came with it: that call did not run and nothing was written."""

    def __init__(self, approval: str, spent_on: str) -> None:
        super().__init__(
            f"approval {approval!r} already released the call {spent_on}; another call, even "
            "with the same arguments, needs its own approval"
        )
        self.approval, self.spent_on = approval, spent_on


class ToolFailed(TetherError):
    """A tool call produced no result. `limit` names the limit that stopped it, if one did."""

    def __init__(self, tool: str, error_type: str, message: str, limit: str | None = None) -> None:
        super().__init__(f"tool {tool!r} failed: {error_type}: {message}")
        self.tool, self.error_type, self.message, self.limit = tool, error_type, message, limit


class FixtureMissing(TetherError):
    """An eval served tool calls from a case's fixtures and this call had none: nothing was
    called out; the case fails naming the call."""

    def __init__(self, tool: str, args: dict[str, Any]) -> None:
        super().__init__(
            f"no fixture for tool {tool!r} with arguments {json.dumps(args, sort_keys=True)}; "
            "capture a run that makes this call (`tether eval capture RUN`) or add the result "
            "to the case's fixtures"
        )
        self.tool, self.call_args = tool, args


class NoGoldenCases(TetherError):
    def __init__(self, workflow: str, where: str) -> None:
        super().__init__(
            f"workflow {workflow!r} has no golden cases in {where}; add a case file there or "
            "capture one from a finished run with `tether eval capture RUN`"
        )
        self.workflow = workflow


class NoEvalResults(TetherError):
    def __init__(self, refs: list[str]) -> None:
        super().__init__(
            f"no eval results under {' or '.join(refs)}; score the golden cases first with "
            "`tether eval run WORKFLOW --ref REF`"
        )
        self.refs = refs


class RecordingError(TetherError):
    """An export or a replay cannot use the recording file it was given."""


class EvalStopped(TetherError):
    """A guard (I9 policy, I10 limits) refused a call of the eval's judge: the eval stops
    and records none of its results."""

    def __init__(self, step: str, refusal: Exception) -> None:
        super().__init__(
            f"eval stopped at {step}: the judge's call was refused ({type(refusal).__name__}: "
            f"{refusal}); no result of this eval run was recorded. Raise the eval's budget "
            "under [limits.workflows.eval] or the policy that refused it, and run it again"
        )
        self.step, self.refusal = step, refusal


class ModelError(TetherError):
    """A model call failed on every route it was allowed to take."""


class ModelRetryableError(ModelError):
    """One backend attempt failed in a way that may pass later: the router retries or falls back.

    `retry_after` is the provider's own hint in seconds (429 `retry-after`), None when it gave none.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


class ModelFatalError(ModelError):
    """One backend refused the request for good (bad request, bad key, unknown model)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GuardError(TetherError):
    """A guard in the call chain refused the call.

    `decisions` holds every guard decision made for the call, the refusal last, so the runtime
    can journal them with the call and a replay takes the same path.
    """

    decisions: tuple[Any, ...] = ()


class PolicyDenied(GuardError):
    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"denied by policy rule {rule!r}: {reason}")
        self.rule, self.reason = rule, reason


class BudgetExceeded(GuardError):
    """A per-run call cap or cost cap was reached."""


class BudgetPaused(BudgetExceeded):
    """The run's cost cap was reached and its workflow pauses rather than stops: the runtime
    parks the run until a person raises the budget (`tether budget raise RUN --usd X`)."""

    def __init__(self, message: str, *, run_id: str, spent_usd: float, cap_usd: float) -> None:
        super().__init__(message)
        self.run_id, self.spent_usd, self.cap_usd = run_id, spent_usd, cap_usd


class LoopDetected(GuardError):
    """The same call was made K times in a row."""


class RateLimited(GuardError):
    """A rate limit or an open circuit refused the call and no fallback route was left.

    `retry_after` is how many seconds until the limit or circuit would let a call through.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LimitsUnavailable(RateLimited):
    """I10 cannot reach its store, so it cannot tell whether a call fits the run's budget: the
    call is refused (limits fail closed), and calls go through again once the store answers."""


class IdentityError(GuardError):
    """A token was rejected; the message says why (bad signature, expired, wrong audience)."""


class GraphVersionMismatch(TetherError):
    """A LangGraph thread was written by another `name@version` of the graph than the one asked
    to resume it, and that graph does not declare it `resumes` it."""

    def __init__(self, thread_id: str, pinned: str, graph: str) -> None:
        super().__init__(
            f"thread {thread_id} is pinned to graph {pinned}; {graph} does not resume it: run it "
            f"with {pinned}, or declare TetherSaver(graph={graph!r}, resumes=[...]) covering "
            f"{pinned.partition('@')[2]} if this version can continue its checkpoints"
        )
        self.thread_id, self.pinned, self.graph = thread_id, pinned, graph
