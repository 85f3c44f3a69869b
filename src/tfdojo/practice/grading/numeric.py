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
from tfdojo.practice.grading.units import BINARY_PREFIX, UNIT_PATTERN, Unit, parse_unit, unit_from_match
from tfdojo.practice.schema import NumericAnswer

SCALE_WORDS = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "bn": 1e9, "trillion": 1e12}
SCALE_LETTERS = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9, "b": 1e9, "T": 1e12, "P": 1e15}
CLOSE_FACTOR = 3.0  # "close" reaches this many tolerances
SCORES = {"correct": 1.0, "close": 0.5, "incorrect": 0.0}
AGREE = 0.01  # several numbers within 1 % of each other are one answer said twice ("2.50 GiB (2,684,354,560 bytes)")
SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")
# words that may follow a number without being its unit ("2.5 GiB" is read; "2 for", "2 and" are not units)
_PLAIN = (
    "a about above after an and approx approximately are around as at be because below but by each for from "
    "give given i if in is it its just less like maybe more nearly of on or over per plus roughly since so than "
    "that the then this times to total under vs was we which with would"
)
PLAIN_WORDS = frozenset(_PLAIN.split())

_SEPARATED = r"\d{1,3}(?:[,_\u2009\u202f]\d{3})+(?:\.\d+)?"  # 2,147,483,648 · 2_147_483_648 · 2 147 483 648 (thin)
_NUMBER = re.compile(
    r"(?<![\w.^])(?<!\w-)"  # not inside an identifier such as Llama-2-70B, H100 or fp16
    r"(?P<sign>[-+−])?"
    r"(?:(?P<base>\d+(?:\.\d+)?)\s*(?:\^|\*\*)\s*(?P<exp>[-+]?\d+)"  # 2^30
    r"|(?P<numerator>\d+)\s*/\s*(?P<denominator>\d+)(?![\d.])"  # 7/39
    rf"|(?P<mantissa>{_SEPARATED}|\d+(?:\.\d*)?|\.\d+)(?P<e>[eE][-+]?\d+)?"
    r"(?:\s*[×x*·⋅]\s*10\s*(?:\^|\*\*)\s*(?P<pow10>[-+]?\d+))?)"  # 2.5 × 10^9, 2.147·10⁹
    r"(?:\s*(?P<scale>(?i:thousand|million|billion|trillion|bn)|[kKMGBbTP])(?![A-Za-z]))?"
    rf"(?:[\s-]*(?:{UNIT_PATTERN}))?"
)
_NEXT_WORD = re.compile(r"[\s-]*([^\W\d_][\w/]*)")
_FINAL_ANSWER = re.compile(r"[=≈→]")
_ASKED = re.compile(rf"\bin\s+(?:{UNIT_PATTERN})(?![A-Za-z])")


@dataclass(frozen=True)
class Quantity:
    """A number read from an answer: its value in base units (bytes, FLOP, s, …), the kind of unit, the text read.

    ``kind`` is None for a bare number, which is read in the unit of whatever it is compared with. ``plain`` is
    True for a bare number without a scale word ("2", "2.5e9", not "2 billion"): it may be read in the unit the
    question asks for. ``unknown_unit`` is a word after the number that is not a unit tfdojo reads.
    """

    value: float
    kind: str | None
    text: str
    plain: bool = False
    unknown_unit: str | None = None


def _superscripts_as_powers(text: str) -> str:
    """ "10⁹" → "10^9", "2³⁰" → "2^30": superscript digits become an exponent."""
    return re.sub(r"[⁺⁻]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+", lambda m: "^" + m.group(0).translate(SUPERSCRIPTS), text)


def _number(m: re.Match[str]) -> float:
    if m["base"]:
        value = float(m["base"]) ** int(m["exp"])
    elif m["numerator"]:
        if int(m["denominator"]) == 0:
            raise AnswerParseError(f"{m.group(0).strip()!r} divides by zero; give the number itself")
        value = int(m["numerator"]) / int(m["denominator"])
    else:
        value = float(re.sub(r"[,_\u2009\u202f]", "", m["mantissa"]) + (m["e"] or ""))
        if m["pow10"]:
            value *= 10.0 ** int(m["pow10"])
    return -value if m["sign"] in ("-", "−") else value


def _scale(word: str | None) -> float:
    if not word:
        return 1.0
    return SCALE_WORDS.get(word.lower()) or SCALE_LETTERS[word]


def _in_context(unit: Unit | None, scale: str | None, expects: str | None) -> tuple[Unit | None, str | None]:
    """Spellings whose meaning the question's dimension decides: B, a lone prefix letter, FLOPS.

    When the question asks for bytes, ``B`` is bytes ("2,147,483,648 B") and a lone prefix is binary, as
    ``ls -h`` writes it ("2G" = 2 GiB); elsewhere B is a billion and K/M/G/T are 10^3…10^12. ``FLOPS`` is a
    rate when the question asks for FLOP/s, else a count.
    """
    if unit is None and scale is not None and expects == "bytes":
        if scale in ("B", "b"):
            return Unit("bytes", 1.0), None
        if scale in BINARY_PREFIX or scale == "k":
            return Unit("bytes", BINARY_PREFIX[scale.upper()]), None
    if unit is not None and unit.alt_kind is not None and unit.alt_kind == expects:
        return Unit(unit.alt_kind, unit.factor), scale
    return unit, scale


def _unknown_word_after(m: re.Match[str], text: str) -> str | None:
    """The word right after a number without a unit, when it is not a plain English word ("gigs" in "2 gigs")."""
    follows = _NEXT_WORD.match(text, m.end())
    return follows.group(1) if follows and follows.group(1).lower() not in PLAIN_WORDS else None


