"""Reference workflow: an incident-postmortem agent with an approval before publishing."""

from workflows.incident_postmortem.tools import (
    fetch_timeline,
    publish_postmortem,
    render_timeline,
)
from workflows.incident_postmortem.workflow import IncidentRequest, Postmortem, incident_postmortem

__all__ = [
    "IncidentRequest",
    "Postmortem",
    "fetch_timeline",
    "incident_postmortem",
    "publish_postmortem",
    "render_timeline",
]
