"""A candidate configuration: the model routes (and backends) an eval runs a workflow under.

A candidate file is a `tether.toml` fragment (its `[tether]` table, or the top level):

    [model_routes]
    agent = [{backend = "local", model = "rules-agent", family = "local-rules"}]

Its task classes replace the settings' ones, the rest stay; the judge is not the candidate's
to choose (scores from two judges do not compare), so a candidate routing `judge` is refused.
The eval's own settings keep every run in memory, in a throwaway data directory: an eval
writes nothing but I5's results.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from tether.errors import ConfigurationError
from tether.foundation.models.config import JUDGE_TASK
from tether.settings import Settings

_KEYS = ("model_routes", "model_backends")


def load_candidate(path: Path) -> dict[str, Any]:
    """The routing part of a candidate file; anything else in it is refused, so a candidate
    cannot quietly differ from the baseline in ways the gate does not record."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigurationError(f"cannot read candidate {path}: {e}") from e
    table = data.get("tether", data)
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigurationError(
            f"candidate {path} sets {', '.join(unknown)}; a candidate may set only "
            f"{' and '.join(_KEYS)}"
        )
    found = {k: dict(table[k]) for k in _KEYS if k in table}
    judged = sorted(k for k in found.get("model_routes", {}) if k.partition(":")[0] == JUDGE_TASK)
    if judged:
        raise ConfigurationError(
            f"candidate {path} routes {', '.join(judged)}; the judge comes from the settings "
            "(tether.toml), so baseline and candidate are graded alike: route it there"
        )
    return found


def eval_settings(base: Settings, candidate: dict[str, Any], data_dir: Path) -> Settings:
    """Settings for running cases: the candidate's routes over the base's, every store in
    memory (runs, tool results, costs, budgets, audit), traces dropped."""
    extra = base.model_extra or {}
    return base.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": "memory://",
            "checkpoint": "memory",
            "trace": "none",
            "model_routes": {**base.model_routes, **candidate.get("model_routes", {})},
            "model_backends": {**base.model_backends, **candidate.get("model_backends", {})},
            "limits": {**extra.get("limits", {}), "backend": "memory"},
            "policy": {**extra.get("policy", {}), "backend": "memory"},
        }
    )
