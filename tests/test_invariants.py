"""INV-1's remainder: OpenTelemetry exporters (a vendor wire) are imported only in backends/.

import-linter enforces the rest of INV-1 (`make test` runs it) but cannot name a subpackage of
an external package, so this test walks the source instead."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_opentelemetry_exporters_are_imported_only_under_backends() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for base in (ROOT / "src" / "tether", ROOT / "workflows")
        for path in base.rglob("*.py")
        if "backends" not in path.parts
        and any(m.startswith("opentelemetry.exporter") for m in imported_modules(path))
    ]
    assert offenders == []


def test_the_check_sees_an_exporter_import(tmp_path: Path) -> None:
    sample = tmp_path / "leak.py"
    sample.write_text("from opentelemetry.exporter.otlp.proto.http import trace_exporter\n")
    assert "opentelemetry.exporter.otlp.proto.http" in imported_modules(sample)
