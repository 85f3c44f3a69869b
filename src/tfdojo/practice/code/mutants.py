"""Mutants: plausible wrong solutions, kept as small patches of the reference in ``mutants.toml``.

Each ``[[mutant]]`` has a ``name``, a ``why`` (the classic mistake it models, for a learner) and one or more
``[[mutant.replace]]`` hunks. Every hunk's ``old`` must occur exactly once in ``solution.py``, so a hunk can never
land in the wrong place after the solution is edited: it fails loudly instead, and so does a patch that changes
nothing. The hunks are matched against the solution as written and must not overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tfdojo.errors import ExerciseError
from tfdojo.practice.code.tomlfile import read_toml_model

MUTANTS_FILE = "mutants.toml"


class Replacement(BaseModel):
    """One hunk: ``old``, text that occurs exactly once in the solution, becomes ``new``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    old: str = Field(min_length=1)
    new: str


class MutantSpec(BaseModel):
    """One ``[[mutant]]`` table: its name, the mistake it models, and the hunks that introduce it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9]+(_[a-z0-9]+)*$", description="a snake_case name for the mistake")
    why: str = Field(min_length=20, description="one sentence for a learner: the classic mistake it models")
    replace: tuple[Replacement, ...] = Field(min_length=1)


class MutantsFile(BaseModel):
    """The whole ``mutants.toml``: one or more mutants with distinct names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mutant: tuple[MutantSpec, ...] = Field(min_length=1)

    @field_validator("mutant")
    @classmethod
    def _distinct_names(cls, mutants: tuple[MutantSpec, ...]) -> tuple[MutantSpec, ...]:
        names = [m.name for m in mutants]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"mutant names must be distinct; repeated: {', '.join(repeated)}")
        return mutants


@dataclass(frozen=True)
class Mutant:
    """A wrong solution: its name, the mistake it models, and its full source (the patched reference)."""

    name: str
    why: str
    source: str


def _excerpt(text: str) -> str:
    """The first non-blank line of a hunk, to point a person at it."""
    return next((line.strip() for line in text.splitlines() if line.strip()), text)[:80]


def apply_replacements(solution: str, replacements: Sequence[Replacement], where: str) -> str:
    """The solution with every hunk applied; ExerciseError (prefixed by ``where``) for a hunk that is missing,
    ambiguous or overlaps another, or a patch that leaves the source unchanged."""
    spans: list[tuple[int, int, str]] = []
    for number, hunk in enumerate(replacements, start=1):
        start = solution.find(hunk.old)
        again = solution.find(hunk.old, start + 1) if start >= 0 else -1
        if start < 0 or again >= 0:
            found = "does not occur" if start < 0 else "occurs more than once"
            raise ExerciseError(
                f"{where}, hunk {number}: its old text {found} in solution.py ({_excerpt(hunk.old)!r}); it must "
                "match exactly one place: copy it from solution.py, with enough surrounding lines to be unique"
            )
        spans.append((start, start + len(hunk.old), hunk.new))
    spans.sort()
    pieces, cursor = [], 0
    for start, end, new in spans:
        if start < cursor:
            raise ExerciseError(f"{where}: two hunks overlap at offset {start}; merge them into one")
        pieces += [solution[cursor:start], new]
        cursor = end
    patched = "".join(pieces) + solution[cursor:]
    if patched == solution:
        raise ExerciseError(f"{where}: the hunks leave solution.py unchanged; a mutant must change the code")
    return patched


def read_mutants(folder: Path, solution: str) -> tuple[Mutant, ...]:
    """The mutants of an exercise folder (none without ``mutants.toml``), each built by patching the solution."""
    file = folder / MUTANTS_FILE
    if not file.is_file():
        return ()
    spec = read_toml_model(file, MutantsFile)
    return tuple(
        Mutant(m.name, m.why, apply_replacements(solution, m.replace, f"{file}: mutant {m.name!r}"))
        for m in spec.mutant
    )
