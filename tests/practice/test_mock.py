"""The mock interview: seeded picks across sections, level that follows the scores, follow-ups, budget, report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tfdojo.errors import ConfigError
from tfdojo.practice.loader import load_bank
from tfdojo.practice.mock import LEVELS, MockConfig, MockInterview, record_turn
from tfdojo.practice.mock_judge import Judgement, WhyLine, judge
from tfdojo.practice.mock_report import build_report
from tfdojo.practice.rubric import Rubric
from tfdojo.practice.schema import Question
from tfdojo.practice.store import ProgressStore

BANK = load_bank()


def scripted(question: Question, answer: str, rubric: Rubric | None) -> Judgement:
    """A judge whose verdict the answer dictates: "all", "none", "skip-heaviest", or "wrong:<clause>"."""
    points = (rubric or question.rubric).key_points
    heaviest = max(points, key=lambda p: p.weight)
    if answer == "all":
        missed = ()
    elif answer == "skip-heaviest":
        missed = (heaviest,)
    else:
        missed = points
    covered = sum(p.weight for p in points if p not in missed)
    score = covered / sum(p.weight for p in points)
    verdict = "correct" if score >= 0.65 else "partial" if score > 0 else "incorrect"
    misconceptions, why = (), ()
    if answer.startswith("wrong:") and question.rubric.misconceptions:
        m = question.rubric.misconceptions[0]
        misconceptions, why = (m,), (WhyLine("misconception", m.text, answer[6:], 0.9, m.feedback),)
    return Judgement(verdict, score, "scripted", why, missed, misconceptions)


def run(config: MockConfig, answers: list[str], seconds: float = 60.0) -> MockInterview:
    interview = MockInterview(BANK, config, judge=scripted)
    for answer in answers:
        if interview.finished:
            break
        interview.answer(answer, seconds)
    return interview


def trace(interview: MockInterview) -> list[tuple[str, str, str, str]]:
    return [(t.prompt.kind, t.prompt.question.id, t.prompt.level, t.prompt.text) for t in interview.turns]


def test_same_seed_and_answers_give_the_same_interview_and_report() -> None:
    answers = ["all", "skip-heaviest", "all", "none", "all", "all", "none", "all"]
    a, b = run(MockConfig(seed=7), answers), run(MockConfig(seed=7), answers)
    assert trace(a) == trace(b)
    assert build_report(a).as_dict() == build_report(b).as_dict()
    firsts = {run(MockConfig(seed=s), ["all"] * 3).turns[0].prompt.question.id for s in range(6)}
    assert len(firsts) > 1  # the seed changes the interview


def test_questions_rotate_through_sections_and_skip_coding() -> None:
    interview = run(MockConfig(minutes=240, seed=3, follow_ups=False), ["all"] * 30)
    asked = [t.prompt.question for t in interview.turns]
    sections = {q.section for q in BANK if q.type != "coding"}
    first_round = [q.section for q in asked[: len(sections)]]
    assert sorted(first_round) == sorted(sections)  # every section once before any repeats
    assert all(q.type != "coding" for q in asked)
    assert len({q.id for q in asked}) == len(asked)  # never the same question twice


def test_level_rises_after_good_answers_and_falls_after_bad_ones() -> None:
    up = run(MockConfig(seed=1, level="easy", follow_ups=False), ["all"] * 4)
    assert [t.prompt.level for t in up.turns[:3]] == ["easy", "medium", "hard"]
    assert up.level == "hard"
    down = run(MockConfig(seed=1, level="hard", follow_ups=False), ["none"] * 4)
    assert [t.prompt.level for t in down.turns[:3]] == ["hard", "medium", "easy"]
    # each pick is the closest difficulty the section still has
    for t in up.turns:
        section_levels = {q.difficulty for q in BANK if q.section == t.prompt.question.section and q.type != "coding"}
        if t.prompt.level in section_levels:
            assert t.prompt.question.difficulty == t.prompt.level


def test_a_missed_key_point_gets_a_follow_up_on_that_point_alone() -> None:
    interview = MockInterview(BANK, MockConfig(seed=2), judge=scripted)
    first = interview.current
    assert first is not None and first.kind == "question"
    interview.answer("skip-heaviest", 90)
    follow = interview.current
    assert follow is not None and follow.kind == "follow_up" and follow.question == first.question
    heaviest = max(first.question.rubric.key_points, key=lambda p: p.weight)
    assert follow.rubric is not None and follow.rubric.key_points == (heaviest,)
    assert heaviest.text not in follow.text  # the probe must not give the point away
    interview.answer("all", 30)
    assert interview.current is not None and interview.current.kind == "question"  # one follow-up, then move on
    report = build_report(interview)
    assert report.sections[0].follow_ups == 1 and report.sections[0].recovered == 1
    assert report.missed == ()  # recovered in the follow-up


def test_a_stated_misconception_is_quoted_back() -> None:
    with_misconception = next(q for q in BANK if q.rubric.misconceptions and q.type != "coding")
    interview = MockInterview(BANK, MockConfig(sections=(with_misconception.section,), seed=0), judge=scripted)
    while interview.current is not None and not interview.current.question.rubric.misconceptions:
        interview.answer("all", 10)
    assert interview.current is not None
    interview.answer("wrong:the softmax runs over the queries", 60)
    follow = interview.current
    assert follow is not None and follow.kind == "follow_up"
    assert "the softmax runs over the queries" in follow.text and follow.reason == "a misconception was stated"


def test_time_budget_ends_the_interview() -> None:
    interview = run(MockConfig(minutes=5, follow_ups=False), ["all"] * 20, seconds=100)
    assert interview.finished
    assert len(interview.turns) == 3  # 300 s: after two answers 100 s are left (a third question), then none
    assert interview.seconds_left == 0


def test_report_scores_missed_points_and_what_to_drill() -> None:
    answers = ["none", "none", "all", "skip-heaviest", "all", "none"]
    interview = run(MockConfig(seed=11), answers)
    report = build_report(interview)
    mains = [t for t in interview.turns if t.prompt.kind == "question"]
    for s in report.sections:
        scores = [t.judgement.score for t in mains if t.prompt.question.section == s.section]
        assert s.questions == len(scores) and s.score == pytest.approx(sum(scores) / len(scores))
    weak = sorted({s.section for s in report.sections if s.score < 0.65})
    assert sorted(c.split()[-1] for c in report.drill_next) == weak[:3]
    assert all(m.model_answer == BANK[m.question_id].short_answer for m in report.missed)
    assert [r.seconds for r in report.turns] == [60.0] * len(interview.turns)
    assert 0.0 <= report.readiness <= 1.0


def test_main_answers_are_recorded_follow_ups_are_not(tmp_path: Path) -> None:
    interview = MockInterview(BANK, MockConfig(seed=4), judge=scripted)
    with ProgressStore(tmp_path / "p.sqlite3") as store:
        sid = store.start_session({"mock": {}}, datetime.now(UTC))
        for answer in ["skip-heaviest", "none", "all"]:
            record_turn(store, sid, interview.answer(answer, 30))
        stored = store.attempts()
    mains = [t for t in interview.turns if t.prompt.kind == "question"]
    assert [a.question_id for a in stored] == [t.prompt.question.id for t in mains]
    assert [a.verdict for a in stored] == [t.judgement.verdict for t in mains]


@pytest.mark.parametrize(("field", "value"), [("minutes", 0), ("level", "expert"), ("sections", ("nope",))])
def test_bad_settings_are_named_errors(field: str, value: object) -> None:
    with pytest.raises(ConfigError):
        MockConfig(**{field: value})
    assert LEVELS == ("easy", "medium", "hard")


def test_cli_runs_an_interview_from_stdin_and_prints_the_report(tmp_path: Path) -> None:
    """Real grader: a one-point answer earns a follow-up; the report is JSON; main answers are stored."""
    from typer.testing import CliRunner

    from tfdojo.cli import app

    q = MockInterview(BANK, MockConfig(seed=5)).current
    assert q is not None
    answers = f"{q.question.rubric.key_points[0].text}\n\nI am not sure.\n\n/stop\n"
    done = CliRunner().invoke(app, ["mock", "--seed", "5", "--json", "--data-dir", str(tmp_path)], input=answers)
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert [t["kind"] for t in report["turns"]] == ["question", "follow_up"]
    assert report["turns"][0]["question_id"] == q.question.id
    with ProgressStore.open(tmp_path) as store:
        assert [a.question_id for a in store.attempts()] == [q.question.id]


def test_cli_cross_reads_free_text_with_the_cross_encoder_and_the_report_says_so(tmp_path: Path) -> None:
    """`tfdojo mock --cross`: the interview's judge reads free text with the cross stage (a point it decided carries
    its probability) and the report names the grader; without it, the fast path alone."""
    from typer.testing import CliRunner

    from tfdojo.cli import app
    from tfdojo.practice.mock_judge import judge_cross

    assert MockInterview(BANK, MockConfig(cross=True)).judge is judge_cross
    assert MockInterview(BANK, MockConfig()).judge is judge
    masking = BANK["masking-before-softmax"]
    answer = (  # the cross-encoder reads its second sentence as stating the key-axis point (P 0.90)
        "Add -inf to blocked logits pre-softmax; those keys get zero probability and the rest renormalise. "
        "Pad masks go on the key axis; an all-masked row gives NaN."
    )
    notes = [w.note for w in judge_cross(masking, answer).why]
    assert any(n.startswith("cross-encoder, P ") for n in notes), notes
    assert not any("cross-encoder" in w.note for w in judge(masking, answer).why)
    args = ["mock", "--seed", "5", "--data-dir", str(tmp_path)]
    done = CliRunner().invoke(app, [*args, "--cross"], input="/stop\n")
    assert done.exit_code == 0, done.output
    assert "free text graded by: fast path + cross-encoder (--cross)" in done.stdout
    plain = CliRunner().invoke(app, [*args, "--json"], input="/stop\n")
    assert json.loads(plain.stdout)["cross"] is False


def test_cli_bad_length_is_one_line_and_exit_1(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tfdojo.cli import app

    bad = CliRunner().invoke(app, ["mock", "--minutes", "0", "--data-dir", str(tmp_path)])
    assert bad.exit_code == 1
    assert "1 to 240 minutes" in bad.output and "Traceback" not in bad.output


def test_a_numeric_answer_without_a_number_is_graded_incorrect_not_an_error() -> None:
    """The real numeric grader (other questions scripted): the interview goes on, and a follow-up probes."""

    def numeric_real(question: Question, answer: str, rubric: Rubric | None) -> Judgement:
        return judge(question, answer, rubric) if question.type == "numeric" else scripted(question, answer, rubric)

    numeric = next(q for q in BANK if q.type == "numeric")
    config = MockConfig(sections=(numeric.section,), seed=0, level=numeric.difficulty)
    interview = MockInterview(BANK, config, judge=numeric_real)
    while interview.current is not None and interview.current.question.type != "numeric":
        interview.answer("all", 10)  # scripted "all" earns no follow-up
    assert interview.current is not None
    turn = interview.answer("quite a lot", 30)
    assert turn.judgement.verdict == "incorrect" and "no number found" in turn.judgement.feedback
    assert interview.current is not None and interview.current.kind == "follow_up"


def test_every_key_point_has_a_probe_that_does_not_give_it_away() -> None:
    for q in BANK:
        if q.type == "coding":
            continue
        for point in q.rubric.key_points:
            assert point.follow_up.endswith("?"), (q.id, point.text)
            assert point.text.lower() not in point.follow_up.lower(), (q.id, point.text)
