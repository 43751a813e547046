"""I2 on PostgreSQL (psycopg 3 and psycopg_pool): many workers on many machines.

`TETHER_CHECKPOINT=postgres` with `TETHER_DATABASE_URL=postgresql://...` (or
`TETHER_CHECKPOINT_DATABASE_URL`) selects it; `TETHER_CHECKPOINT_SCHEMA` keeps its tables in
their own schema. `schema` builds and migrates the tables, `database` owns connections and
errors, `checkpointer` the contract's semantics.
"""

from tether.foundation.checkpoint.backends.postgres.checkpointer import PostgresCheckpointer

__all__ = ["PostgresCheckpointer"]
