"""Every claim's computed verdict equals its recorded one; docs/claims.md is the rendering of the data file."""

from pathlib import Path

import pytest

from tfdojo.calc.claims import evaluate, load_claims, parse_claims, render_markdown
from tfdojo.errors import ConfigError

CLAIMS = load_claims()
DOC = Path(__file__).resolve().parents[2] / "docs" / "claims.md"


def test_at_least_twenty_claims_with_all_three_verdicts() -> None:
    assert len(CLAIMS) >= 20
    assert {c.verdict for c in CLAIMS} == {"true", "false", "depends"}


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_computed_verdict_is_the_recorded_one(claim) -> None:
    verdict = evaluate(claim)
    numbers = [(o.case.label, o.value, o.target, o.holds) for o in verdict.outcomes]
    assert verdict.computed == claim.verdict, numbers


def test_docs_claims_md_is_up_to_date() -> None:
    expected = render_markdown(tuple(evaluate(c) for c in CLAIMS))
    assert DOC.read_text(encoding="utf-8") == expected, "regenerate: tfdojo calc claims --markdown > docs/claims.md"


CASE = """
label = "p=4, m=4"
call = "pp_bubble"
args = { stages = 4, micro_batches = 4 }
comparison = "approx"
target = 0.43
tolerance = 0.01
"""


def _claim(verdict: str = "true", case: str = CASE, claim_id: str = "x") -> str:
    return f'[[claims]]\nid = "{claim_id}"\ntopic = "t"\nstatement = "s"\nverdict = "{verdict}"\nwhy = "w"\n' + (
        f"[[claims.cases]]\n{case}"
    )


def test_verdict_is_computed_from_the_cases() -> None:
    false_case = CASE.replace("0.43", "0.2")
    (mixed,) = parse_claims(_claim("depends", CASE + "\n[[claims.cases]]\n" + false_case))
    assert evaluate(mixed).computed == "depends"
    (wrong,) = parse_claims(_claim("true", false_case))
    assert evaluate(wrong).computed == "false" and not evaluate(wrong).agrees


def test_target_may_be_a_calculator() -> None:
    case = CASE.replace("target = 0.43", 'target = { call = "pp_bubble", args = { stages = 4, micro_batches = 4 } }')
    (claim,) = parse_claims(_claim("true", case))
    assert evaluate(claim).outcomes[0].target == pytest.approx(3 / 7)


def test_part_picks_an_entry_of_the_breakdown() -> None:
    case = CASE.replace('call = "pp_bubble"', 'call = "zero_memory"').replace(
        "args = { stages = 4, micro_batches = 4 }", 'args = { params = 10, dp = 2, stage = 1 }\npart = "optimizer"'
    )
    (claim,) = parse_claims(_claim("false", case))
    assert evaluate(claim).outcomes[0].value == 60  # 12 bytes × 10 params / 2 ranks
    (bad,) = parse_claims(_claim("false", case.replace('"optimizer"', '"nonsense"')))
    with pytest.raises(ConfigError, match="no part"):
        evaluate(bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_claim("maybe"), "verdict"),
        (_claim(case=CASE.replace("pp_bubble", "no_such_calculator")), "unknown calculator"),
        (_claim(case=CASE.replace('comparison = "approx"', 'comparison = "roughly"')), "comparison"),
        (_claim(case=CASE.replace('label = "p=4, m=4"', "")), "label"),
        (_claim() + "\n" + _claim(), "unique"),
        ("[[claims]\n", "TOML"),
    ],
)
def test_bad_claims_files_raise(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_claims(text)
