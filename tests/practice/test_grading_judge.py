"""`--judge URL`: a second opinion from an OpenAI-compatible server, beside the offline grade and never in it.

The client is driven against real HTTP servers started here: a stub speaking the OpenAI chat shape (verdicts it is
told to give, slow replies, errors, redirects), a port nobody listens on, and `tfdojo serve`'s own app over a tiny
random Llama (whatever it says must be accepted or turned down with a message).
"""

import json
import socket
import sqlite3
import threading
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from drill_bank import write_bank
from typer.testing import CliRunner

from judge_stub import stub_judge
from tfdojo.cli import app
from tfdojo.errors import ConfigError, JudgeError, ProgressError
from tfdojo.practice.grading.judge import ENV_API_KEY, JudgeConfig, SecondOpinion, parse_verdict
from tfdojo.practice.store import FILE_NAME, MIGRATIONS, Attempt, ProgressStore
from tfdojo.practice.transfer import export_progress, import_progress, read_progress_file

runner = CliRunner()
OPINION = {"verdict": "partial", "reason": "r", "model": "m", "endpoint": "http://127.0.0.1:1/v1"}


@pytest.fixture
def bank(tmp_path):
    return write_bank(tmp_path / "bank")


@pytest.fixture
def question(bank):
    return bank["why-scale-scores"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# reading the reply


@pytest.mark.parametrize(
    "reply",
    [
        '{"verdict": "partial", "reason": "Misses the variance argument."}',
        '```json\n{"verdict": "Partial", "reason": "Misses the variance argument."}\n```',
        'Sure! Here is my verdict: {"verdict": "partial", "reason": "Misses the variance argument."} Hope it helps.',
        '<think>{"verdict": "correct"}</think>{"verdict": " PARTIAL ", "reason": "Misses the variance argument."}',
        '{"note": {"x": 1}, "verdict": "partial", "reason": "Misses\\nthe   variance argument.", "score": 0.4}',
    ],
)
def test_a_verdict_is_read_through_fences_prose_and_thinking(reply):
    assert parse_verdict(reply) == ("partial", "Misses the variance argument.")


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("I think the answer is mostly right.", "not a JSON verdict: 'I think the answer is mostly right.'"),
        ('{"verdict": "partial", "reason": ', "not a JSON verdict"),
        ('{"score": 0.5, "reason": "fine"}', "not a JSON verdict"),
        ('{"verdict": "excellent", "reason": "fine"}', "'excellent' is not one of correct, partial, incorrect"),
        ('{"verdict": 1, "reason": "fine"}', "'1' is not one of"),
        ('{"verdict": "correct"}', "gives no reason"),
        ('{"verdict": "correct", "reason": "  "}', "gives no reason"),
        ("[" * 100_000, "not a JSON verdict"),
    ],
)
def test_a_malformed_reply_is_turned_down_with_what_was_wrong(reply, message):
    with pytest.raises(JudgeError, match="judge") as e:
        parse_verdict(reply)
    assert message in str(e.value)


def test_the_reason_is_one_printable_line_however_the_judge_writes_it():
    verdict, reason = parse_verdict('{"verdict": "incorrect", "reason": "\\u001b[31mred\\u001b[0m\\tand " ' + "}")
    assert (verdict, reason) == ("incorrect", "[31mred [0m and")  # no escape byte reaches the terminal
    _, long = parse_verdict(json.dumps({"verdict": "correct", "reason": "word " * 200}))
    assert len(long) == 300 and long.endswith("…")


# the URL


def test_the_url_is_the_server_root_with_or_without_v1_and_only_http():
    assert JudgeConfig("http://127.0.0.1:8080").base == "http://127.0.0.1:8080/v1"
    assert JudgeConfig("http://127.0.0.1:11434/v1/").base == "http://127.0.0.1:11434/v1"
    assert JudgeConfig("https://judge.example/openai/v1").base == "https://judge.example/openai/v1"
    assert JudgeConfig("http://127.0.0.1:8080/v1/chat/completions").base == "http://127.0.0.1:8080/v1"
    for bad, message in [
        ("file:///etc/passwd", "not an http(s) URL"),
        ("http://127.0.0.1:port/v1", "not an http(s) URL"),
        ("http://[::1", "not an http(s) URL"),
        ("http://127.0.0.1:8080/v1 HTTP/1.1\r\nX-Injected: 1", "not an http(s) URL"),
        ("127.0.0.1:8080", "not an http(s) URL"),
        ("http://user:secret@127.0.0.1:8080", "must not carry a user or password"),
        ("http://127.0.0.1:8080/v1?key=1", "query or fragment"),
    ]:
        with pytest.raises(ConfigError, match="--judge") as e:
            JudgeConfig(bad)
        assert message in str(e.value)
    with pytest.raises(ConfigError, match="--judge-timeout"):
        JudgeConfig("http://127.0.0.1:8080", timeout=0)


