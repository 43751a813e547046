"""I2's run-state logic written once for SQL databases: `checkpointer` the control flow,
`dialect` the SQL each database speaks it in, `rows` how rows map to records."""
