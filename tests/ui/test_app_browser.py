"""The web app in a real headless Chromium (Playwright): type a message, see the answer and the card.

Skipped when Playwright or Debian's chromium (`apt-get install -y chromium`) is absent.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from knowledge.recommend import clear_cache
from tests.knowledge.recommend_fixtures import ready_store

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chat_in_the_browser_shows_the_recommendation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from ui.app import build_app

    monkeypatch.setenv("METALLMIX_EMBEDDINGS", "hashing")
    monkeypatch.setenv("METALLMIX_DATA_ROOTS", str(tmp_path / "data"))
    clear_cache()
    store = tmp_path / "runs.sqlite"
    ready_store(store)
    script = tmp_path / "script.json"
    script.write_text(json.dumps([
        {"json": {"n_instances": 3000, "n_classes": 3, "modality": "x-ray"}},
        "The recommended configuration and its evidence are listed below.",
    ]))
    demo = build_app(f"scripted:{script}", store)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
            page.get_by_text("LLM:", exact=False).first.wait_for(timeout=60_000)  # the backend in use is shown
            box = page.get_by_placeholder("Describe your dataset", exact=False)
            box.fill("3,000 chest x-ray images in 3 classes")
            box.press("Enter")
            page.get_by_text("Recommendation for", exact=False).first.wait_for(timeout=120_000)
            assert page.get_by_text("evidence are listed below", exact=False).first.is_visible()
            assert page.locator("img[src*='waterfall']").count() == 1
            browser.close()
    finally:
        demo.close()
        demo.advisor.close()
        clear_cache()