# talking to a server


def test_asks_the_first_listed_model_with_the_question_key_points_and_answer(question, monkeypatch):
    monkeypatch.setenv(ENV_API_KEY, "sk-judge")
    with stub_judge(reply='{"verdict": "incorrect", "reason": "The KV cache does not store queries."}') as stub:
        judge = SecondOpinion(JudgeConfig.from_options(stub.url))
        opinion = judge.ask(question, "The KV cache stores the queries.")
        judge.ask(question, "again")
    assert opinion.as_dict() == {
        "verdict": "incorrect",
        "reason": "The KV cache does not store queries.",
        "model": "judge-a",
        "endpoint": stub.url + "/v1",
    }
    assert [(r.method, r.path) for r in stub.requests] == [
        ("GET", "/v1/models"),  # listed once, then remembered
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/chat/completions"),
    ]
    first = stub.chats()[0]
    assert all(r.headers["authorization"] == "Bearer sk-judge" for r in stub.requests)
    assert first.body["model"] == "judge-a" and first.body["temperature"] == 0 and first.body["stream"] is False
    system, user = first.body["messages"]
    assert system["role"] == "system" and "JSON" in system["content"]
    assert question.prompt in user["content"] and "===\nThe KV cache stores the queries.\n===" in user["content"]
    assert all(f"- {p.text}" in user["content"] for p in question.rubric.key_points)
    assert question.short_answer not in user["content"]  # the key points, not the model answer


def test_judge_model_skips_the_listing_and_no_key_sends_no_authorization(question, monkeypatch):
    monkeypatch.delenv(ENV_API_KEY, raising=False)
    with stub_judge() as stub:
        opinion = SecondOpinion(JudgeConfig.from_options(stub.url, "judge-b")).ask(question, "an answer")
    assert opinion.model == "judge-b" and [r.path for r in stub.requests] == ["/v1/chat/completions"]
    assert "authorization" not in stub.requests[0].headers


def test_a_slow_judge_times_out_quickly(question):
    with stub_judge(delay=3.0) as stub:
        judge = SecondOpinion(JudgeConfig(stub.url, "judge-a", timeout=0.3))
        start = time.monotonic()
        with pytest.raises(JudgeError, match=r"did not answer within 0.3 s"):
            judge.ask(question, "an answer")
        assert time.monotonic() - start < 2.5


def test_a_judge_nobody_runs_is_a_clear_error(question):
    judge = SecondOpinion(JudgeConfig(f"http://127.0.0.1:{free_port()}", timeout=5))
    with pytest.raises(JudgeError, match=r"cannot reach the judge at http://127\.0\.0\.1:\d+/v1 .*check --judge"):
        judge.ask(question, "an answer")


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ((401, b'{"error": {"message": "bad key"}}'), "HTTP 401: bad key; set $TFDOJO_JUDGE_API_KEY"),
        ((500, b"<html>oops</html>"), "HTTP 500: <html>oops</html>"),
        ((200, b"<html>a web page</html>"), "not JSON: '<html>a web page</html>'"),
        ((200, b'{"object": "list"}'), "sent no choices[0].message.content"),
        ((200, b'{"choices": [{"message": {"content": null}}]}'), "sent no choices[0].message.content"),
        ("no JSON here", "the judge's reply is not a JSON verdict: 'no JSON here'"),
    ],
)
def test_errors_and_malformed_replies_say_what_went_wrong(question, reply, message):
    with stub_judge(reply=reply) as stub, pytest.raises(JudgeError) as e:
        SecondOpinion(JudgeConfig(stub.url, "judge-a")).ask(question, "an answer")
    assert message in str(e.value)


def test_a_redirect_is_not_followed(question):
    with stub_judge() as elsewhere, stub_judge() as stub:
        stub.reply = (307, b"", {"Location": elsewhere.url + "/v1/chat/completions"})
        with pytest.raises(JudgeError, match="HTTP 307: a redirect"):
            SecondOpinion(JudgeConfig(stub.url, "judge-a")).ask(question, "an answer")
    assert elsewhere.requests == []  # the answer and the key went nowhere else