def _quantity(m: re.Match[str], text: str, expects: str | None) -> Quantity:
    unit, scale = _in_context(unit_from_match(m.groupdict()), m["scale"], expects)
    value = _number(m) * _scale(scale) * (unit.factor if unit else 1.0)
    unknown = _unknown_word_after(m, text) if unit is None else None
    return Quantity(value, unit.kind if unit else None, m.group(0).strip(), unit is None and not scale, unknown)


def _one_answer(found: list[Quantity]) -> Quantity | None:
    """The quantity several numbers all state (same kind, values within :data:`AGREE`), else None."""
    kinds = {q.kind for q in found if q.kind is not None}
    values = [q.value for q in found]
    if len(kinds) > 1 or min(values) <= 0 or max(values) > min(values) * (1 + AGREE):
        return None
    return next((q for q in found if q.kind is not None), found[0])


def parse_quantity(text: str, expects: str | None = None) -> Quantity:
    """The one number in ``text`` with its unit and scale ("2.5 GiB", "1.4T tokens", "6.7 billion", "12 %").

    ``expects`` is the kind the question asks for ("bytes", "FLOP/s", …): it decides what ``B``, a lone prefix
    and ``FLOPS`` mean (see :func:`_in_context`). Raises AnswerParseError when there is no number, several
    different ones (unless the answer ends with "= value"), or a word after the number that is not a unit.
    """
    text = _superscripts_as_powers(text)
    pieces = _FINAL_ANSWER.split(text)
    tail = pieces[-1] if pieces[-1].strip() else text
    found = [_quantity(m, tail, expects) for m in _NUMBER.finditer(tail)]
    if not found:
        raise AnswerParseError(
            f"no number found in {text.strip()!r}; answer with one number and a unit, e.g. '2.5 GiB' or '7B params'"
        )
    answer = found[0] if len(found) == 1 else _one_answer(found)
    if answer is None:
        listed = ", ".join(repr(q.text) for q in found)
        raise AnswerParseError(
            f"found {len(found)} numbers ({listed}); give one number, or end your working with '= <answer>'"
        )
    if answer.unknown_unit is not None:
        raise AnswerParseError(
            f"{answer.unknown_unit!r} after {answer.text!r} is not a unit tfdojo reads; write e.g. GiB, GB, bytes, "
            "params, FLOPs, tokens/s, ms or % (see docs/practice.md)"
        )
    return answer


def asked_unit(prompt: str) -> str | None:
    """The unit a question's prompt asks the answer in ("… in GiB?", "Answer in FLOPs per token."), if it names one.

    A bare number in the answer is read in this unit; the last "in <unit>" of the prompt counts.
    """
    matches = list(_ASKED.finditer(prompt))
    return matches[-1].group(0)[2:].strip() if matches else None


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


def _reading(given: Quantity, asked: str | None, expected: float, expected_kind: str) -> tuple[float, str]:
    """The value a plain bare number stands for, and how it was read.

    A plain number is read in the unit the prompt asks for ("in GiB": 2 is 2 GiB) or in the result's base unit
    (2147483648 bytes), whichever is nearer the expected value: the two readings differ by the unit's factor, so
    they never compete for the same answer.
    """
    unit = parse_unit(asked) if asked and given.plain else None
    if unit is None or unit.factor == 1 or not units_agree(unit.kind, expected_kind):
        return given.value, ""
    in_asked = given.value * unit.factor
    if abs(in_asked - expected) <= abs(given.value - expected):
        return in_asked, f" (read as {format_number(given.value)} {asked})"
    return given.value, ""


def grade_numeric(numeric_answer: NumericAnswer, answer_text: str, asked: str | None = None) -> NumericGrade:
    """Grade a numeric answer: run the question's calculator, compare within its tolerance, explain the working.

    ``asked`` is the unit the prompt asks the answer in (see :func:`asked_unit`); a bare number may be read in it.
    AnswerParseError (nothing graded) when the answer has no number, several, or a unit tfdojo cannot read.
    """
    from tfdojo.calc.claims import Call

    result, expected = Call(numeric_answer.call, dict(numeric_answer.args), numeric_answer.part).run()
    unit = result.unit if numeric_answer.part is None else _part_unit(result, expected)
    expected_kind = parse_unit(unit).kind
    given = parse_quantity(answer_text, expects=expected_kind)
    derivation = render_derivation(result)
    tolerance = numeric_answer.tolerance
    want = f"Expected {describe_value(expected, unit)}, within {tolerance:.0%}."
    if given.kind is not None and not units_agree(given.kind, expected_kind):
        feedback = f"Your answer {given.text!r} is in {given.kind}, but this question asks for {expected_kind}. {want}"
        feedback += "\n" + derivation
        return NumericGrade("incorrect", 0.0, expected, unit, given, None, tolerance, derivation, feedback)
    value, read_as = _reading(given, asked, expected, expected_kind)
    relative_error = abs(value - expected) / abs(expected) if expected else abs(value)
    slack = 1 + 1e-12  # a value on the boundary, up to rounding, is inside it
    if relative_error <= tolerance * slack:
        verdict: Literal["correct", "close", "incorrect"] = "correct"
    elif relative_error <= CLOSE_FACTOR * tolerance * slack:
        verdict = "close"
    else:
        verdict = "incorrect"
    said = f"you said {given.text!r}{read_as}"
    feedback = f"{verdict.capitalize()}: {said}, off by {relative_error:.1%}. {want}\n{derivation}"
    score = SCORES[verdict]
    return NumericGrade(verdict, score, expected, unit, given, relative_error, tolerance, derivation, feedback)
