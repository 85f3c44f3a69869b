"""The trainer in real Chromium (Debian's, driven by Playwright): a timed session, a coding run, a mock interview
with a follow-up, and the XSS and CSRF attacks, each checked against what the store holds afterwards."""

from __future__ import annotations

import http.server
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_live import Live

from tfdojo.practice.code import load_exercise
from tfdojo.practice.mock import MockConfig, MockInterview
from tfdojo.practice.store import ProgressStore

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FREE_TEXT = "attention-formula-walkthrough"
XSS = "<img src=x onerror=alert(1)>"

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed (make test)")
if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
    pytest.skip("Debian chromium is not installed and could not be (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def playwright() -> Iterator[object]:
    with sync_api.sync_playwright() as p:  # one per thread: every browser of this module comes from it
        yield p


@pytest.fixture(scope="module")
def browser(playwright) -> Iterator[object]:  # noqa: ANN001
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser, live: Live):  # noqa: ANN001, ANN201 - Playwright's own types
    context = browser.new_context(base_url=live.url)
    tab = context.new_page()
    tab.set_default_timeout(120_000)  # grading and the sandbox are slow on a loaded 2-core machine
    dialogs: list[str] = []
    tab.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    tab.dialogs = dialogs
    yield tab
    context.close()


def attempts(live: Live):  # noqa: ANN201
    with ProgressStore.open(live.trainer.config.data_dir) as store:
        return store.attempts(), store.sessions()


def test_timed_session_is_answered_and_graded(page, live: Live) -> None:  # noqa: ANN001
    q = live.trainer.bank[FREE_TEXT]
    page.goto(f"/card/{FREE_TEXT}")
    page.click("text=Answer it timed")
    countdown = page.locator("#countdown")
    first = countdown.inner_text()
    page.wait_for_function("t => document.getElementById('countdown').textContent !== t", arg=first)
    assert countdown.inner_text() != first  # the countdown runs
    answer = "Each query is compared with every key by a dot product; a softmax over the keys gives weights."
    page.fill("#answer", answer)
    assert page.inner_text("#chars") == str(len(answer))
    page.click("#submit")
    page.wait_for_selector("#verdict")
    assert page.inner_text("#verdict").split(" · ")[0] in ("correct", "partial", "incorrect")
    assert (
        page.locator("#why tbody tr").count() == len(q.rubric.key_points) + page.locator(".why-misconception").count()
    )
    assert page.inner_text("#model-answer") == q.short_answer
    assert "Rated" in page.inner_text("#rating")
    stored, _ = attempts(live)
    assert [(a.question_id, a.answer) for a in stored] == [(FREE_TEXT, answer)]


def test_an_answer_with_markup_shows_as_text(page, live: Live) -> None:  # noqa: ANN001
    page.goto(f"/card/{FREE_TEXT}")
    page.click("text=Answer it timed")
    page.fill("#answer", XSS)
    page.click("#submit")
    page.wait_for_selector("#verdict")
    assert page.inner_text("#your-answer") == XSS
    assert page.locator("#your-answer img, main img").count() == 0
    page.goto("/history")
    page.click("#history summary")
    assert XSS in page.inner_text("#history")
    assert page.locator("#history img").count() == 0
    assert page.dialogs == []  # alert(1) never ran
    assert attempts(live)[0][0].answer == XSS  # stored verbatim, escaped only when shown


@pytest.fixture
def attacker(live: Live) -> Iterator[str]:
    """Another site (another origin: a different port) whose page posts a form to the trainer on load."""
    evil = f"""<!doctype html><form id="f" method="post" action="{live.url}/session">
<input name="question_id" value="{FREE_TEXT}"></form>
<script>
const body = new URLSearchParams({{question_id: "{FREE_TEXT}"}});
fetch("{live.url}/session", {{method: "POST", mode: "no-cors", body}})
  .finally(() => document.getElementById("f").submit());
</script>""".encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(evil)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_a_form_posted_from_another_site_is_refused(page, live: Live, attacker: str) -> None:  # noqa: ANN001
    _, before = attempts(live)
    page.goto(attacker)
    page.wait_for_url(f"{live.url}/session")
    assert "cross-site request refused" in page.content()
    _, after = attempts(live)
    assert len(after) == len(before)  # neither the form nor the fetch opened a session


