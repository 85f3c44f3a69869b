"""The bundled question bank as a whole: it loads, covers every section and type, and every link and number in it
points at something real; malformed bank files are refused with the file and the field named."""

from __future__ import annotations

import importlib
import math
import shlex
from pathlib import Path
from typing import Any, get_args

import pytest
import typer

import tfdojo.practice
from tfdojo.calc.claims import Call
from tfdojo.calc.cli import app as calc_app
from tfdojo.errors import BankError
from tfdojo.practice import load_bank
from tfdojo.practice.loader import load_bank_from
from tfdojo.practice.schema import SECTIONS, Question, QuestionType

REPO_ROOT = Path(__file__).resolve().parents[2]
EXERCISES_DIR = Path(tfdojo.practice.__file__).parent / "exercises"
MIN_QUESTIONS = 150
GRILL_QUESTIONS = 60
MIN_PER_SECTION = 8


def _bank_questions() -> tuple[Question, ...]:
    """Every bundled question, or none if the bank fails to load (test_bundled_bank_loads_and_is_complete says why)."""
    try:
        return tuple(load_bank())
    except BankError:
        return ()


QUESTIONS = _bank_questions()


def _links(kind: str) -> list[Any]:
    return [
        pytest.param(link.target, id=f"{q.id}:{link.target}")
        for q in QUESTIONS
        for link in q.links
        if link.kind == kind
    ]


def test_bundled_bank_loads_and_is_complete() -> None:
    bank = load_bank()  # raises BankError naming the file and field if any bundled file is malformed
    assert len(bank) >= MIN_QUESTIONS, f"the bank holds {len(bank)} questions"


def test_ids_are_unique() -> None:
    ids = [q.id for q in load_bank()]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


def test_every_section_has_enough_questions() -> None:
    bank = load_bank()
    counts = {section: len(bank.filter(sections=[section])) for section in SECTIONS}
    assert all(n >= MIN_PER_SECTION for n in counts.values()), counts


def test_every_question_type_appears() -> None:
    present = {q.type for q in load_bank()}
    assert present == set(get_args(QuestionType))


def test_grill_holds_exactly_the_core_questions() -> None:
    grill = [q.id for q in load_bank().grill]
    assert len(grill) == GRILL_QUESTIONS, f"{len(grill)} grill questions"


def _resolve(dotted: str) -> object:
    """The object at a dotted path: the longest importable module prefix, then attributes for the rest."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for name in parts[split:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(f"no importable prefix in {dotted!r}")


@pytest.mark.parametrize("target", _links("code"))
def test_code_links_resolve(target: str) -> None:
    assert _resolve(target) is not None


@pytest.mark.parametrize("kind", ["doc", "test", "bench"])
def test_path_links_exist(kind: str) -> None:
    targets = [(q.id, link.target) for q in QUESTIONS for link in q.links if link.kind == kind]
    missing = [f"{qid}: {target}" for qid, target in targets if not (REPO_ROOT / target).exists()]
    assert not missing


def _command_names(group: typer.Typer) -> set[str]:
    """Sub-command names as Typer exposes them (explicit name, else the function name with dashes)."""
    names = {c.name or c.callback.__name__.replace("_", "-") for c in group.registered_commands}
    return names | {g.name for g in group.registered_groups}


def _subgroup(name: str) -> typer.Typer | None:
    return next((g.typer_instance for g in calc_app.registered_groups if g.name == name), None)


@pytest.mark.parametrize("target", _links("calc"))
def test_calc_links_name_existing_commands(target: str) -> None:
    words = shlex.split(target)
    assert words[:2] == ["tfdojo", "calc"] and len(words) > 2, "a calc link is a `tfdojo calc <command> …` line"
    assert words[2] in _command_names(calc_app)
    group = _subgroup(words[2])
    if group is not None:
        assert len(words) > 3 and words[3] in _command_names(group)


@pytest.mark.parametrize("question", [pytest.param(q, id=q.id) for q in QUESTIONS if q.numeric is not None])
def test_numeric_answers_compute_to_a_positive_finite_value(question: Question) -> None:
    spec = question.numeric
    assert spec is not None
    _, value = Call(spec.call, spec.args, spec.part).run()
    assert math.isfinite(value) and value > 0


def test_coding_questions_have_an_exercise_folder() -> None:
    missing = [q.id for q in QUESTIONS if q.type == "coding" and not (EXERCISES_DIR / q.id).is_dir()]
    assert not missing


# ---------------------------------------------------------------- malformed bank files

VALID_QUESTION = """
[[question]]
id = "{id}"
section = "{section}"
type = "{type}"
difficulty = "easy"
minutes = 3
prompt = "What does a residual connection add to a sublayer?"
short_answer = "The sublayer's input, so the block computes x + F(x)."
explanation = "The identity path carries the signal and the gradient past every sublayer unchanged."
mistakes = ["Saying it replaces the input."]

