"""Takes docs/phoenix-trace.png: the research agent's trace in Phoenix's UI.

Starts Phoenix from .venv-phoenix (scripts/services.sh), runs the research agent with
`trace = "phoenix"`, opens the run's trace in Debian's Chromium through Playwright (never
Playwright's own browser download) and saves the page. Needs `pip install playwright` in
tether's venv and `apt-get install chromium`; run from the repository root:

    .venv/bin/python -m scripts.phoenix_screenshot
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from tests.trace.phoenix import Phoenix
from tether import RunStatus, Settings, Tether
from tether.foundation.trace.contract import trace_id_for

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "phoenix-trace.png"
PROJECT = "tether"


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "apt-get install chromium"
    phoenix = Phoenix()
    try:
        with tempfile.TemporaryDirectory() as data:
            settings = Settings(
                data_dir=Path(data), trace="phoenix", phoenix_endpoint=phoenix.url,
                phoenix_project=PROJECT, workflows=["workflows.research_report"],
            )  # fmt: skip
            with Tether(settings) as t:
                run_id = t.start("research_report", {"topic": "durable background agents",
                                                     "review_pause_seconds": 0})  # fmt: skip
                assert t.run(run_id).status is RunStatus.COMPLETED
        trace_id = trace_id_for(run_id)
        phoenix.wait_for_spans(PROJECT, trace_id, 15)
        projects = httpx.get(f"{phoenix.url}/v1/projects").json()["data"]
        project_id = next(p["id"] for p in projects if p["name"] == PROJECT)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"{phoenix.url}/projects/{project_id}/traces/{trace_id}")
            page.wait_for_load_state("networkidle")
            time.sleep(2)  # the span tree renders after its query returns
            page.screenshot(path=str(OUT))
            browser.close()
        print(f"wrote {OUT}")
    finally:
        phoenix.close()


if __name__ == "__main__":
    main()
