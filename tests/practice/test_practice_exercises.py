"""Coding exercises: every folder is complete and keeps its mutants as small patches of the reference that compile
and still define the entry points; exercises 1-10 are also graded: the reference passes every hidden test, the
starter fails cleanly, every mutant is caught. ``mutants.toml`` patches that miss, repeat or change nothing are
refused by name, and the drill's model-answer card lists what the mutants model.

Each graded exercise's reference, starter and mutants share ONE judge and ONE jailed worker (``grade_many``), two
exercises at a time, so the file costs two torch imports per exercise; everything else only reads files.
"""

import ast
import io
import json
import tomllib
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from rich.console import Console

from tfdojo.errors import ExerciseError
from tfdojo.practice import terminal
from tfdojo.practice.code import exercise_ids, grade_many, load_exercise
from tfdojo.practice.code.exercises import EXERCISES_DIR, load_exercise_dir
from tfdojo.practice.code.mutants import read_mutants
from tfdojo.practice.loader import BANK_DIR, parse_bank_file
from tfdojo.practice.session import Outcome

EXERCISES = exercise_ids()  # all of them: issue 5 asks CI to prove every reference and every mutant
SOLUTION = "def f(x):\n    return x + 1\n\n\ndef g(x):\n    return x + 1\n"


@pytest.fixture(scope="module")
def graded():
    """exercise id -> {"solution": grade, "starter": grade, "mutant:<name>": grade}."""

    def run(exercise_id):
        ex = load_exercise(exercise_id)
        names = ["solution", "starter", *(f"mutant:{m.name}" for m in ex.mutants)]
        sources = [ex.solution, ex.starter, *(m.source for m in ex.mutants)]
        return exercise_id, dict(zip(names, grade_many(ex, sources), strict=True))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, EXERCISES))


def defined_names(source: str) -> set[str]:
    """The top-level functions and classes a module defines."""
    return {n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef | ast.ClassDef)}


def test_all_25_exercises_are_discovered() -> None:
    assert len(EXERCISES) >= 25
    assert len(exercise_ids()) >= 25


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_folder_is_complete(exercise_id) -> None:
    ex = load_exercise(exercise_id)
    assert len(ex.mutants) >= 2, "each exercise needs at least two mutants"
    assert len(ex.statement) > 200
    assert set(ex.spec.entry) <= defined_names(ex.starter), "the starter defines every entry point"
    assert set(ex.spec.entry) <= defined_names(ex.solution), "the solution defines every entry point"
    assert "tfdojo" in ex.forbidden
    assert not (ex.path / "mutants").exists(), "mutants live in mutants.toml, not as copies of the solution"


@pytest.mark.parametrize("exercise_id", exercise_ids())
def test_mutants_are_compiling_patches_with_a_reason(exercise_id) -> None:
    ex = load_exercise(exercise_id)
    raw = tomllib.loads((ex.path / "mutants.toml").read_text(encoding="utf-8"))["mutant"]
    assert [m.name for m in ex.mutants] == [m["name"] for m in raw]
    for mutant, table in zip(ex.mutants, raw, strict=True):
        assert mutant.source != ex.solution, f"{mutant.name} is the solution"
        compile(mutant.source, f"{exercise_id}:{mutant.name}", "exec")
        assert set(ex.spec.entry) <= defined_names(mutant.source), f"{mutant.name} lost an entry point"
        assert len(ex.solution.splitlines()) - len(mutant.source.splitlines()) < 10, f"{mutant.name} is no patch"
        assert all(hunk["old"] in ex.solution for hunk in table["replace"])
        assert mutant.why == table["why"] and mutant.why.endswith(".") and "\n" not in mutant.why


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_reference_solution_passes(graded, exercise_id) -> None:
    grade = graded[exercise_id]["solution"]
    assert grade.verdict == "passed", grade.feedback
    assert grade.tests and all(t.ok for t in grade.tests)


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_starter_fails_as_not_implemented(graded, exercise_id) -> None:
    grade = graded[exercise_id]["starter"]
    assert grade.verdict == "failed", grade.feedback
    assert not any(t.ok for t in grade.tests)
    assert all("not implemented" in t.message for t in grade.tests)


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_every_mutant_fails_a_hidden_test(graded, exercise_id) -> None:
    mutants = {name: g for name, g in graded[exercise_id].items() if name.startswith("mutant:")}
    assert len(mutants) == len(load_exercise(exercise_id).mutants)
    survivors = [name for name, g in mutants.items() if g.verdict != "failed" or all(t.ok for t in g.tests)]
    assert not survivors, f"mutants that no hidden test catches: {survivors}"


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_bank_has_a_coding_question(exercise_id) -> None:
    questions = {q.id: q for path in sorted(BANK_DIR.glob("*.toml")) for q in parse_bank_file(path)}
    question = questions[exercise_id]
    assert question.type == "coding"
    assert question.section == load_exercise(exercise_id).spec.section


