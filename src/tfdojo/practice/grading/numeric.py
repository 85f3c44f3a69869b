"""Numeric answers: read a number with its unit from free text, and grade it against a calculator's result.

The expected value is never typed into the bank: it is computed by a calculator of ``tfdojo.calc.claims`` each
time, and the derivation it reports (formula, numbers, value) is the feedback. Rules:

* one number per answer; with working shown, the answer is what follows the last "=" (or "≈", "→");
* units must measure the same kind of thing as the result (bytes, FLOP, params, tokens, seconds, …); any prefix
  is fine (GB = 10^9 bytes, GiB = 2^30 bytes); a per-token result may be stated as the amount ("2.1e9 FLOPs");
  a bare number is read in the result's unit;
* correct within the question's relative tolerance, close within three times it, incorrect beyond.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from tfdojo.calc.result import Result
from tfdojo.errors import AnswerParseError
from tfdojo.practice.grading.units import UNIT_PATTERN, parse_unit, unit_from_match
from tfdojo.practice.schema import NumericAnswer

SCALE_WORDS = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "bn": 1e9, "trillion": 1e12}
SCALE_LETTERS = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "b": 1e9, "T": 1e12}
CLOSE_FACTOR = 3.0  # "close" reaches this many tolerances
SCORES = {"correct": 1.0, "close": 0.5, "incorrect": 0.0}

_NUMBER = re.compile(
    r"(?<![\w.^])(?<!\w-)"  # not inside an identifier such as Llama-2-70B, H100 or fp16
    r"(?P<sign>[-+−])?"
    r"(?:(?P<base>\d+(?:\.\d+)?)\s*(?:\^|\*\*)\s*(?P<exp>[-+]?\d+)"  # 2^30
    r"|(?P<numerator>\d+)\s*/\s*(?P<denominator>\d+)(?![\d.])"  # 7/39
    r"|(?P<mantissa>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+)(?P<e>[eE][-+]?\d+)?"
    r"(?:\s*[×x*·]\s*10\s*(?:\^|\*\*)\s*(?P<pow10>[-+]?\d+))?)"  # 2.5 × 10^9
    r"(?:\s*(?P<scale>(?i:thousand|million|billion|trillion|bn)|[kKMBbT])(?![A-Za-z]))?"
    rf"(?:[\s-]*(?:{UNIT_PATTERN}))?"
    r"(?!\w)"
)
_FINAL_ANSWER = re.compile(r"[=≈→]")


@dataclass(frozen=True)
class Quantity:
    """A number read from an answer: its value in base units (bytes, FLOP, s, …), the kind of unit, the text read.

    ``kind`` is None for a bare number, which is read in the unit of whatever it is compared with.
    """

    value: float
    kind: str | None
    text: str


def _number(m: re.Match[str]) -> float:
    if m["base"]:
        value = float(m["base"]) ** int(m["exp"])
    elif m["numerator"]:
        if int(m["denominator"]) == 0:
            raise AnswerParseError(f"{m.group(0).strip()!r} divides by zero; give the number itself")
        value = int(m["numerator"]) / int(m["denominator"])
    else:
        value = float(m["mantissa"].replace(",", "") + (m["e"] or ""))
        if m["pow10"]:
            value *= 10.0 ** int(m["pow10"])
    return -value if m["sign"] in ("-", "−") else value


def _scale(word: str | None) -> float:
    if not word:
        return 1.0
    return SCALE_WORDS.get(word.lower()) or SCALE_LETTERS[word]


def _quantity(m: re.Match[str]) -> Quantity:
    unit = unit_from_match(m.groupdict())
    value = _number(m) * _scale(m["scale"]) * (unit.factor if unit else 1.0)
    return Quantity(value, unit.kind if unit else None, m.group(0).strip())


def parse_quantity(text: str) -> Quantity:
    """The one number in ``text`` with its unit and scale ("2.5 GiB", "1.4T tokens", "6.7 billion", "12 %").

    Raises AnswerParseError when there is no number, or several (unless the answer ends with "= value").
    """
    pieces = _FINAL_ANSWER.split(text)
    tail = pieces[-1] if pieces[-1].strip() else text
    found = [_quantity(m) for m in _NUMBER.finditer(tail)]
    if not found:
        raise AnswerParseError(
            f"no number found in {text.strip()!r}; answer with one number and a unit, e.g. '2.5 GiB' or '7B params'"
        )
    if len(found) > 1:
        listed = ", ".join(repr(q.text) for q in found)
        raise AnswerParseError(
            f"found {len(found)} numbers ({listed}); give one number, or end your working with '= <answer>'"
        )
    return found[0]


@dataclass(frozen=True)
class NumericGrade:
    """The verdict on a numeric answer, the number expected (with its unit) and the derivation that produced it."""

    verdict: Literal["correct", "close", "incorrect"]
    score: float
    expected: float
    unit: str
    given: Quantity
    relative_error: float | None  # None when the units do not match
    tolerance: float
    derivation: str
    feedback: str


def format_number(x: float) -> str:
    """A number as a person writes it: digit groups for big whole numbers, four significant figures otherwise."""
    if 1e4 <= abs(x) < 1e15 and abs(x - round(x)) < 1e-6 * abs(x):
        return f"{x:,.0f}"
    return f"{x:.4g}"


def describe_value(value: float, unit: str) -> str:
    """The value with its unit, and for bytes also in GB and GiB (the two answers people confuse)."""
    text = f"{format_number(value)} {unit}".strip()
    if parse_unit(unit).kind == "bytes" and abs(value) >= 1e6:
        text += f" ({value / 1e9:.3g} GB = {value / 2**30:.3g} GiB)"
    return text


def render_derivation(result: Result) -> str:
    """The Result's steps as lines of working (what: formula = numbers = value), then its assumptions."""
    lines = [f"{result.name}:"]
    for step in result.steps:
        lines.append(f"  {step.what}: {step.formula} = {step.substituted} = {describe_value(step.value, step.unit)}")
    lines += [f"  assuming {a}" for a in result.assumptions]
    return "\n".join(lines)


