"""Loading the question bank: every TOML file under ``practice/bank/``, validated, with errors that name the spot."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydantic import ValidationError

from tfdojo.errors import BankError
from tfdojo.practice.schema import Question

BANK_DIR = Path(__file__).parent / "bank"


@dataclass(frozen=True)
class Bank:
    """The questions in file order, with lookup by id and simple filters."""

    questions: tuple[Question, ...]

    def __iter__(self) -> Iterator[Question]:
        return iter(self.questions)

    def __len__(self) -> int:
        return len(self.questions)

    def __getitem__(self, question_id: str) -> Question:
        for q in self.questions:
            if q.id == question_id:
                return q
        raise BankError(f"no question with id {question_id!r} in the bank ({len(self)} questions)")

    def filter(
        self,
        *,
        sections: Iterable[str] = (),
        types: Iterable[str] = (),
        difficulties: Iterable[str] = (),
        grill: bool | None = None,
    ) -> Bank:
        """The questions matching every given filter (an empty filter matches all)."""
        sections, types, difficulties = set(sections), set(types), set(difficulties)
        return Bank(
            tuple(
                q
                for q in self.questions
                if (not sections or q.section in sections)
                and (not types or q.type in types)
                and (not difficulties or q.difficulty in difficulties)
                and (grill is None or q.grill == grill)
            )
        )

    @property
    def grill(self) -> Bank:
        """The core questions flagged for the grill."""
        return self.filter(grill=True)


def _field_path(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "(top level)"


def parse_bank_file(path: Path) -> list[Question]:
    """The questions of one TOML file (``[[question]]`` tables); BankError names the file, question and field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise BankError(f"{path}: cannot read the bank file ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise BankError(f"{path}: not valid TOML ({e})") from None
    unknown = set(data) - {"question"}
    if unknown:
        raise BankError(f"{path}: unknown top-level keys {sorted(unknown)}; questions go in [[question]] tables")
    questions = []
    for index, raw in enumerate(data.get("question", [])):
        name = raw.get("id", f"#{index + 1}") if isinstance(raw, dict) else f"#{index + 1}"
        try:
            questions.append(Question.model_validate(raw))
        except ValidationError as e:
            problems = "; ".join(f"{_field_path(err['loc'])}: {err['msg']}" for err in e.errors()[:5])
            raise BankError(f"{path}: question {name!r}: {problems}") from None
    return questions


def load_bank_from(folder: Path) -> Bank:
    """Every ``*.toml`` in ``folder`` (sorted by name); ids must be unique across files."""
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise BankError(f"{folder}: no question files (*.toml) found")
    seen: dict[str, Path] = {}
    questions: list[Question] = []
    for path in files:
        for q in parse_bank_file(path):
            if q.id in seen:
                raise BankError(f"{path}: question id {q.id!r} is already used in {seen[q.id]}")
            seen[q.id] = path
            questions.append(q)
    return Bank(tuple(questions))


@cache
def load_bank() -> Bank:
    """The bundled bank (cached: it is read once per process)."""
    return load_bank_from(BANK_DIR)
