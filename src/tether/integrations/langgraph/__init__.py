"""LangGraph on tether (`pip install tether[langgraph]`): `TetherSaver` keeps a graph's
checkpoints in I2, and `tether_tool_node` sends its tool calls through I1, so a graph killed
mid-node and resumed never fires an `unsafe_on_replay` tool twice."""

from tether.integrations.langgraph.saver import TetherSaver
from tether.integrations.langgraph.tool_node import resolve_tool_call, tether_tool_node

__all__ = ["TetherSaver", "resolve_tool_call", "tether_tool_node"]
