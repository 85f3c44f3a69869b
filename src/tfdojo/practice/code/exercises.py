"""Coding-exercise folders: discovery under ``practice/exercises/`` and the validated ``exercise.toml`` schema."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from tfdojo.errors import ExerciseError
from tfdojo.practice.code.forbidden import ALWAYS_FORBIDDEN
from tfdojo.practice.code.mutants import Mutant, read_mutants
from tfdojo.practice.code.tomlfile import read_toml_model
from tfdojo.practice.schema import Difficulty, Section

EXERCISES_DIR = Path(__file__).resolve().parent.parent / "exercises"
EXERCISE_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
REQUIRED_FILES = ("exercise.toml", "statement.md", "starter.py", "solution.py", "hidden_test.py")


class ExerciseSpec(BaseModel):
    """The contents of ``exercise.toml``: what the exercise is and the limits its submissions run under."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=3)
    section: Section
    difficulty: Difficulty
    minutes: int = Field(ge=1, le=120)
    entry: tuple[str, ...] = Field(min_length=1, description="functions or classes the submission must define")
    forbidden: tuple[str, ...] = ()
    time_limit_s: float = Field(default=20.0, gt=0, le=300, description="CPU seconds for the hidden tests")
    memory_mb: int = Field(default=1024, ge=64, le=65536, description="memory budget on top of torch's own")


@dataclass(frozen=True)
class Exercise:
    """One exercise folder: its spec, statement, starter, reference solution, hidden tests and mutants."""

    id: str
    path: Path
    spec: ExerciseSpec

    @property
    def forbidden(self) -> tuple[str, ...]:
        """The exercise's forbidden names plus those forbidden everywhere (``tfdojo``)."""
        return tuple(dict.fromkeys((*ALWAYS_FORBIDDEN, *self.spec.forbidden)))

    @property
    def statement(self) -> str:
        """The task as Markdown."""
        return (self.path / "statement.md").read_text(encoding="utf-8")

    @property
    def starter(self) -> str:
        """The code a person starts from (signatures raising NotImplementedError)."""
        return (self.path / "starter.py").read_text(encoding="utf-8")

    @property
    def solution(self) -> str:
        """The reference solution, which passes every hidden test."""
        return (self.path / "solution.py").read_text(encoding="utf-8")

    @property
    def hidden_tests(self) -> Path:
        """The file of ``test_*(sub)`` functions run against a submission."""
        return self.path / "hidden_test.py"

    @property
    def mutants(self) -> tuple[Mutant, ...]:
        """Plausible wrong solutions (patches of the reference in ``mutants.toml``); each must fail a hidden test."""
        return read_mutants(self.path, self.solution)


def read_spec(path: Path) -> ExerciseSpec:
    """The validated ``exercise.toml`` of one folder; ExerciseError names the file and the field otherwise."""
    return read_toml_model(path / "exercise.toml", ExerciseSpec)


def load_exercise_dir(path: Path) -> Exercise:
    """An exercise from any folder in the format (the folder name is its id); checks the required files exist."""
    path = Path(path).resolve()
    if not EXERCISE_ID.match(path.name):
        raise ExerciseError(f"{path}: the folder name is the exercise id and must be a lowercase slug like 'rope'")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ExerciseError(f"{path}: missing {', '.join(missing)}; every exercise folder needs {REQUIRED_FILES}")
    return Exercise(id=path.name, path=path, spec=read_spec(path))


def exercise_ids() -> list[str]:
    """The ids of the bundled exercises (folders under ``practice/exercises/``), sorted."""
    if not EXERCISES_DIR.is_dir():
        return []
    return sorted(p.name for p in EXERCISES_DIR.iterdir() if p.is_dir() and (p / "exercise.toml").is_file())


@cache
def load_exercise(exercise_id: str) -> Exercise:
    """The bundled exercise with this id; ExerciseError listing the known ids otherwise."""
    path = EXERCISES_DIR / exercise_id
    if not EXERCISE_ID.match(exercise_id) or not path.is_dir():
        known = ", ".join(exercise_ids()) or "none"
        raise ExerciseError(f"no coding exercise {exercise_id!r}; known exercises: {known}")
    return load_exercise_dir(path)
