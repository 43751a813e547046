"""No foreign key crosses two interfaces' tables, read statically from every schema tether
ships (each `CREATE TABLE` under foundation/<interface>/), so splitting the interfaces across
databases (TETHER_<IFACE>_DATABASE_URL) can never break a reference. A blob is referred to by
hash, never by key; a run by its id as plain text."""

from __future__ import annotations

import re
from pathlib import Path

FOUNDATION = Path(__file__).resolve().parents[1] / "src" / "tether" / "foundation"
CREATE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?[\"{]?([\w.{}]+)", re.I)
REFERENCES = re.compile(r"REFERENCES\s+[\"{]?([\w.{}]+)", re.I)


def _bare(name: str) -> str:
    """`{schema}.runs`, `"runs"` and `runs` are the same table."""
    return name.replace("{", "").replace("}", "").split(".")[-1].strip('"')


def _schemas() -> dict[str, list[tuple[Path, str]]]:
    """Every schema source, by the interface whose package holds it."""
    found: dict[str, list[tuple[Path, str]]] = {}
    for path in sorted(FOUNDATION.rglob("*.py")):
        text = path.read_text()
        if CREATE.search(text):
            interface = path.relative_to(FOUNDATION).parts[0]
            found.setdefault(interface, []).append((path, text))
    return found


def test_every_interface_owns_its_tables_alone() -> None:
    owner: dict[str, str] = {}
    for interface, sources in _schemas().items():
        for _path, text in sources:
            for table in {_bare(t) for t in CREATE.findall(text)}:
                assert owner.setdefault(table, interface) == interface, (
                    f"table {table!r} is created by both {owner[table]} and {interface}"
                )
    assert {"checkpoint", "tools", "cost", "policy", "limits", "evals"} <= set(owner.values())


def test_no_foreign_key_crosses_two_interfaces() -> None:
    schemas = _schemas()
    own = {
        interface: {_bare(t) for _p, text in sources for t in CREATE.findall(text)}
        for interface, sources in schemas.items()
    }
    crossing = [
        f"{path.relative_to(FOUNDATION)}: REFERENCES {ref} (not a table of {interface})"
        for interface, sources in schemas.items()
        for path, text in sources
        for ref in REFERENCES.findall(text)
        if _bare(ref) not in own[interface]
    ]
    assert crossing == []