def test_coding_exercise_runs_the_hidden_tests(page, live: Live) -> None:  # noqa: ANN001
    exercise = load_exercise("rmsnorm")
    page.goto("/code/rmsnorm")
    assert page.input_value("#editor") == (exercise.path / "starter.py").read_text()
    page.fill("#editor", (exercise.path / "solution.py").read_text())
    page.click("#run")
    page.wait_for_selector("#verdict")
    assert page.inner_text("#verdict").startswith("passed")
    rows = page.locator("#tests tbody tr")
    assert rows.count() > 0 and page.locator("#tests tbody tr.fail").count() == 0
    stored, _ = attempts(live)
    assert [(a.question_id, a.verdict) for a in stored] == [("rmsnorm", "correct")]


def test_mock_interview_asks_a_follow_up_and_reports(page, live: Live) -> None:  # noqa: ANN001
    first = MockInterview(live.trainer.bank, MockConfig(minutes=10, seed=0)).current
    assert first is not None
    page.goto("/mock")
    page.fill("input[name=minutes]", "10")
    page.fill("input[name=seed]", "0")
    page.click("#start")
    assert page.inner_text("#prompt") == first.question.prompt  # the seed decides the first question
    page.fill("#answer", first.question.rubric.key_points[0].text)  # one key point of several
    page.click("#submit")
    page.wait_for_selector("#follow-up")
    follow_up = page.inner_text("#prompt")
    page.fill("#answer", "I would have to think about that.")
    page.click("#submit")
    page.wait_for_selector("#prompt")
    page.click("#stop")
    page.wait_for_selector("#readiness")
    turns = page.locator("#turns tbody tr")
    assert turns.count() == 2 and "follow-up" in turns.nth(1).inner_text()
    assert follow_up.split(":")[0] in page.inner_text("#turns")
    assert first.question.short_answer in page.inner_text("#missed")
    stored, _ = attempts(live)
    assert [a.question_id for a in stored] == [first.question.id]  # follow-ups are not practice attempts


def test_spoken_answer_is_uploaded_transcribed_and_graded(page, live: Live, tmp_path: Path) -> None:  # noqa: ANN001
    """A Piper clip of a known sentence goes through the page's upload to our Whisper; the transcript is graded."""
    from tfdojo.app.config import Limits
    from tfdojo.app.voice import transcribe_upload, voice_status

    if not (voice_status().listen and voice_status().speak):
        pytest.skip("voice is not installed here (Whisper weights or the Piper voice package)")
    from tfdojo.practice.voice import speak

    spoken = "A softmax over the keys turns each query's scores into weights that sum to one."
    clip = speak(spoken, cache_dir=tmp_path)
    page.goto(f"/card/{FREE_TEXT}")
    assert page.locator("audio").count() == 1  # the question can be read aloud
    page.click("text=Answer it timed")
    page.set_input_files("#audio-file", str(clip))
    page.wait_for_function("() => document.getElementById('answer').value.length > 0")
    heard = page.input_value("#answer")
    assert heard == transcribe_upload(clip, Limits())  # the page shows exactly what our Whisper hears in the file
    said = set(re.findall(r"[a-z]+", spoken.lower()))
    assert len(said & set(re.findall(r"[a-z]+", heard.lower()))) >= 0.5 * len(said), heard  # and it is that speech
    page.click("#submit")
    page.wait_for_selector("#verdict")
    stored, _ = attempts(live)
    assert [a.answer for a in stored] == [heard]
    wav = page.request.get(f"/voice/question/{FREE_TEXT}.wav")
    assert wav.ok and wav.body()[:4] == b"RIFF"


def test_recorded_answer_goes_through_media_recorder(playwright, live: Live, tmp_path: Path) -> None:  # noqa: ANN001
    """Chromium's fake microphone plays a Piper clip; the page records it (MediaRecorder, webm/opus) and uploads it."""
    from tfdojo.app.voice import voice_status

    if not (voice_status().listen and voice_status().speak):
        pytest.skip("voice is not installed here (Whisper weights or the Piper voice package)")
    from tfdojo.practice.voice import speak

    clip = speak("The keys and values of past tokens are stored in the cache.", cache_dir=tmp_path)
    microphone = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={clip}%noloop",
    ]
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + microphone)
    try:
        page = chromium.new_page(base_url=live.url)
        page.set_default_timeout(120_000)
        page.goto("/card/kv-cache-purpose")
        page.click("text=Answer it timed")
        page.click("#record")
        page.wait_for_function("() => document.getElementById('record').textContent.includes('Stop')")
        page.wait_for_timeout(5_000)  # the clip is about 4 s long
        page.click("#record")
        page.wait_for_function("() => document.getElementById('answer').value.length > 0")
        heard = page.input_value("#answer").lower()
    finally:
        chromium.close()
    assert "cache" in heard or "values" in heard, heard
