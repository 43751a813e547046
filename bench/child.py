"""One measurement in a fresh interpreter: `python -m bench.child ENV_JSON PARAMS_JSON OUT`.

Imports the system's adapter, runs the workload's entry function, and writes the `Sample` as
JSON to OUT (or `{"error": ...}`). It leaves with `os._exit`: temporalio may abort at
interpreter exit, and a measurement has nothing that needs a clean shutdown.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import traceback


def main(argv: list[str]) -> int:
    from bench.env import Env
    from bench.postgres import NOSYNC_PGOPTIONS
    from bench.systems import SYSTEMS

    env = Env.load(argv[0])
    params = json.loads(argv[1])
    out = argv[2]
    if not env.durable:
        os.environ["PGOPTIONS"] = NOSYNC_PGOPTIONS
    try:
        module = importlib.import_module(SYSTEMS[env.system].module)
        entry = getattr(module, params.pop("_entry"))
        sample = entry(env, params)
        result = dataclasses.asdict(sample)
    except Exception as e:
        result = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=12)}
    with open(out, "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
