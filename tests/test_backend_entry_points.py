"""A new backend is one file and an entry point: a throwaway distribution (one module, and a
.dist-info whose entry_points.txt registers it) put on sys.path is found by the loader, chosen
by its database URL's scheme, and run through its interface's contract suite, with no change
to tether. The loader's refusals name the group and the backend and say what to do."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.errors import BackendContractError, BackendNotFound, BackendUnavailable, NoBackendForUrl
from tether.foundation import loader
from tether.foundation.cost.attributor import open_store
from tether.foundation.cost.contract import CostStore
from tether.foundation.loader import backend_for_url, backend_names, open_backend
from tether.foundation.tools.config import open_tool_results
from tether.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

BACKEND = '''"""acme's ledger backends for ledger:// URLs (a third party's package, in one file)."""

from tether.foundation.checkpoint.memory import MemoryCheckpointer
from tether.foundation.cost.memory import MemoryCostStore


class LedgerCostStore(MemoryCostStore):
    pass


class LedgerCheckpointer(MemoryCheckpointer):
    pass


class NotACostStore:
    @classmethod
    def from_settings(cls, settings, **options):
        return cls()
'''

ENTRY_POINTS = """[tether.cost]
ledger = acme_ledger:LedgerCostStore
wrong = acme_ledger:NotACostStore
needs-sdk = acme_ledger_sdk:SdkCostStore

[tether.checkpoint]
ledger = acme_ledger:LedgerCheckpointer
"""

METADATA = """Metadata-Version: 2.1
Name: acme-ledger
Version: 1.0
Provides-Extra: needs-sdk
"""


def _forget_entry_points() -> None:
    loader.backend_class.cache_clear()
    loader._entry_points.cache_clear()
    loader._installed.cache_clear()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """acme-ledger installed: its module and its .dist-info on sys.path."""
    site = tmp_path / "site"
    dist_info = site / "acme_ledger-1.0.dist-info"
    dist_info.mkdir(parents=True)
    (site / "acme_ledger.py").write_text(BACKEND)
    (dist_info / "METADATA").write_text(METADATA)
    (dist_info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    _forget_entry_points()
    yield site
    sys.modules.pop("acme_ledger", None)
    _forget_entry_points()


def test_an_installed_backend_is_found_and_chosen_by_its_url_scheme(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "ledger" in backend_names("cost") and "ledger" in backend_names("checkpoint")
    assert backend_for_url("cost", "ledger://books/main") == "ledger"
    monkeypatch.setenv("TETHER_COST_DATABASE_URL", "ledger://books/main")
    store = open_store(Settings(data_dir=tmp_path))
    assert type(store).__name__ == "LedgerCostStore" and isinstance(store, CostStore)


def test_the_contract_suite_runs_over_an_installed_backend(site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-k", "ledger",
         "tests/contract/test_cost_contract.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    passed = re.search(r"(\d+) passed", done.stdout)
    assert passed is not None and int(passed.group(1)) >= 5, done.stdout


def test_a_shared_url_only_one_interface_serves_names_the_setting_to_fix(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_DATABASE_URL", "ledger://shared")
    monkeypatch.delenv("TETHER_TOOLS_DATABASE_URL", raising=False)
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(NoBackendForUrl, match="TETHER_TOOLS_DATABASE_URL") as refused:
        open_tool_results(settings)
    assert "'tether.tool_results'" in str(refused.value) and "ledger:" in str(refused.value)
    monkeypatch.setenv("TETHER_TOOLS_DATABASE_URL", f"sqlite:///{tmp_path / 'tools.db'}")
    open_tool_results(Settings(data_dir=tmp_path)).close()


def test_a_backend_that_cannot_be_imported_names_the_extra_to_install(site: Path) -> None:
    with pytest.raises(BackendUnavailable, match=r"pip install 'acme-ledger\[needs-sdk\]'"):
        open_backend("cost", "needs-sdk", CostStore, Settings())


def test_a_backend_that_builds_the_wrong_thing_is_refused_naming_what_it_lacks(
    site: Path,
) -> None:
    with pytest.raises(BackendContractError, match=r"'wrong' in 'tether.cost'.*missing.*record"):
        open_backend("cost", "wrong", CostStore, Settings())


def test_an_unknown_backend_lists_the_installed_ones() -> None:
    with pytest.raises(BackendNotFound, match="known: memory, postgres, sqlite"):
        open_backend("cost", "nope", CostStore, Settings())


def test_tethers_own_vendor_backends_name_their_extra() -> None:
    # psycopg is installed here, so the hint is checked on the entry point itself
    (entry,) = [e for n, e in loader._entry_points("cost").items() if n == "postgres"]
    assert loader._install_hint(entry) == "install its extra: pip install 'tether[postgres]'"
