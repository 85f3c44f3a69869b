"""The bank as an Anki deck (``.apkg`` via genanki): front = the prompt, back = the short answer and explanation.

Model and deck ids are fixed numbers and each note's guid comes from its question id, so re-importing a newer
export into Anki updates the notes instead of duplicating them. Tags: section, type, difficulty, and ``grill``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

import genanki

from tfdojo.errors import ProgressError
from tfdojo.practice.schema import SECTIONS, Question

MODEL_ID = 1_718_204_011  # fixed forever: Anki matches note types by id
DECK_ID = 1_718_204_029
DECK_NAME = "tfdojo — Transformer interview questions"

MODEL = genanki.Model(
    MODEL_ID,
    "tfdojo question",
    fields=[{"name": "Question"}, {"name": "Answer"}, {"name": "Section"}, {"name": "Id"}],
    templates=[
        {
            "name": "Card 1",
            "qfmt": "<div class=section>{{Section}}</div>{{Question}}",
            "afmt": "{{FrontSide}}<hr id=answer>{{Answer}}",
        }
    ],
    css=".card { font-family: sans-serif; font-size: 18px; text-align: left; } .section { color: #888; }",
)


def _html(text: str) -> str:
    """Plain text as HTML: escaped, with paragraphs and line breaks kept."""
    return html.escape(text.strip()).replace("\n\n", "<br><br>").replace("\n", "<br>")


def note_for(question: Question) -> genanki.Note:
    """One note per question; the guid is derived from the question id."""
    back = f"<b>{_html(question.short_answer)}</b><br><br>{_html(question.explanation)}"
    tags = [question.section, question.type, question.difficulty] + (["grill"] if question.grill else [])
    return genanki.Note(
        model=MODEL,
        fields=[_html(question.prompt), back, html.escape(SECTIONS[question.section]), question.id],
        tags=tags,
        guid=genanki.guid_for("tfdojo", question.id),
    )


def export_anki(questions: Iterable[Question], path: Path) -> int:
    """Write the questions to an ``.apkg`` file; returns how many notes it holds."""
    deck = genanki.Deck(DECK_ID, DECK_NAME)
    for q in questions:
        deck.add_note(note_for(q))
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        genanki.Package(deck).write_to_file(str(path))
    except OSError as e:
        raise ProgressError(f"cannot write the Anki deck to {path}: {e}") from None
    return len(deck.notes)
