"""The practice trainer: the question bank, graders, spaced repetition and sessions."""

from tfdojo.practice.code import CodeGrade, grade_code
from tfdojo.practice.grading.free_text import grade_free_text
from tfdojo.practice.grading.grade import Grade
from tfdojo.practice.grading.numeric import grade_numeric, parse_quantity
from tfdojo.practice.loader import Bank, load_bank
from tfdojo.practice.rubric import KeyPoint, Misconception, Rubric
from tfdojo.practice.schema import Question

__all__ = [
    "Bank",
    "CodeGrade",
    "Grade",
    "KeyPoint",
    "Misconception",
    "Question",
    "Rubric",
    "grade_code",
    "grade_free_text",
    "grade_numeric",
    "load_bank",
    "parse_quantity",
]
