"""Screenshots of every page of the web trainer for docs/web.md, taken in Debian's chromium through Playwright.

    .venv/bin/python bench/web_screenshots.py            # writes docs/img/web-*.png

The server runs in this process with a temporary progress store seeded with two weeks of made-up practice (a fixed
pattern, so the trend plot has something to show); then the script answers a timed question, runs a coding
exercise's reference solution and starts a seeded mock interview, as a user would. PNGs are reduced to a
256-colour palette when Pillow is installed, to keep the repository small.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright

from tfdojo.app.background import serve
from tfdojo.app.config import WebConfig
from tfdojo.practice.code import load_exercise
from tfdojo.practice.loader import load_bank
from tfdojo.practice.mock import MockConfig, MockInterview
from tfdojo.practice.mock_judge import Judgement, record
from tfdojo.practice.store import ProgressStore

OUT = Path(__file__).resolve().parent.parent / "docs" / "img"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
VERDICTS = ("correct", "partial", "incorrect", "correct", "correct")
DEMO_ANSWER = (
    "Queries are compared with keys by dot products, scaled by the square root of d.\n"
    "A softmax over the keys gives weights, and the output is the weighted sum of the keys."
)


def seed_history(data: Path) -> None:
    """Two weeks of practice on a fixed pattern: a few answers a day over four sections."""
    bank = [q for q in load_bank() if q.type != "coding"]
    sections = ["attention-maths", "inference-serving", "norms-residuals", "moe"]
    chosen = [q for q in bank if q.section in sections]
    start = datetime.now(UTC) - timedelta(days=14)
    with ProgressStore.open(data) as store:
        for day in range(14):
            when = start + timedelta(days=day)
            sid = store.start_session({"demo": True}, when)
            for i, q in enumerate(chosen[(day * 3) % len(chosen) :][:5]):
                verdict = VERDICTS[(day + i) % len(VERDICTS)] if day > 4 else VERDICTS[(day + i) % 3 + 1]
                score = {"correct": 0.8, "partial": 0.4, "incorrect": 0.0}[verdict]
                at = when + timedelta(minutes=5 * i)
                record(store, sid, q, "(demo answer)", 90.0, Judgement(verdict, score, ""), clock=lambda at=at: at)


def shrink(path: Path) -> None:
    try:
        from PIL import Image
    except ImportError:
        return
    with Image.open(path) as image:
        image.convert("RGB").quantize(256).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="tfdojo-shots-"))
    seed_history(data)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with serve(WebConfig(port=port, data_dir=data)) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1000, "height": 720}, base_url=base)
        page.set_default_timeout(180_000)

        def shot(name: str, full: bool = False) -> None:
            path = args.out / f"web-{name}.png"
            page.screenshot(path=str(path), full_page=full)
            shrink(path)
            print(path)

        page.goto("/")
        shot("home")
        page.goto("/map?type=conceptual")
        shot("map")
        page.goto("/card/kv-cache-purpose")
        page.click("#reveal summary")
        shot("card")
        page.goto("/card/attention-formula-walkthrough")
        page.click("text=Answer it timed")
        page.fill("#answer", DEMO_ANSWER)
        shot("session")
        page.click("#submit")
        page.wait_for_selector("#verdict")
        shot("result", full=True)
        exercise = load_exercise("rmsnorm")
        page.goto("/code/rmsnorm")
        page.fill("#editor", (exercise.path / "solution.py").read_text())
        page.click("#run")
        page.wait_for_selector("#verdict")
        page.locator("#verdict").scroll_into_view_if_needed()
        shot("coding")
        first = MockInterview(load_bank(), MockConfig(minutes=20, seed=3)).current
        assert first is not None
        page.goto("/mock")
        page.fill("input[name=minutes]", "20")
        page.fill("input[name=seed]", "3")
        page.click("#start")
        page.fill("#answer", first.question.rubric.key_points[0].text)
        page.click("#submit")
        page.wait_for_selector("#prompt")
        shot("mock")
        page.fill("#answer", "I am not sure.")
        page.click("#submit")
        page.wait_for_selector("#prompt")
        page.click("#stop")
        page.wait_for_selector("#readiness")
        shot("mock-report", full=True)
        page.goto("/history")
        shot("history")
        page.goto("/transfer")
        shot("transfer")
        browser.close()


if __name__ == "__main__":
    main()
