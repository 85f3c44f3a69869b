"""Coding exercises: the folder format, the static forbidden-API check, the judge and the jailed worker, the grader."""

from tfdojo.practice.code.exercises import Exercise, ExerciseSpec, exercise_ids, load_exercise
from tfdojo.practice.code.grade import CodeGrade, TestResult, grade_code, grade_many

__all__ = [
    "CodeGrade",
    "Exercise",
    "ExerciseSpec",
    "TestResult",
    "exercise_ids",
    "grade_code",
    "grade_many",
    "load_exercise",
]
