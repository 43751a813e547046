"""The `temporal` engine: tether workflows run unchanged as Temporal workflows (see engine.py
for the records it keeps, context.py for how each primitive maps)."""

from tether.foundation.engine.backends.temporal.engine import TemporalEngine

__all__ = ["TemporalEngine"]
