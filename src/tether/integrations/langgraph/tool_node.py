"""`tether_tool_node(tools, tether)`: LangGraph's `ToolNode`, with every call sent through I1.

It reads the tool calls of the last AI message, as ToolNode does, and answers each with a
`ToolMessage`. Each call is a `ToolInvocation` whose run id is the LangGraph thread id and
whose step id is derived from the super-step and the tool call's id, so the node re-run after a
crash (LangGraph re-runs a node that did not finish) names the same calls again and I1's
`tool_call_results` decides: a finished call returns its stored result without running, an
interrupted `pure` or `idempotent_with_key` call runs again (with the same key), and an
interrupted `unsafe_on_replay` call raises `UnsafeReplayError` with its evidence out of the
graph, for a person to decide with `resolve_tool_call(tether, thread, step, ...)`.

Before a call is dispatched the guard chain judges it (I9's policy, I10's budget and loop
limits, audited) as the runtime's `ctx.tool` does, under the graph's `name@version`; a
refusal raises its GuardError out of the graph and nothing runs. A call the ledger already
finished is answered without the guards, so a replay is never counted twice.

The runner's lanes live on one event loop of the node's own (a daemon thread), whichever way
the graph is run (`invoke` or `ainvoke`), so the processes they keep never straddle loops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda

from tether.client import Tether
from tether.errors import ConfigurationError, InvalidInput, ToolArgumentError, ToolFailed
from tether.foundation.guards.contract import CallOutcome, GuardedCall
from tether.foundation.tools.contract import ToolDef, ToolInvocation
from tether.foundation.tools.results import CallStatus

T = TypeVar("T")


def step_id(config: RunnableConfig, call_id: str) -> str:
    """`langgraph/<namespace>/<super-step>/<tool call id>`: the same on every re-run of the node
    from one checkpoint. The namespace's task ids are dropped (they name the attempt's task);
    its node names keep subgraphs apart."""
    metadata = config.get("metadata") or {}
    ns = str((config.get("configurable") or {}).get("checkpoint_ns", ""))
    path = "|".join(part.partition(":")[0] for part in ns.split("|")[:-1] if part)
    return f"langgraph/{path}/{metadata.get('langgraph_step', 0)}/{call_id}"


class _Loop:
    """One event loop on a daemon thread: where every call of a node runs."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(
                    target=self._loop.run_forever, name="tether-tool-node", daemon=True
                ).start()
        return asyncio.run_coroutine_threadsafe(coro, self._loop)


def tether_tool_node(
    tools: Sequence[ToolDef],
    tether: Tether,
    *,
    graph: str = "langgraph@0.0.0",
    name: str = "tools",
    messages_key: str = "messages",
) -> RunnableLambda[Any, Any]:
    """A node for `graph.add_node(...)` in place of `ToolNode(tools)`: `tools` are tether
    `@tool`s; `graph` is the graph's `name@version` as the guards and their audit see it (the
    one its TetherSaver is given). The state is a list of messages or a dict holding them
    under `messages_key`; the node returns the tool messages the same way."""
    by_name = {t.name: t for t in tools}
    if len(by_name) != len(tools):
        raise ConfigurationError("two tools passed to tether_tool_node share a name")
    loop = _Loop()

    def tool_calls(state: Any) -> list[ToolCall]:
        messages: list[AnyMessage] = state if isinstance(state, list) else state[messages_key]
        last = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        return list(last.tool_calls) if last is not None else []

    async def one(call: ToolCall, config: RunnableConfig) -> ToolMessage:
        call_id = call.get("id") or ""
        tool = by_name.get(call["name"])
        if tool is None:
            return ToolMessage(
                content=f"Error: {call['name']} is not a valid tool, try one of "
                f"{sorted(by_name)}.",
                name=call["name"], tool_call_id=call_id, status="error",
            )  # fmt: skip
        thread_id = str((config.get("configurable") or {}).get("thread_id", ""))
        if not thread_id:
            raise ConfigurationError(
                "tether_tool_node needs a thread: invoke the graph with "
                "config={'configurable': {'thread_id': ...}}"
            )
        sid, runner, chain = (
            step_id(config, call_id),
            tether.foundations.tools,
            tether.foundations.guards,
        )
        done = runner.lookup(thread_id, sid)
        if done is not None and done.status is CallStatus.FINISHED:
            outcome = runner.outcome(done)
        else:
            guarded = GuardedCall(run_id=thread_id, workflow=graph, step_id=sid, kind="tool",
                                  target=tool.name, arguments=dict(call["args"]))  # fmt: skip
            chain.before(guarded)
            try:
                outcome = await runner.call(ToolInvocation(thread_id, sid, 1, tool, call["args"]))
            except (ToolArgumentError, ToolFailed) as e:
                chain.after(guarded, CallOutcome(ok=False, error=str(e)))
                return ToolMessage(
                    content=f"Error: {e}", name=tool.name, tool_call_id=call_id, status="error"
                )
            chain.after(guarded, CallOutcome(ok=True))
        content = outcome.value if isinstance(outcome.value, str) else outcome.json
        return ToolMessage(content=content, name=tool.name, tool_call_id=call_id)

    async def all_calls(state: Any, config: RunnableConfig) -> Any:
        calls = tool_calls(state)
        messages = list(await asyncio.gather(*(one(c, config) for c in calls)))
        return messages if isinstance(state, list) else {messages_key: messages}

    def run(state: Any, config: RunnableConfig) -> Any:
        return loop.submit(all_calls(state, config)).result()

    async def arun(state: Any, config: RunnableConfig) -> Any:
        return await asyncio.wrap_future(loop.submit(all_calls(state, config)))

    return RunnableLambda(run, afunc=arun, name=name)


def resolve_tool_call(
    tether: Tether,
    thread_id: str,
    step_id: str,
    *,
    result: Any = None,
    skip: bool = False,
    rerun: bool = False,
) -> None:
    """A person's decision on a call the node refused with UnsafeReplayError (its evidence
    names the thread and step): take `result` as its result, `skip` it (result None) or
    `rerun` it once more. `invoke(None, config)` on the thread then goes on from the node.
    (`tether resolve` decides for a tether run; a LangGraph thread has none.)"""
    if [result is not None, skip, rerun].count(True) != 1:
        raise InvalidInput("resolve", "give exactly one of result, skip or rerun")
    decision = "rerun" if rerun else "skip" if skip else "result"
    tether.foundations.tools.resolve(thread_id, step_id, decision, result)
