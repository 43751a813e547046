"""Reference workflow: a research-and-report agent."""

from workflows.research_report.tools import save_report, search_library
from workflows.research_report.workflow import Report, ResearchRequest, research_report

__all__ = ["Report", "ResearchRequest", "research_report", "save_report", "search_library"]
