"""Reference workflow: a support-ticket triage agent with a human approval step."""

from workflows.support_triage.tools import email_customer, page_oncall
from workflows.support_triage.workflow import Ticket, Triage, support_triage

__all__ = ["Ticket", "Triage", "email_customer", "page_oncall", "support_triage"]
