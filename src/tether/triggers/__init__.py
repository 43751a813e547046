"""`tether triggers`: the seeds' decisions D1-D10 computed from what tether already records.

`evidence` reads the rows once (I2 runs and journals, I6 requests, I5 results, settings);
`decisions` turns them into one verdict per decision; `report.measure` is both in one call, what
the CLI prints and the web UI shows.
"""

from tether.triggers.decisions import State, Trigger, evaluate
from tether.triggers.evidence import Evidence, gather
from tether.triggers.report import measure, parse_window

__all__ = ["Evidence", "State", "Trigger", "evaluate", "gather", "measure", "parse_window"]
