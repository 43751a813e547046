"""Running I5's golden cases and recorded runs through workflows: the eval harness (tools from
fixtures, models on a candidate's routes), capture of a finished run as a case, and the replay
gate. It drives workflows through `Tether`, so it sits above the client, beside the CLI; the
interface it feeds (stores, judging, the gate) is `tether.foundation.evals`, below the runtime."""
