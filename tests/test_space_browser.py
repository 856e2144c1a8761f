"""The Space in a real browser: Playwright drives Debian's Chromium (headless) against the app
started with `python app.py` from the folder an `a3duck space push --dry-run` staged (not from
the repository), on 127.0.0.1 with the tiny model + an adapter; the browser console must stay
free of errors. Without Chromium the test skips (fails in CI)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import require
from space_support import free_port, make_adapter

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
# Records every text the newest bot message shows, to see the answer arrive in pieces.
WATCH_BOT = """() => {
  window.__botTexts = [];
  const seen = () => {
    const bots = document.querySelectorAll('[data-testid="bot"]');
    if (bots.length) {
      const t = bots[bots.length - 1].innerText;
      if (window.__botTexts[window.__botTexts.length - 1] !== t) window.__botTexts.push(t);
    }
  };
  new MutationObserver(seen).observe(document.body,
    {subtree: true, childList: true, characterData: true});
}"""

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def browser():
    require(CHROMIUM.is_file() or shutil.which("chromium") is not None,
            "Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def app_url(tiny_llama_dir, tmp_path_factory):
    from a3duck.cli import main

    work = tmp_path_factory.mktemp("space_browser")
    adapter = make_adapter(tiny_llama_dir, work / "ad")
    assert main(["compare", "--adapter", str(adapter), "--base-model", str(tiny_llama_dir),
                 "--data", str(ROOT / "data" / "demo" / "eval.jsonl"), "--limit", "2",
                 "--output", str(work / "compare.json")]) == 0  # the About tab shows it
    staged = work / "space"
    assert main(["space", "push", "--space-id", "me/space", "--dry-run", "--staging-dir",
                 str(staged), "--hardware", "cpu-basic"]) == 0
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    # The staged config names Hub models; the flags point the app at the local tiny ones.
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--base-model", str(tiny_llama_dir), "--adapter",
         str(adapter), "--device", "cpu", "--dtype", "fp32", "--port", str(port)],
        cwd=staged, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 180
        while proc.poll() is None and time.time() < deadline:
            try:
                urllib.request.urlopen(url + "config", timeout=5).close()
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail(f"app.py did not start: {proc.stdout.read()[-3000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_chat_fewshot_and_base_vs_adapter_in_chromium(browser, app_url, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(60_000)
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(app_url)
    expect(page.get_by_role("tab", name="Chat")).to_be_visible()

    # Chat: type, press Enter, watch the answer stream in.
    page.evaluate(WATCH_BOT)
    box = page.get_by_role("textbox").first
    box.fill("What is the capital of France?")
    box.press("Enter")
    expect(page.locator('[data-testid="user"]').first).to_contain_text("capital of France")
    expect(page.locator("#chat-status")).to_contain_text("tokens/s")
    answer = page.locator('[data-testid="bot"]').last.inner_text()
    texts = page.evaluate("window.__botTexts")
    assert answer.strip() and texts[-1] == answer
    assert len(texts) >= 2, texts  # it grew in place: streamed, not delivered at once
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)

    # Few-shot: score the default ARC item, see the probabilities and the chosen answer.
    page.get_by_role("tab", name="Few-shot").click()
    page.locator("#score-btn").click()
    expect(page.locator("#fewshot-verdict")).to_contain_text("Chosen (acc_norm)")
    expect(page.locator("#fewshot-probs")).to_contain_text("%")
    prompt = page.locator("#fewshot-prompt textarea").input_value()
    assert prompt.startswith("Question: A student pours salt") and prompt.endswith("Answer:")
    page.screenshot(path=str(tmp_path / "fewshot.png"), full_page=True)
    page.get_by_role("combobox", name="Example").click()  # another item: the old scores do not stay beside it
    page.get_by_role("option", name="item 2").click()
    expect(page.locator("#fewshot-verdict")).not_to_contain_text("Chosen")
    expect(page.locator("#fewshot-probs")).not_to_contain_text("%")

    # Compare: adapter and base answer side by side (one mixed batch).
    page.get_by_role("tab", name="Compare").click()
    page.locator("#cmp-btn").click()
    expect(page.locator("#cmp-status")).to_contain_text(re.compile(r"base: \d+ tokens"))
    on = page.locator("#cmp-adapter textarea").input_value()
    off = page.locator("#cmp-base textarea").input_value()
    assert on.strip() and off.strip() and on != off  # the scaled adapter changes the answer
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

    page.get_by_role("tab", name="About").click()
    expect(page.locator("#about")).to_contain_text("Held-out comparison (a3duck compare: 2 "
                                                   "prompts of eval.jsonl, greedy)")
    expect(page.locator("#about")).to_contain_text("not evaluated")
    expect(page.locator("#about")).to_contain_text("Last answer")
    expect(page.locator("#about")).to_contain_text("tokens/s")
    page.screenshot(path=str(tmp_path / "about.png"), full_page=True)
    assert all((tmp_path / f"{n}.png").stat().st_size > 10_000
               for n in ("chat", "fewshot", "compare", "about"))
    page.close()
    assert errors == []  # nothing went wrong in the browser console