def test_a_server_that_does_not_speak_http_is_a_clear_error(question):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def banner():
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

        thread = threading.Thread(target=banner, daemon=True)
        thread.start()
        judge = SecondOpinion(JudgeConfig(f"http://127.0.0.1:{listener.getsockname()[1]}", "m", timeout=10))
        with pytest.raises(JudgeError, match="does not speak HTTP"):
            judge.ask(question, "an answer")
        thread.join(timeout=10)


def test_a_server_listing_no_models_asks_for_judge_model(question):
    with stub_judge(models=[]) as stub, pytest.raises(JudgeError, match="lists no models; pass --judge-model"):
        SecondOpinion(JudgeConfig(stub.url)).ask(question, "an answer")


# tfdojo serve as the judge


def test_tfdojo_serve_is_accepted_end_to_end(question, smollm2_reader):
    """Our own server with a random tiny model: a verdict, or a reply turned down with the parser's message."""
    from serve.server_fixtures import running_server, tiny_lm
    from tfdojo.infer.server.app import ServerConfig
    from tfdojo.tokenize.tokenizer import Tokenizer

    lm = tiny_lm(Tokenizer.from_gguf(smollm2_reader), max_seq_len=1024)
    with running_server(lm, ServerConfig("tiny-judge", api_key="sk-serve", kv_blocks=128)) as (url, _):
        judge = SecondOpinion(JudgeConfig(url, api_key="sk-serve", max_tokens=24, timeout=60))
        try:
            opinion = judge.ask(question, "Dividing by the square root of d keeps the logits' variance near one.")
        except JudgeError as e:
            assert str(e).startswith(("the judge's reply is not", "the judge's verdict", "the judge's reply gives")), e
        else:
            assert opinion.verdict in ("correct", "partial", "incorrect") and opinion.reason
        assert judge.model() == "tiny-judge"  # from GET /v1/models, with the key
        with pytest.raises(JudgeError, match="HTTP 401.*TFDOJO_JUDGE_API_KEY"):
            SecondOpinion(JudgeConfig(url)).ask(question, "an answer")


# the drill


@pytest.fixture
def offline(monkeypatch):
    """The free-text grader replaced by one that says incorrect (0.2)."""

    def stub(rubric, answer):
        return SimpleNamespace(verdict="incorrect", shown=None, score=0.2, feedback="stub", why=lambda: {"points": []})

    monkeypatch.setattr("tfdojo.practice.grading.free_text.grade_free_text", stub)


def _drill(tmp_path, name, *extra, input="my answer\n\n\n"):
    opts = ["--data-dir", str(tmp_path / name), "--bank", str(tmp_path / "bank")]
    result = runner.invoke(app, ["drill", "--id", "why-scale-scores", "--no-timer", *opts, *extra], input=input)
    assert result.exit_code == 0, result.output
    with ProgressStore(tmp_path / name / FILE_NAME, read_only=True) as store:
        return result, store.attempts(), store.cards()


def test_the_judge_is_shown_and_stored_but_the_offline_grade_schedules(tmp_path, bank, offline):
    _, (alone,), alone_cards = _drill(tmp_path, "alone")
    with stub_judge(reply='{"verdict": "correct", "reason": "It is <b>fully</b> right."}') as stub:
        result, (judged,), judged_cards = _drill(tmp_path, "judged", "--judge", stub.url + "/v1")
    out = " ".join(result.stdout.split())
    assert "second opinion (judge-a): correct — It is <b>fully</b> right." in out
    assert "advice only" in out and "incorrect · score 0.20" in out
    assert (judged.verdict, judged.score, judged.rating) == (alone.verdict, alone.score, alone.rating)
    card, alone_card = judged_cards["why-scale-scores"], alone_cards["why-scale-scores"]
    assert judged.rating == 1 and (card.stability, card.difficulty) == (alone_card.stability, alone_card.difficulty)
    assert judged.second_opinion == {
        "verdict": "correct",
        "reason": "It is <b>fully</b> right.",
        "model": "judge-a",
        "endpoint": stub.url + "/v1",
    }
    assert alone.second_opinion is None
    shown = runner.invoke(app, ["history", "--json", "--data-dir", str(tmp_path / "judged")])
    assert json.loads(shown.stdout)[0]["second_opinion"]["verdict"] == "correct"


