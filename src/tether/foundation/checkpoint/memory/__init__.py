"""The in-process I2 test double: the contract's semantics in plain Python under one lock.

It keeps nothing across processes, so it is for tests and for trying a workflow in a REPL.
It is written from the contract, not from the SQL backends (it shares no code with
`checkpoint/sql/`), and the contract suite runs over it and them alike: where they disagree,
one of them is wrong. `state` holds the runs and events, `checkpointer` runs and their
execution, `control` cancel, retry, resolve and events, `housekeeping` and `schedules` the rest.
"""

from tether.foundation.checkpoint.memory.checkpointer import MemoryCheckpointer

__all__ = ["MemoryCheckpointer"]
