"""Feedback a learner can act on: what was missed, what was said against a key point, which misconception, and why."""

from __future__ import annotations

from collections.abc import Sequence

from tfdojo.practice.grading.grade import MisconceptionMatch, PointMatch, Verdict

EMPTY_ANSWER = "No answer was given. Write what you know in a few sentences, even if it is incomplete."


def _quote(clause: str | None) -> str:
    return f"“{clause}”" if clause else "nothing"


def salad_feedback(terms: Sequence[str]) -> str:
    """Feedback for a list of terms that makes no claim."""
    listed = ", ".join(terms[:6])
    return (
        f"Your answer lists terms ({listed}) without saying anything about them. "
        "State the claim in full sentences: what causes what, and why."
    )


def write_feedback(
    verdict: Verdict,
    covered: Sequence[PointMatch],
    missed: Sequence[PointMatch],
    uncertain: Sequence[PointMatch],
    misconceptions: Sequence[MisconceptionMatch],
    contradicted: Sequence[PointMatch] = (),
) -> str:
    """One line per problem, most important first; a short confirmation when there is none."""
    total = len(covered) + len(missed) + len(uncertain) + len(contradicted)
    lines = [f"You covered {len(covered)} of {total} key points."]
    for m in misconceptions:
        why = m.misconception.feedback or f"that is a common misconception ({m.misconception.text})."
        lines.append(f"You said {_quote(m.clause)}, but {why[0].lower() + why[1:]}")
    for p in contradicted:
        lines.append(f"You said {_quote(p.clause)}, which reads as a wrong version of a key point: {p.point.text}.")
    for p in uncertain:
        lines.append(
            f"You said {_quote(p.clause)}, which seems to deny a key point: {p.point.text}. "
            "If you meant that it holds, say so without the negation; if you meant that it does not, check it."
        )
    for p in sorted(missed, key=lambda p: -p.point.weight):
        lines.append(f"You did not mention: {p.point.text}.")
    if verdict == "correct" and len(lines) == 1:
        lines.append("Everything the rubric asks for is there.")
    return "\n".join(lines)
