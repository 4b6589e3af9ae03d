"""The web app in a real headless Chromium (Playwright), used the way a person uses it: a conversation
with a scripted model (a question, then the recommendation card), the panels beside it, a dataset
upload, the judge's grade and the no-LLM button.

Skipped when Playwright or Debian's chromium is absent; README's test command installs chromium with
apt where it can (CI runs as root with apt), so there it runs. `test_a_real_turn_in_the_browser` is
opt-in (METALLMIX_UI_REAL=1): one turn with the real 1.5B model, and the README's screenshot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from knowledge.recommend import clear_cache
from tests.agent.helpers import answer_for, prompt_script
from tests.helpers import free_port
from tests.knowledge.recommend_fixtures import ready_store
from tests.ui.helpers import tiny_npz

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TURN_S = 180_000  # ms one scripted turn may take on a loaded 2-core machine


@contextmanager
def served_page(sync_api, demo, goto_timeout: int):
    """`demo` served on a free local port and a headless Chromium page on it; both closed after."""
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/", timeout=goto_timeout)
            try:
                yield page
            finally:
                browser.close()
    finally:
        demo.close()


def test_a_conversation_in_the_browser_reaches_the_card_and_fills_the_panels(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from agent.testing import ScriptedChatModel
    from agent.toolcalls import ToolCallingModel
    from ui.app import AdvisorApp, build_app

    monkeypatch.setenv("METALLMIX_EMBEDDINGS", "hashing")
    monkeypatch.setenv("METALLMIX_DATA_ROOTS", str(tmp_path / "data"))
    clear_cache()
    store = tmp_path / "runs.sqlite"
    ready_store(store)
    def stated(prompt: str) -> dict:  # what each of the user's messages says
        if "radiograph" in prompt:
            return {"modality": "x-ray"}
        return {"n_instances": 3000, "n_classes": 3} if "3,000" in prompt else {}

    answer = answer_for(store, {"n_instances": 3000, "n_classes": 3, "modality": "x-ray"})
    first_line = answer.splitlines()[0]  # a complete answer: it states the pick
    script = prompt_script(stated, [answer],
                           question="Which imaging modality are the images (x-ray, CT, MRI, ...)?",
                           other="not a rubric")  # the judge's LLM fails: its deterministic checks grade
    advisor = AdvisorApp(None, store, model=ToolCallingModel(inner=ScriptedChatModel(script=script)),
                         work_dir=tmp_path / "ui")
    demo = build_app(app=advisor)
    try:
        with served_page(sync_api, demo, 60_000) as page:
            page.locator("#backend").get_by_text("LLM:", exact=False).wait_for(timeout=60_000)
            chat, traits, card = page.locator("#chat"), page.locator("#traits"), page.locator("#card")
            box = page.get_by_placeholder("Describe your dataset", exact=False)

            # an example question under the chat box fills the box; the traits are named in words
            page.locator("#examples").get_by_text("Why that model", exact=False).click()
            sync_api.expect(box).to_have_value("Why that model and not a ViT?", timeout=30_000)
            assert "images (training set)" in traits.inner_text() and "n_instances" not in traits.inner_text()

            # turn 1: a trait is missing -> one question; the traits panel shows what is known
            box.fill("I have about 3,000 images in 3 classes")
            box.press("Enter")
            chat.get_by_text("Which imaging modality", exact=False).wait_for(timeout=TURN_S)
            assert "3000" in traits.inner_text() and "No recommendation yet" in card.inner_text()

            # turn 2: the answer completes the traits -> the card, the plots, the similar runs
            box.fill("They are chest radiographs")
            box.press("Enter")
            card.get_by_text("Recommendation for", exact=False).wait_for(timeout=TURN_S)
            chat.get_by_text(first_line, exact=False).first.wait_for(timeout=TURN_S)
            steps = chat.get_by_text("Tool steps", exact=False)
            steps.nth(1).wait_for(timeout=TURN_S)  # the draft streams before the turn is over
            assert steps.count() == 2  # one collapsed block of steps per turn
            steps.last.click()  # open the second turn's steps
            chat.get_by_text("ranking configs", exact=False).first.wait_for(timeout=10_000)
            assert "retrieving similar runs" in chat.inner_text()
            assert "x-ray" in traits.inner_text() and "stated" in traits.inner_text()
            for plot in ("waterfall", "pareto"):  # each PNG is served and decodes
                image = page.locator(f"#{plot} img")
                image.wait_for(state="attached", timeout=30_000)
                assert plot in image.get_attribute("src")
                image.scroll_into_view_if_needed()
                page.wait_for_function(f"document.querySelector('#{plot} img').naturalWidth > 100",
                                       timeout=30_000)
            assert page.locator("#runs tbody tr").count() >= 1
            assert "similarity" in page.locator("#runs").inner_text()

            # a dataset upload: measured, told to the advisor, its traits in the panel
            page.locator("#upload input[type=file]").set_input_files(str(tiny_npz(tmp_path / "tiny.npz")))
            page.locator("#upload-status").get_by_text("tiny.npz: 40 images, 2 classes measured",
                                                       exact=False).wait_for(timeout=TURN_S)
            chat.get_by_text("I uploaded my dataset", exact=False).wait_for(timeout=TURN_S)
            page.wait_for_function("document.querySelector('#traits').innerText.includes('measured')",
                                   timeout=TURN_S)
            steps.nth(2).wait_for(timeout=TURN_S)  # the upload's turn is over
            assert steps.count() == 3

            # the judge grades the conversation; the no-LLM button recommends from the traits panel
            page.get_by_role("button", name="Grade this conversation").click()
            page.locator("#verdict").get_by_text("/5", exact=False).first.wait_for(timeout=TURN_S)
            page.get_by_role("button", name="Recommend from these traits").click()
            page.locator("#rec-status").get_by_text("no LLM involved", exact=False).wait_for(timeout=TURN_S)
            page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
    finally:
        advisor.close()
        clear_cache()


REAL_MESSAGE = "About 3,000 chest X-rays, 3 classes, 512 px, CPU only, about an hour — what should I train?"


def real_gguf() -> Path:
    """The 1.5B test GGUF (../shared/tools/fetch-test-llm), or skip."""
    fetch = Path(__file__).resolve().parents[3] / "shared" / "tools" / "fetch-test-llm"
    if not fetch.exists():
        pytest.skip(f"no test LLM: {fetch} is missing")
    out = subprocess.run([str(fetch)], capture_output=True, text=True, timeout=1800)
    path = Path(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else None
    if path is None or not path.is_file():
        pytest.skip(f"test LLM could not be fetched: {out.stderr.strip()[-200:]}")
    return path


@pytest.mark.real_llm
@pytest.mark.skipif(not os.environ.get("METALLMIX_UI_REAL"),
                    reason="one real 1.5B turn takes 5-15 min on 2 busy cores: set METALLMIX_UI_REAL=1")
def test_a_real_turn_in_the_browser(tmp_path: Path):
    """One complete first message to the embedded 1.5B model, in the browser, until the turn is over;
    a full-page screenshot goes to $METALLMIX_UI_SCREENSHOT (default: the test's tmp dir), the
    timings and the transcript to turn.json in the test's tmp dir. The default (shipped) store, in a
    fresh home."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    from ui.app import build_app

    gguf = real_gguf()
    shot = Path(os.environ.get("METALLMIX_UI_SCREENSHOT") or tmp_path / "ui_real.png")
    demo = build_app(f"llamacpp:{gguf}")
    try:
        with served_page(sync_api, demo, 120_000) as page:
            page.locator("#backend").get_by_text("llama.cpp in-process", exact=False).wait_for(timeout=60_000)
            chat, card = page.locator("#chat"), page.locator("#card")
            box = page.get_by_placeholder("Describe your dataset", exact=False)
            box.fill(REAL_MESSAGE)
            t0 = time.perf_counter()
            box.press("Enter")
            card.get_by_text("Recommendation for", exact=False).wait_for(timeout=30 * 60_000)
            card_s = time.perf_counter() - t0  # the card comes before the answer is written
            steps = chat.get_by_text("Tool steps", exact=False)
            steps.wait_for(timeout=30 * 60_000)
            turn_s = time.perf_counter() - t0
            steps.click()  # show the turn's steps in the screenshot
            transcript = chat.inner_text()
            assert "ranking configs" in transcript and "writing the answer" in transcript
            page.locator("#waterfall img").wait_for(state="attached", timeout=30_000)
            page.wait_for_timeout(2000)
            page.evaluate("""() => { for (const el of document.querySelectorAll('#chat *'))
                if (el.scrollHeight > el.clientHeight + 10 && getComputedStyle(el).overflowY !== 'visible')
                    el.scrollTop = 0; }""")  # the chat from its top: question, steps, answer
            page.wait_for_timeout(1000)
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            (tmp_path / "turn.json").write_text(json.dumps(
                {"message": REAL_MESSAGE, "gguf": gguf.name, "card_s": round(card_s, 1),
                 "turn_s": round(turn_s, 1), "chat": transcript}, indent=1, ensure_ascii=False))
            print(f"real turn: card after {card_s:.0f} s, turn over after {turn_s:.0f} s -> {shot}, "
                  f"{tmp_path / 'turn.json'}")
    finally:
        demo.advisor.close()