[[question.sources]]
title = "He et al., Deep Residual Learning (2016)"
url = "https://arxiv.org/abs/1512.03385"

[[question.links]]
kind = "code"
target = "tfdojo.nn.blocks.PreNormBlock"
{numeric}
{rubric}
"""

RUBRIC = "\n[question.rubric]\n" + "".join(
    f'\n[[question.rubric.key_points]]\ntext = "Key point number {i}"\n' for i in range(1, 4)
)
TWO_KEY_POINTS = "\n[question.rubric]\n" + "".join(
    f'\n[[question.rubric.key_points]]\ntext = "Key point number {i}"\n' for i in range(1, 3)
)
NUMERIC = '\n[question.numeric]\ncall = "params"\nargs = { model = "gpt2" }\n'


def _question(
    question_id: str = "residual-adds-input",
    *,
    section: str = "norms-residuals",
    type: str = "conceptual",
    numeric: str = "",
    rubric: str = RUBRIC,
) -> str:
    return VALID_QUESTION.format(id=question_id, section=section, type=type, numeric=numeric, rubric=rubric)


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _refusal(folder: Path) -> str:
    """The BankError message for ``folder``, its path shortened to <tmp> so only the file names can match."""
    with pytest.raises(BankError) as info:
        load_bank_from(folder)
    return str(info.value).replace(str(folder), "<tmp>")


def test_a_valid_file_loads(tmp_path: Path) -> None:
    _write(tmp_path, "good.toml", _question() + _question("numeric-one", type="numeric", numeric=NUMERIC))
    bank = load_bank_from(tmp_path)
    assert [q.id for q in bank] == ["residual-adds-input", "numeric-one"]


def test_invalid_toml_is_refused_naming_the_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path, "broken.toml", _question().replace('difficulty = "easy"', "difficulty = easy"))
    message = _refusal(tmp_path)
    assert "broken.toml" in message and "line" in message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        pytest.param(_question(rubric=""), "rubric:", id="missing-rubric"),
        pytest.param(_question(section="positional-stuff"), "section:", id="wrong-section"),
        pytest.param(_question(rubric=TWO_KEY_POINTS), "key points", id="two-key-points"),
        pytest.param(_question(type="numeric"), "[numeric]", id="numeric-without-table"),
    ],
)
def test_a_bad_question_is_refused_naming_file_question_and_field(tmp_path: Path, text: str, field: str) -> None:
    _write(tmp_path, "bad.toml", text)
    message = _refusal(tmp_path)
    assert "bad.toml" in message and "residual-adds-input" in message and field in message


def test_a_duplicate_id_across_files_is_refused_naming_both_files(tmp_path: Path) -> None:
    _write(tmp_path, "first.toml", _question())
    _write(tmp_path, "second.toml", _question())
    message = _refusal(tmp_path)
    assert "first.toml" in message and "second.toml" in message and "residual-adds-input" in message
