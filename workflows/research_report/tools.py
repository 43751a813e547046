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
