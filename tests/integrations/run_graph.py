"""One process running the receipt graph on a thread, as an application would:
`python -m tests.integrations.run_graph tether|langgraph DIR THREAD [--resume]`.

`tether` checkpoints through TetherSaver and calls tools through tether_tool_node; `langgraph`
through LangGraph's own SqliteSaver and ToolNode. Exit 0: the graph finished; 3: tether refused
to send again (UnsafeReplayError), its evidence on stderr."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

from tests.integrations.graphs import build, first_input, graph_send_email
from tether import Settings, Tether
from tether.errors import UnsafeReplayError
from tether.integrations.langgraph import TetherSaver, tether_tool_node


def main(system: str, data: Path, thread: str, resume: bool) -> int:
    config = {"configurable": {"thread_id": thread}}
    start = None if resume else first_input(str(data / "outbox"), str(data / "hang"))
    if system == "langgraph":
        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.prebuilt import ToolNode

        conn = sqlite3.connect(data / "langgraph.db", check_same_thread=False)
        build(SqliteSaver(conn), ToolNode([graph_send_email.fn])).invoke(start, config)
        return 0
    tether = Tether(Settings(data_dir=data / ".tether", checkpoint="sqlite", trace="none"))
    graph = build(
        TetherSaver(tether, graph="mailer@1.0.0"), tether_tool_node([graph_send_email], tether)
    )
    try:
        graph.invoke(start, config)
    except UnsafeReplayError as e:
        print(json.dumps(e.evidence), file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    system, data, thread, *rest = sys.argv[1:]
    sys.exit(main(system, Path(data), thread, resume=rest == ["--resume"]))
