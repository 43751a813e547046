"""The LangGraph receipts need the `langgraph` extra; without it they are skipped, saying so."""

from __future__ import annotations

import pytest

pytest.importorskip("langgraph", reason="needs the langgraph extra: pip install tether[langgraph]")
