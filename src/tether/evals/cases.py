"""Golden cases as files: `workflows/<name>/evals/<case id>.yaml`, one case a file, beside the
workflow's code so they are reviewed like it. The folder is found from the workflow function's
own file, so a user's workflow package keeps its cases the same way."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from pydantic import ValidationError

from tether.errors import InvalidInput, NoGoldenCases
from tether.foundation.evals.contract import GoldenCase
from tether.runtime.registry import WorkflowDef

SUFFIX = ".yaml"


def cases_dir(wf: WorkflowDef) -> Path:
    """Where the workflow's golden cases live: `evals/` beside the module defining it."""
    return Path(inspect.getfile(wf.fn)).resolve().parent / "evals"


def load_case(path: Path) -> GoldenCase:
    """One case file; its id defaults to the file's name."""
    try:
        data: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise InvalidInput(f"golden case {path}", f"cannot read it: {e}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"golden case {path}", "expected a mapping with at least `input`")
    try:
        return GoldenCase.model_validate({"id": path.stem, **data})
    except ValidationError as e:
        errors = [dict(err) for err in e.errors(include_url=False)]
        raise InvalidInput(f"golden case {path}", errors) from None


def load_cases(wf: WorkflowDef) -> list[GoldenCase]:
    """Every case of the workflow, by file name; NoGoldenCases if it has none."""
    folder = cases_dir(wf)
    paths = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
    if not paths:
        raise NoGoldenCases(wf.name, str(folder))
    return [load_case(p) for p in paths]


def write_case(wf: WorkflowDef, case: GoldenCase) -> Path:
    """Save a case as `<evals dir>/<id>.yaml` (replacing a file of that id)."""
    folder = cases_dir(wf)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{case.id}{SUFFIX}"
    data = case.model_dump(mode="json", exclude_defaults=True, exclude={"id"})
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path
