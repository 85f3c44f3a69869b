"""The practice trainer: the question bank, graders, spaced repetition and sessions."""

from tfdojo.practice.grading.numeric import grade_numeric, parse_quantity
from tfdojo.practice.loader import Bank, load_bank
from tfdojo.practice.rubric import KeyPoint, Misconception, Rubric
from tfdojo.practice.schema import Question

__all__ = [
    "Bank",
    "KeyPoint",
    "Misconception",
    "Question",
    "Rubric",
    "grade_numeric",
    "load_bank",
    "parse_quantity",
]
