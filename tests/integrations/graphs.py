"""The graph the LangGraph receipts drive: an agent node (plain Python, deciding tool calls as a
scripted model would: no network) and a tool node sending one email. Side effects land in the
outbox file the test names, so they are counted outside every checkpoint and ledger."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

from tether import tool


@tool(replay="unsafe_on_replay", timeout=60)
def graph_send_email(outbox: str, hang: str, to: str, body: str) -> str:
    """Hand one email to the mail server (a line in `outbox`), then wait for its answer while
    the `hang` file exists: a process killed there has sent the email but recorded nothing."""
    with open(outbox, "a") as f:
        f.write(f"{to}\t{body}\n")
    deadline = time.time() + 30
    while Path(hang).exists() and time.time() < deadline:
        time.sleep(0.02)
    return f"sent to {to}"


@tool(replay="pure", timeout=30)
def graph_lookup(marker: str, key: str) -> str:
    """A read; `marker` gets a line each time it really runs."""
    with open(marker, "a") as f:
        f.write(key + "\n")
    return key.upper()


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    outbox: str
    hang: str


def agent(state: State) -> dict[str, Any]:
    """The scripted model: first it asks for the email, then, with the tool's answer, it is done."""
    if any(isinstance(m, ToolMessage) for m in state["messages"]):
        return {"messages": [AIMessage(content="done")]}
    args = {"outbox": state["outbox"], "hang": state["hang"], "to": "ana@example.com",
            "body": "hello"}  # fmt: skip
    call = {"name": "graph_send_email", "args": args, "id": "call_1", "type": "tool_call"}
    return {"messages": [AIMessage(content="", tool_calls=[call])]}


def route(state: State) -> str:
    last = state["messages"][-1]
    return "tools" if isinstance(last, AIMessage) and last.tool_calls else END


def build(checkpointer: Any, tools_node: Any) -> Any:
    graph = StateGraph(State)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools_node)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["tools", END])
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer)


def first_input(outbox: str, hang: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(content="mail ana")], "outbox": outbox, "hang": hang}
