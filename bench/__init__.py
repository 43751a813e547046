"""`make bench`: tether against its peers and the raw-commit floor, same machine, same run.

Every (system, workload, repetition) is measured in its own fresh interpreter (`bench.child`),
repetitions interleaved across systems, and a timing counts only after the harness has checked
the system's result (`bench.workloads`). Entry point: `python -m bench.run`.
"""