def test_an_unreachable_or_slow_judge_is_one_line_and_the_drill_goes_on(tmp_path, bank, offline):
    two = ["--id", "design-serving", "--judge", f"http://127.0.0.1:{free_port()}"]
    result, attempts, _ = _drill(tmp_path, "refused", *two, input="first\n\n\nsecond\n\n\n")
    assert [a.answer for a in attempts] == ["first", "second"] and all(a.second_opinion is None for a in attempts)
    notices = [line for line in result.stderr.splitlines() if "no second opinion" in line]
    assert len(notices) == 2 and "cannot reach the judge" in notices[0] and "the grade above stands" in notices[0]
    with stub_judge(delay=3.0) as stub:
        slow, (attempt,), _ = _drill(tmp_path, "slow", "--judge", stub.url, "--judge-timeout", "0.3")
    assert "did not answer within 0.3 s" in slow.stderr and attempt.verdict == "incorrect"


def test_ctrl_c_while_waiting_skips_the_judge_not_the_drill(tmp_path, bank, offline, monkeypatch):
    def interrupted(self, question, answer):
        raise KeyboardInterrupt

    monkeypatch.setattr(SecondOpinion, "ask", interrupted)
    two = ["--id", "design-serving", "--judge", "http://127.0.0.1:9"]
    result, attempts, _ = _drill(tmp_path, "ctrl-c", *two, input="first\n\n\nsecond\n\n\n")
    assert [a.answer for a in attempts] == ["first", "second"]
    assert result.stderr.count("no second opinion: skipped (Ctrl-C)") == 2 and "2 answered" in result.stdout


def test_the_judge_is_not_asked_for_i_dont_know_numeric_or_a_bad_url(tmp_path, bank, offline):
    with stub_judge() as stub:
        _drill(tmp_path, "idk", "--judge", stub.url, input=":idk\n\n")
        result = runner.invoke(
            app,
            ["drill", "--id", "kv-cache-70b", "--no-timer", "--judge", stub.url, "--data-dir", str(tmp_path / "n")]
            + ["--bank", str(tmp_path / "bank")],
            input="2.5 GiB\n\n",
        )
        assert result.exit_code == 0, result.output
    assert stub.requests == []
    bad = runner.invoke(app, ["drill", "--judge", "ftp://127.0.0.1/", "--bank", str(tmp_path / "bank")])
    assert bad.exit_code == 1 and "is not an http(s) URL" in bad.stderr


# the mock interview


@pytest.fixture
def offline_mock(monkeypatch):
    """The free-text grader replaced by one that says incorrect (0.2) with nothing covered, as the mock reads it."""

    def stub(rubric, answer, cross=False):
        none = ()
        return SimpleNamespace(
            verdict="incorrect", shown=None, score=0.2, feedback="stub", covered=none, contradicted=none,
            uncertain=none, missed=none, misconceptions=none, why=lambda: {"points": []},
        )  # fmt: skip

    monkeypatch.setattr("tfdojo.practice.grading.free_text.grade_free_text", stub)


def _mock(tmp_path, name, section, *extra, input="my answer\n\n/stop\n"):
    where = ["--data-dir", str(tmp_path / name), "--bank", str(tmp_path / "bank")]
    result = runner.invoke(
        app, ["mock", "--json", "--section", section, "--no-follow-ups", *where, *extra], input=input
    )
    assert result.exit_code == 0, result.output
    with ProgressStore(tmp_path / name / FILE_NAME, read_only=True) as store:
        return result, store.attempts()


def test_mock_shows_and_stores_the_judge_but_the_offline_grade_stands(tmp_path, bank, offline_mock):
    _, (alone,) = _mock(tmp_path, "alone", "attention-maths")
    with stub_judge(reply='{"verdict": "correct", "reason": "It is fully right."}') as stub:
        result, (judged,) = _mock(tmp_path, "judged", "attention-maths", "--judge", stub.url)
    assert "second opinion (judge-a): correct — It is fully right." in result.stderr
    assert "incorrect (20%)" in result.stderr  # the offline grade, printed before the opinion
    assert (judged.verdict, judged.score, judged.rating) == (alone.verdict, alone.score, alone.rating)
    assert judged.second_opinion == {
        "verdict": "correct",
        "reason": "It is fully right.",
        "model": "judge-a",
        "endpoint": stub.url + "/v1",
    }
    (chat,) = stub.chats()
    sent = " ".join(m["content"] for m in chat.body["messages"])
    assert "Question why-scale-scores" in sent and "my answer" in sent
    report = json.loads(result.stdout)  # stdout stays the report alone
    assert [t["verdict"] for t in report["turns"]] == ["incorrect"]


