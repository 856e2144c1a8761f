"""Take the screenshots in this folder: the Space on the embedded SmolLM2 (+ an adapter),
driven by Playwright in headless Chromium. Run from the repository root:

    HF_HUB_OFFLINE=1 .venv/bin/python docs/screenshots/take_screenshots.py [ADAPTERS]

ADAPTERS is what `a3duck serve --adapter` takes, comma-separated for a zoo (``NAME=folder``
names one); default demo=out/adapter (what `make demo` trains and serves, by that name).
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def main(adapter: str) -> None:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from playwright.sync_api import expect, sync_playwright

    from a3duck.space.runtime import Runtime, ServeConfig
    from a3duck.space.ui import build_demo

    runtime = Runtime.load(ServeConfig(adapter=adapter, device="cpu"))
    demo = build_demo(runtime).queue(max_size=8, default_concurrency_limit=1)
    demo.launch(server_name="127.0.0.1", server_port=7991, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(300_000)
            expect.set_options(timeout=600_000)  # SmolLM2 on a shared CPU is slow
            page.goto("http://127.0.0.1:7991/")
            shoot_chat(page, expect, chat_question(runtime))
            shoot_fewshot(page, expect)
            shoot_compare(page, expect)
            page.get_by_role("tab", name="About").click()
            expect(page.locator("#about")).to_contain_text("tokens/s")
            page.screenshot(path=str(HERE / "about.png"))
            browser.close()
    finally:
        demo.close()


def chat_question(runtime) -> str:
    """The question the Compare tab opens on (a held-out one of the adapter's own domain, from
    its compare.json), so the chat shows what the adapter was trained for."""
    from a3duck.space.about_results import domain_prompt

    return (domain_prompt(runtime.default_folder)
            or "In two sentences, what does a small adapter add to a large language model?")


def shoot_chat(page, expect, question: str) -> None:
    box = page.get_by_role("textbox").first
    box.fill(question)
    box.press("Enter")
    expect(page.locator("#chat-status")).to_contain_text("tokens/s")
    time.sleep(1)  # let the textbox come back from its busy state
    page.screenshot(path=str(HERE / "chat.png"))


def shoot_fewshot(page, expect) -> None:
    page.get_by_role("tab", name="Few-shot").click()
    page.locator("#score-btn").click()
    expect(page.locator("#fewshot-verdict")).to_contain_text("Chosen")
    page.screenshot(path=str(HERE / "fewshot.png"), full_page=True)


def shoot_compare(page, expect) -> None:
    page.get_by_role("tab", name="Compare").click()
    page.locator("#cmp-btn").click()
    expect(page.locator("#cmp-status")).to_contain_text(re.compile(r"base: \d+ tokens"))
    page.screenshot(path=str(HERE / "compare.png"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo=out/adapter")