def toy_exercise(tmp_path, hunks: list[tuple[str, str]], why: str = "Adding one was the task, not subtracting it."):
    """A minimal exercise folder around SOLUTION with one mutant made of the given (old, new) hunks."""
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "exercise.toml").write_text(
        'title = "Toy"\nsection = "attention-maths"\ndifficulty = "easy"\nminutes = 1\nentry = ["f", "g"]\n'
    )
    for name, text in [("statement.md", "Add one.\n"), ("starter.py", ""), ("hidden_test.py", "")]:
        (folder / name).write_text(text)
    (folder / "solution.py").write_text(SOLUTION)
    tables = [f'[[mutant]]\nname = "minus"\nwhy = {json.dumps(why)}\n']  # JSON strings are TOML basic strings
    tables += [f"[[mutant.replace]]\nold = {json.dumps(old)}\nnew = {json.dumps(new)}\n" for old, new in hunks]
    (folder / "mutants.toml").write_text("\n".join(tables))
    return load_exercise_dir(folder)


def test_mutant_source_is_the_solution_with_its_hunks_applied(tmp_path) -> None:
    ex = toy_exercise(tmp_path, [("def g(x):\n    return x + 1", "def g(x):\n    return x - 1"), ("f(x)", "f(y)")])
    (mutant,) = ex.mutants
    assert mutant.name == "minus" and mutant.why == "Adding one was the task, not subtracting it."
    assert mutant.source == "def f(y):\n    return x + 1\n\n\ndef g(x):\n    return x - 1\n"


@pytest.mark.parametrize(
    ("hunks", "problem"),
    [
        ([("f(x)", "f(y)"), ("return x + 2", "return x")], r"mutant 'minus', hunk 2: its old text does not occur"),
        ([("    return x + 1\n", "    return x\n")], r"mutant 'minus', hunk 1: its old text occurs more than once"),
        ([("def g(x):", "def g(x):")], r"mutant 'minus': the hunks leave solution.py unchanged"),
        ([("g(x):\n    return x", "g"), ("def g", "def h")], r"mutant 'minus': two hunks overlap"),
    ],
)
def test_bad_hunks_are_refused_by_file_mutant_and_hunk(tmp_path, hunks, problem) -> None:
    ex = toy_exercise(tmp_path, hunks)
    with pytest.raises(ExerciseError, match=r"toy/mutants\.toml: " + problem):
        read_mutants(ex.path, ex.solution)


def test_a_mutant_without_a_reason_is_refused(tmp_path) -> None:
    ex = toy_exercise(tmp_path, [("f(x)", "f(y)")], why="")
    with pytest.raises(ExerciseError, match=r"mutants\.toml: mutant\.0\.why"):
        read_mutants(ex.path, ex.solution)


def test_drill_card_lists_what_the_mutants_model(monkeypatch) -> None:
    question = next(q for q in parse_bank_file(BANK_DIR / "coding-1.toml") if q.id == "causal-mask")
    console = Console(file=io.StringIO(), width=500, record=True)  # wide enough that no sentence wraps
    monkeypatch.setattr(terminal, "out", console)
    terminal.show_result(SimpleNamespace(question=question, outcome=Outcome("incorrect", 0.0, "0/5 tests pass")))
    card = console.export_text()
    written = tomllib.loads((EXERCISES_DIR / "causal-mask" / "mutants.toml").read_text(encoding="utf-8"))["mutant"]
    assert "Common mistakes this exercise checks:" in card
    assert all(m["why"] in card for m in written)
