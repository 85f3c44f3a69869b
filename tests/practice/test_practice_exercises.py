"""Exercises 1-10: the reference passes every hidden test, the starter fails cleanly, every mutant is caught.

Each exercise's reference, starter and mutants are graded in ONE sandboxed process (``grade_many``), two exercises
at a time, so the file costs about ten torch imports.
"""

import ast
from concurrent.futures import ThreadPoolExecutor

import pytest

from tfdojo.practice.code import exercise_ids, grade_many, load_exercise
from tfdojo.practice.loader import BANK_DIR, parse_bank_file

EXERCISES = [
    "multi-head-attention",
    "causal-mask",
    "rope",
    "alibi",
    "rmsnorm",
    "layernorm",
    "swiglu",
    "sinusoidal-positions",
    "gqa-repeat-kv",
    "kv-cache-decode-step",
]


@pytest.fixture(scope="module")
def graded():
    """exercise id -> {"solution": grade, "starter": grade, "mutant:<name>": grade}."""

    def run(exercise_id):
        ex = load_exercise(exercise_id)
        names = ["solution", "starter", *(f"mutant:{m}" for m in ex.mutants)]
        sources = [ex.solution, ex.starter, *ex.mutants.values()]
        return exercise_id, dict(zip(names, grade_many(ex, sources), strict=True))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, EXERCISES))


def test_exercises_are_discovered() -> None:
    assert set(EXERCISES) <= set(exercise_ids())


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_folder_is_complete(exercise_id) -> None:
    ex = load_exercise(exercise_id)
    assert len(ex.mutants) >= 2, "each exercise needs at least two mutants"
    assert len(ex.statement) > 200
    defined = {n.name for n in ast.parse(ex.starter).body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    assert set(ex.spec.entry) <= defined, "the starter defines every entry point"
    assert "tfdojo" in ex.forbidden


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
    survivors = [name for name, g in mutants.items() if g.verdict != "failed" or all(t.ok for t in g.tests)]
    assert not survivors, f"mutants that no hidden test catches: {survivors}"


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_bank_has_a_coding_question(exercise_id) -> None:
    questions = {q.id: q for q in parse_bank_file(BANK_DIR / "coding-1.toml")}
    question = questions[exercise_id]
    assert question.type == "coding"
    assert question.section == load_exercise(exercise_id).spec.section