def test_mock_with_an_unreachable_judge_says_so_in_one_line_and_goes_on(tmp_path, bank, offline_mock):
    result, (attempt,) = _mock(tmp_path, "refused", "attention-maths", "--judge", f"http://127.0.0.1:{free_port()}")
    notices = [line for line in result.stderr.splitlines() if "no second opinion" in line]
    assert len(notices) == 1 and "cannot reach the judge" in notices[0] and "the grade above stands" in notices[0]
    assert attempt.second_opinion is None and attempt.verdict == "incorrect"


def test_drill_and_mock_give_the_same_line_when_the_judge_fails_or_is_skipped(
    tmp_path, bank, offline_mock, monkeypatch
):
    dead = ["--judge", f"http://127.0.0.1:{free_port()}"]
    drill, *_ = _drill(tmp_path, "drill", *dead)
    mock, _ = _mock(tmp_path, "mock", "attention-maths", *dead)
    (drill_line,) = [line for line in drill.stderr.splitlines() if "no second opinion" in line]
    (mock_line,) = [line for line in mock.stderr.splitlines() if "no second opinion" in line]
    assert drill_line.strip() == mock_line.strip() and "cannot reach the judge" in drill_line

    def interrupted(self, question, answer):
        raise KeyboardInterrupt

    monkeypatch.setattr(SecondOpinion, "ask", interrupted)
    drill, (attempt,), _ = _drill(tmp_path, "drill-ctrl-c", *dead)
    mock, _ = _mock(tmp_path, "mock-ctrl-c", "attention-maths", *dead)
    skipped = "no second opinion: skipped (Ctrl-C); the grade above stands"
    assert skipped in drill.stderr and skipped in mock.stderr and attempt.second_opinion is None


def test_mock_does_not_send_numeric_answers_and_refuses_a_bad_url(tmp_path, bank):
    with stub_judge() as stub:
        _, (attempt,) = _mock(tmp_path, "numeric", "inference-serving", "--judge", stub.url, input="2.5 GiB\n\n/stop\n")
    assert stub.requests == [] and attempt.second_opinion is None
    bad = runner.invoke(app, ["mock", "--judge", "ftp://127.0.0.1/", "--bank", str(tmp_path / "bank")])
    assert bad.exit_code == 1 and "is not an http(s) URL" in bad.stderr


# the store and the export


def test_a_v3_file_migrates_and_an_opinion_travels_through_export_and_import(tmp_path, bank):
    path = tmp_path / "old" / FILE_NAME
    path.parent.mkdir()
    with sqlite3.connect(path) as db:
        for statement in (s for step in MIGRATIONS[:3] for s in step):
            db.execute(statement)
        db.execute("INSERT INTO attempts (uid, question_id, at, answer, verdict, score, rating, cold, hint_used,"
                   " seconds) VALUES ('u1', 'why-scale-scores', '2025-01-01T10:00:00+00:00', 'old', 'partial', 0.5,"
                   " 2, 1, 0, 30.0)")  # fmt: skip
        db.execute("PRAGMA user_version = 3")
    with ProgressStore(path) as store:
        assert store.schema_version == 4 and store.attempts()[0].second_opinion is None
        cards_before = store.cards()
        store.set_second_opinion("u1", OPINION)
        (attempt,) = store.attempts()
        assert attempt.second_opinion == OPINION and (attempt.verdict, attempt.rating) == ("partial", 2)
        assert store.cards() == cards_before
        document = export_progress(store, attempt.at)
    assert document["version"] == 3 and document["attempts"][0]["second_opinion"] == OPINION
    file = tmp_path / "export.json"
    file.write_text(json.dumps(document))
    with ProgressStore(tmp_path / "new" / FILE_NAME) as other:
        assert import_progress(other, read_progress_file(file)) == (1, 0)
        assert other.attempts()[0].second_opinion == OPINION
    document["attempts"][0]["second_opinion"]["verdict"] = "<script>x</script>"
    file.write_text(json.dumps(document))
    with pytest.raises(ProgressError, match="second_opinion.verdict"):
        read_progress_file(file)


def test_setting_an_opinion_on_an_unknown_attempt_is_an_error(tmp_path):
    with ProgressStore(tmp_path / FILE_NAME) as store:
        store.record(Attempt("q", datetime.now(UTC), "a", "correct", 1.0, 3))
        with pytest.raises(ProgressError, match="no attempt with id nope"):
            store.set_second_opinion("nope", OPINION)
