"""The postmortem agent's tools, each declared with what a crash may do to it and where it
runs. `render_timeline` formats text an incident's own logs wrote, so a deployment may send it
to a sandbox of its own (`[tools.overrides] render_timeline = "bubblewrap"`) without touching
this code."""

from __future__ import annotations

from pathlib import Path

from tether import tool
from workflows.incident_postmortem.incidents import INCIDENTS


@tool(replay="pure", timeout=20)
def fetch_timeline(incident_id: str) -> list[dict[str, str]]:
    """The incident's timeline from the tracker: (at, kind, text) entries in time order."""
    try:
        return INCIDENTS[incident_id]
    except KeyError:
        known = ", ".join(sorted(INCIDENTS))
        raise ValueError(f"no incident {incident_id!r} in the tracker; known: {known}") from None


@tool(replay="pure", timeout=20)
def render_timeline(events: list[dict[str, str]]) -> str:
    """The timeline as a fixed-width chart, one line an entry, for the postmortem's body."""
    width = max((len(e["kind"]) for e in events), default=0)
    return "\n".join(f"{e['at']}  {e['kind'].ljust(width)}  | {e['text']}" for e in events)


@tool(
    replay="unsafe_on_replay",
    persistence="persistent_workspace",
    workspace="postmortems",
    timeout=20,
)
def publish_postmortem(incident_id: str, title: str, body: str) -> str:
    """Publish the postmortem where the team reads it (here: a file per incident in the
    workspace). A publish interrupted by a crash is never repeated on its own: a person
    decides, since readers may already have been notified."""
    page = Path.cwd() / f"{incident_id}.md"
    page.write_text(f"# {title}\n\n{body}\n")
    return page.name