def _part_unit(result: Result, value: float) -> str:
    """The unit of a breakdown entry: that of the step that computed the same value, else the result's."""
    for step in result.steps:
        if step.unit and abs(step.value - value) <= 1e-9 * max(abs(value), 1e-300):
            return step.unit
    return result.unit


def units_agree(given_kind: str, expected_kind: str) -> bool:
    """Same kind of quantity; a per-token quantity may be stated as the amount ("2.1e9 FLOPs" per token)."""
    return given_kind == expected_kind or expected_kind == f"{given_kind}/token"


def grade_numeric(numeric_answer: NumericAnswer, answer_text: str) -> NumericGrade:
    """Grade a numeric answer: run the question's calculator, compare within its tolerance, explain the working."""
    from tfdojo.calc.claims import Call

    result, expected = Call(numeric_answer.call, dict(numeric_answer.args), numeric_answer.part).run()
    unit = result.unit if numeric_answer.part is None else _part_unit(result, expected)
    given = parse_quantity(answer_text)
    expected_kind = parse_unit(unit).kind
    derivation = render_derivation(result)
    tolerance = numeric_answer.tolerance
    want = f"Expected {describe_value(expected, unit)}, within {tolerance:.0%}."
    if given.kind is not None and not units_agree(given.kind, expected_kind):
        feedback = f"Your answer {given.text!r} is in {given.kind}, but this question asks for {expected_kind}. {want}"
        feedback += "\n" + derivation
        return NumericGrade("incorrect", 0.0, expected, unit, given, None, tolerance, derivation, feedback)
    relative_error = abs(given.value - expected) / abs(expected) if expected else abs(given.value)
    slack = 1 + 1e-12  # a value on the boundary, up to rounding, is inside it
    if relative_error <= tolerance * slack:
        verdict: Literal["correct", "close", "incorrect"] = "correct"
    elif relative_error <= CLOSE_FACTOR * tolerance * slack:
        verdict = "close"
    else:
        verdict = "incorrect"
    feedback = f"{verdict.capitalize()}: you said {given.text!r}, off by {relative_error:.1%}. {want}\n{derivation}"
    score = SCORES[verdict]
    return NumericGrade(verdict, score, expected, unit, given, relative_error, tolerance, derivation, feedback)
