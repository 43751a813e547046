"""The research agent's tools. They run in I1's sandbox lanes, never in the workflow."""

from __future__ import annotations

from pathlib import Path

from tether import tool
from workflows.research_report import sources


@tool(replay="pure", timeout=20)
def search_library(query: str) -> dict[str, str]:
    """Search the research library for notes relevant to a question; returns the best notes
    (`sources`: their titles, comma-separated; `notes`: their text)."""
    hits = sources.search(query)
    return {
        "sources": ", ".join(h["title"] for h in hits),
        "notes": " ".join(h["text"] for h in hits),
    }


@tool(
    replay="idempotent_with_key",
    persistence="persistent_workspace",
    workspace="reports",
    timeout=20,
)
def save_report(title: str, body: str, idempotency_key: str) -> str:
    """Save the finished report in the reports workspace. The key names the file, so a call
    repeated after a crash overwrites the same file instead of writing a second one."""
    path = Path.cwd() / f"{idempotency_key}.md"
    path.write_text(f"# {title}\n\n{body}\n")
    return str(path)


@tool(
    replay="unsafe_on_replay",
    persistence="persistent_workspace",
    workspace="published",
    timeout=20,
    requires_approval=True,
    approvers=["role:editor"],
)
def send_report(title: str, path: str, to: str) -> str:
    """Send the saved report to its readers (a line in the published workspace's outbox). Runs
    only once a person approved these exact arguments; a send interrupted by a crash is never
    repeated on its own."""
    with (Path.cwd() / "outbox.txt").open("a") as f:
        f.write(f"{to}\t{title}\t{path}\n")
    return f"sent to {to}"
