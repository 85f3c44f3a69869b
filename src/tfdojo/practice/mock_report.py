"""A mock interview's report: per-section scores, time per answer, missed points, readiness, what to drill next.

Readiness is the difficulty-weighted mean score of the main answers (easy 1, medium 1.5, hard 2), with half the
credit of a follow-up that recovered a missed point added back: "ready" from 0.75, "nearly" from 0.5.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tfdojo.practice.mock import MockInterview, Turn, main_turns
from tfdojo.practice.schema import SECTIONS

LEVEL_WEIGHT = {"easy": 1.0, "medium": 1.5, "hard": 2.0}
READY, NEARLY = 0.75, 0.5
DRILL_BELOW = 0.65  # sections scoring under this are suggested for drilling
FOLLOW_UP_CREDIT = 0.5


@dataclass(frozen=True)
class SectionScore:
    """How one section went: questions asked, mean score, follow-ups asked and how many of them were answered."""

    section: str
    title: str
    questions: int
    score: float
    follow_ups: int
    recovered: int


@dataclass(frozen=True)
class TurnRow:
    """One line of the timeline."""

    number: int
    kind: str
    question_id: str
    section: str
    level: str
    prompt: str
    seconds: float
    verdict: str
    score: float


@dataclass(frozen=True)
class MissedPoint:
    """A key point still missing after any follow-up, with the question's model answer."""

    question_id: str
    prompt: str
    point: str
    model_answer: str


@dataclass(frozen=True)
class MockReport:
    """Everything the report shows (``as_dict`` for JSON)."""

    seed: int
    minutes: int
    elapsed_seconds: float
    final_level: str
    readiness: float
    readiness_label: str
    sections: tuple[SectionScore, ...]
    turns: tuple[TurnRow, ...]
    missed: tuple[MissedPoint, ...]
    misconceptions: tuple[tuple[str, str, str], ...]  # (question id, misconception, why it is wrong)
    drill_next: tuple[str, ...]
    cross: bool = False  # free text was read by the cross-encoder too

    @property
    def grader(self) -> str:
        """Which free-text grader scored the answers (the two disagree on terse and confident-wrong answers)."""
        return "fast path + cross-encoder (--cross)" if self.cross else "fast path"

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {**asdict(self), "grader": self.grader}


def _recovered(follow_up: Turn | None) -> bool:
    return follow_up is not None and follow_up.judgement.verdict == "correct"


def _pairs(turns: list[Turn]) -> list[tuple[Turn, Turn | None]]:
    """Each main answer with the follow-up asked after it (if any)."""
    pairs: list[tuple[Turn, Turn | None]] = []
    for t in turns:
        if t.prompt.kind == "question":
            pairs.append((t, None))
        elif pairs:
            pairs[-1] = (pairs[-1][0], t)
    return pairs


def build_report(interview: MockInterview) -> MockReport:
    """The report of an interview (finished or stopped early)."""
    pairs = _pairs(interview.turns)
    weighted = total = 0.0
    by_section: dict[str, list[tuple[Turn, Turn | None]]] = {}
    missed: list[MissedPoint] = []
    for main, follow in pairs:
        q = main.prompt.question
        w = LEVEL_WEIGHT[q.difficulty]
        credit = FOLLOW_UP_CREDIT * (1 - main.judgement.score) if _recovered(follow) else 0.0
        weighted += w * (main.judgement.score + credit)
        total += w
        by_section.setdefault(q.section, []).append((main, follow))
        still_missing = main.judgement.missed
        if follow is not None and follow.prompt.rubric is not None:
            answered = {p.text for p in follow.prompt.rubric.key_points} - {p.text for p in follow.judgement.missed}
            still_missing = tuple(p for p in still_missing if p.text not in answered)
        missed += [MissedPoint(q.id, q.prompt, p.text, q.short_answer) for p in still_missing]
    readiness = weighted / total if total else 0.0
    sections = tuple(
        SectionScore(
            s,
            SECTIONS.get(s, s),
            len(items),
            sum(m.judgement.score for m, _ in items) / len(items),
            sum(f is not None for _, f in items),
            sum(_recovered(f) for _, f in items),
        )
        for s, items in sorted(by_section.items())
    )
    weak = sorted((s for s in sections if s.score < DRILL_BELOW), key=lambda s: (s.score, s.section))
    drill = tuple(f"tfdojo drill --section {s.section}" for s in weak[:3])
    seen: set[tuple[str, str]] = set()
    misconceptions = []
    for t in interview.turns:
        for m in t.judgement.misconceptions:
            key = (t.prompt.question.id, m.text)
            if key not in seen:
                seen.add(key)
                misconceptions.append((key[0], m.text, m.feedback))
    rows = tuple(
        TurnRow(
            i + 1,
            t.prompt.kind,
            t.prompt.question.id,
            t.prompt.question.section,
            t.prompt.level,
            t.prompt.text,
            round(t.seconds, 1),
            t.judgement.verdict,
            round(t.judgement.score, 3),
        )
        for i, t in enumerate(interview.turns)
    )
    label = "ready" if readiness >= READY else "nearly" if readiness >= NEARLY else "not yet"
    return MockReport(
        interview.config.seed,
        interview.config.minutes,
        round(interview.elapsed, 1),
        interview.level,
        round(readiness, 3),
        label,
        sections,
        rows,
        tuple(missed),
        tuple(misconceptions),
        drill or (("tfdojo drill --due",) if main_turns(interview.turns) else ()),
        cross=interview.config.cross,
    )


def render_text(report: MockReport) -> str:
    """The report as plain text for the terminal."""
    lines = [
        f"mock interview (seed {report.seed}, {report.minutes} min): {len(report.turns)} answers in "
        f"{report.elapsed_seconds / 60:.1f} min; ended at level {report.final_level}",
        f"readiness: {report.readiness:.0%} — {report.readiness_label}",
        f"free text graded by: {report.grader}",
        "",
        "per section:",
    ]
    lines += [
        f"  {s.title:<40} {s.score:>5.0%}  ({s.questions} asked, {s.recovered}/{s.follow_ups} follow-ups answered)"
        for s in report.sections
    ]
    lines += ["", "time per answer:"]
    lines += [
        f"  {r.number:>2}. {label:<36} {r.seconds:>6.0f} s  {r.verdict}"
        for r in report.turns
        for label in ["follow-up" if r.kind == "follow_up" else r.question_id]
    ]
    if report.missed:
        lines += ["", "missed points (with the model answer):"]
        for question_id in dict.fromkeys(m.question_id for m in report.missed):  # in order, once each
            points = [m for m in report.missed if m.question_id == question_id]
            lines += [f"  [{question_id}]"] + [f"  - {m.point}" for m in points]
            lines += [f"    model answer: {points[0].model_answer}"]
    if report.misconceptions:
        lines += ["", "misconceptions stated:"]
        lines += [f"  - [{q}] {text}: {why}" for q, text, why in report.misconceptions]
    if report.drill_next:
        lines += ["", "drill next:"] + [f"  {c}" for c in report.drill_next]
    return "\n".join(lines)
