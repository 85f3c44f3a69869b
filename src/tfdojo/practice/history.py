"""Past attempts, chosen and shaped for `tfdojo history`: filter by question or section, newest first, as JSON."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tfdojo.practice.loader import Bank
from tfdojo.practice.scheduler import effective_verdict
from tfdojo.practice.store import Attempt


def shown_label(attempt: Attempt) -> str:
    """The label the learner saw (an "uncertain" free-text grade was shown as its credited level), after overrides."""
    shown = attempt.why.get("shown") if isinstance(attempt.why, dict) else None
    verdict = shown or ("partial" if attempt.verdict == "uncertain" else attempt.verdict)
    return effective_verdict(verdict, attempt.override)


def opinion_text(attempt: Attempt, full: bool) -> str:
    """The outside judge's second opinion (``--judge``) as a table cell: its verdict, with ``full`` also its reason
    and model; "" when the attempt has none."""
    opinion = attempt.second_opinion
    if not opinion:
        return ""
    return f"{opinion['verdict']} — {opinion['reason']} ({opinion['model']})" if full else opinion["verdict"]


def select(
    attempts: Iterable[Attempt], bank: Bank, question_ids: Iterable[str] = (), sections: Iterable[str] = ()
) -> list[Attempt]:
    """The attempts at the given questions and in the given sections (empty: all), newest first."""
    ids, wanted = set(question_ids), set(sections)
    section_of = {q.id: q.section for q in bank}
    chosen = [
        a
        for a in attempts
        if (not ids or a.question_id in ids) and (not wanted or section_of.get(a.question_id) in wanted)
    ]
    return sorted(chosen, key=lambda a: a.at, reverse=True)


def as_json(attempt: Attempt) -> dict[str, Any]:
    """One attempt as JSON-able data, with the label shown, the grader's why and any outside judge's opinion."""
    return {
        "uid": attempt.uid,
        "question": attempt.question_id,
        "at": attempt.at.isoformat(),
        "label": shown_label(attempt),
        "verdict": attempt.verdict,
        "override": attempt.override,
        "score": attempt.score,
        "seconds": attempt.seconds,
        "cold": attempt.cold,
        "hint_used": attempt.hint_used,
        "answer": attempt.answer,
        "why": attempt.why,
        "second_opinion": attempt.second_opinion,
    }
