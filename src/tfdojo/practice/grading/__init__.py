"""Graders of the practice trainer: free text against a rubric (MiniLM clause matching with a negation guard)."""

from tfdojo.practice.grading.clauses import Clause, split_clauses
from tfdojo.practice.grading.free_text import DEFAULT_THRESHOLDS, Thresholds, grade_free_text, warm_rubric
from tfdojo.practice.grading.grade import Grade, MisconceptionMatch, PointMatch, Verdict

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Clause",
    "Grade",
    "MisconceptionMatch",
    "PointMatch",
    "Thresholds",
    "Verdict",
    "grade_free_text",
    "split_clauses",
    "warm_rubric",
]
