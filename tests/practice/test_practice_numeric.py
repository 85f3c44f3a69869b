"""Numeric answers: the parser against hand arithmetic, and grading against calculators whose values we know."""

import pytest

from tfdojo.errors import AnswerParseError
from tfdojo.practice import grade_numeric, parse_quantity
from tfdojo.practice.schema import NumericAnswer

GIB = 1024**3


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("2.5 GiB", 2.5 * 1024 * 1024 * 1024, "bytes"),
        ("2.7e9", 2_700_000_000, None),
        ("140GB", 140_000_000_000, "bytes"),
        ("140 GB", 140_000_000_000, "bytes"),
        ("1.2 MB", 1_200_000, "bytes"),
        ("64 KiB", 65_536, "bytes"),
        ("1.4T tokens", 1_400_000_000_000, "tokens"),
        ("7B params", 7_000_000_000, "params"),
        ("7 M parameters", 7_000_000, "params"),
        ("6.7 billion", 6_700_000_000, None),
        ("3.2e23 FLOPs", 3.2e23, "FLOP"),
        ("1,234,567", 1_234_567, None),
        ("12 %", 0.12, "ratio"),
        ("0.25", 0.25, None),
        ("7/39", 7 / 39, None),
        ("1/2 GB", 500_000_000, "bytes"),
        ("2^30 bytes", 1_073_741_824, "bytes"),
        ("2.5 × 10^9 bytes", 2_500_000_000, "bytes"),
        ("12 ms", 0.012, "s"),
        ("1.5 hours", 5400, "s"),
        ("50 tok/s", 50, "tokens/s"),
        ("3.35 TB/s", 3_350_000_000_000, "bytes/s"),
        ("989 TFLOP/s", 989e12, "FLOP/s"),
        ("3x", 3, "ratio"),
        ("8K-token", 8000, "tokens"),
    ],
)
def test_parse_quantity_table(text, value, kind):
    q = parse_quantity(text)
    assert q.value == pytest.approx(value, rel=1e-12)
    assert q.kind == kind


def test_identifiers_are_not_numbers_and_working_before_equals_is_ignored():
    assert parse_quantity("about 2.5 GiB for Llama-2-70B on an H100").value == 2.5 * GIB
    q = parse_quantity("2 · 80 · 8 · 128 · 8192 · 2 = 2,684,354,560 bytes")
    assert (q.value, q.kind, q.text) == (2_684_354_560, "bytes", "2,684,354,560 bytes")


@pytest.mark.parametrize("text", ["no idea", "", "somewhere between 2 and 3 GB", "12 layers, 2 GB"])
def test_missing_or_ambiguous_numbers_raise(text):
    with pytest.raises(AnswerParseError, match="number"):
        parse_quantity(text)


KV_70B_8K = NumericAnswer(call="kv_cache_bytes", args={"model": "llama-2-70b", "seq_len": 8192})


def test_llama2_70b_kv_cache_at_8k():
    # 2 (K and V) · 80 layers · 8 KV heads · 128 head dim · 8192 positions · 2 bytes (fp16) = 2.5 GiB exactly
    expected = 2 * 80 * 8 * 128 * 8192 * 2
    right = grade_numeric(KV_70B_8K, "2.5 GiB")
    assert right.verdict == "correct" and right.score == 1.0
    assert right.expected == expected == 2.5 * GIB
    assert "2 · 80 · 8 · 128 · 8,192" in right.feedback  # the derivation is shown
    assert grade_numeric(KV_70B_8K, "2.68 GB").verdict == "correct"  # GB for a bytes answer is fine
    assert grade_numeric(KV_70B_8K, str(expected)).verdict == "correct"  # a bare number is read in bytes
    wrong = grade_numeric(KV_70B_8K, "140 GB")  # 70B params × 2 bytes: the weights, not the cache
    assert wrong.verdict == "incorrect" and wrong.score == 0.0


COMPUTE = NumericAnswer(call="training_compute", args={"params": 1e9, "tokens": 2e10}, tolerance=0.05)
SIX_N_D = 6 * 1e9 * 2e10  # 1.2e20 FLOP


@pytest.mark.parametrize(
    ("factor", "verdict"),
    [
        (1.0, "correct"),
        (1.05, "correct"),  # on the tolerance: inside
        (0.95, "correct"),
        (1.0501, "close"),
        (1.15, "close"),  # on three tolerances: still close
        (0.85, "close"),
        (1.1501, "incorrect"),
        (0.8499, "incorrect"),
    ],
)
def test_tolerance_edges(factor, verdict):
    grade = grade_numeric(COMPUTE, f"{SIX_N_D * factor!r} FLOPs")
    assert grade.verdict == verdict
    assert grade.relative_error == pytest.approx(abs(factor - 1), abs=1e-9)


def test_unit_mismatch_is_incorrect_and_says_so():
    grade = grade_numeric(COMPUTE, "1.2e20 params")  # right number, wrong kind of thing
    assert grade.verdict == "incorrect" and grade.relative_error is None
    assert "params" in grade.feedback and "FLOP" in grade.feedback


def test_a_per_token_quantity_may_be_stated_as_the_amount():
    # attention scores, forward: 4 · layers · keys · heads · head dim = 4 · 32 · 4096 · 32 · 128 FLOP per token
    scores = NumericAnswer(
        call="flops_per_token", args={"model": "llama-2-7b", "seq_len": 4096, "mode": "forward"}, part="attention"
    )
    expected = 4 * 32 * 4096 * 32 * 128
    assert grade_numeric(scores, "2.15e9 FLOPs per token").expected == expected
    assert grade_numeric(scores, "2.15e9 FLOPs per token").verdict == "correct"
    assert grade_numeric(scores, "2.15 GFLOPs").verdict == "correct"
    assert grade_numeric(scores, "2.15e9 tokens").verdict == "incorrect"


def test_percentages_and_fractions():
    bubble = NumericAnswer(call="pp_bubble", args={"stages": 4, "micro_batches": 8})  # (p-1)/(m+p-1) = 3/11
    assert grade_numeric(bubble, "27%").verdict == "correct"
    assert grade_numeric(bubble, "0.2727").verdict == "correct"
    assert grade_numeric(bubble, "3/11").verdict == "correct"
    assert grade_numeric(bubble, "27").verdict == "incorrect"  # a bare 27 is read as the fraction 27


def test_a_part_is_graded_in_its_own_unit():
    # Chinchilla: C = 6·N·D with D = 20·N, so N = sqrt(C / 120) and D = 20·N
    tokens = NumericAnswer(call="chinchilla", args={"flops": 5.8e23}, part="tokens")
    d = 20 * (5.8e23 / 120) ** 0.5
    grade = grade_numeric(tokens, "1.4T tokens")
    assert grade.verdict == "correct" and grade.expected == pytest.approx(d)
    assert grade.unit == "tokens"
    assert grade_numeric(tokens, "1.4T params").verdict == "incorrect"


# issue 9: spellings, superscripts, separators, the question's dimension, the prompt's unit, unreadable units


@pytest.mark.parametrize(
    ("text", "value", "kind"),
    [
        ("2 gib", 2 * GIB, "bytes"),
        ("2 GIB", 2 * GIB, "bytes"),
        ("2 gb", 2e9, "bytes"),
        ("2 gigabytes", 2e9, "bytes"),
        ("2 gibibytes", 2 * GIB, "bytes"),
        ("16 Gbit", 2e9, "bytes"),  # 16e9 bits / 8
        ("10 Gbps", 1.25e9, "bytes/s"),
        ("2.147·10⁹", 2.147e9, None),
        ("2.147 × 10⁹ bytes", 2.147e9, "bytes"),
        ("2³⁰ bytes", 2**30, "bytes"),
        ("2.147e9", 2.147e9, None),
        ("2_147_483_648", 2**31, None),
        ("2\u202f147\u202f483\u202f648 bytes", 2**31, "bytes"),  # narrow no-break spaces as digit groups
        ("2.1 gigaflops", 2.1e9, "FLOP"),
        ("1.5 PFLOP/s", 1.5e15, "FLOP/s"),
        ("50 tokens per second", 50, "tokens/s"),
        ("6.74B params", 6.74e9, "params"),
        ("2.50 GiB (2,684,354,560 bytes)", 2.5 * GIB, "bytes"),  # one quantity said twice, as `tfdojo calc` does
    ],
)
def test_more_spellings(text, value, kind):
    q = parse_quantity(text)
    assert q.value == pytest.approx(value, rel=1e-9)
    assert q.kind == kind


def test_the_questions_dimension_decides_b_lone_prefixes_and_flops():
    assert parse_quantity("2,147,483,648 B", expects="bytes").value == 2**31  # bytes, not 2.1e18
    assert parse_quantity("2,147,483,648 B").value == pytest.approx(2.147483648e18)  # elsewhere B is a billion
    assert parse_quantity("7B", expects="params").value == 7e9
    assert parse_quantity("2G", expects="bytes").value == 2 * GIB  # ls -h: a lone prefix on bytes is binary
    assert parse_quantity("2G").value == 2e9
    assert parse_quantity("989 TFLOPS", expects="FLOP/s").kind == "FLOP/s"
    assert parse_quantity("989 TFLOPS", expects="FLOP").kind == "FLOP"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2 gigs", "'gigs' after '2' is not a unit"),
        ("8 GPUs", "'GPUs' after '8' is not a unit"),
        ("7 mil", "not a unit"),
        ("16 Gb", "gigabits or gigabytes"),
    ],
)
def test_an_unknown_unit_is_sent_back_not_dropped(text, message):
    with pytest.raises(AnswerParseError, match=message):
        parse_quantity(text)


# 2 (K and V) · 32 layers · 32 KV heads · 128 · 4096 positions · 2 bytes = 2^31 bytes = 2 GiB exactly
KV_7B_4K = NumericAnswer(call="kv_cache_bytes", args={"model": "llama-2-7b", "seq_len": 4096})


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("2", "correct"),  # read in the prompt's GiB
        ("2147483648", "correct"),  # or in bytes: the nearer reading
        ("2 gib", "correct"),
        ("2,147,483,648 B", "correct"),
        ("2.147·10⁹", "correct"),
        ("2.147 × 10⁹ bytes", "correct"),
        ("2 G", "correct"),
        ("2 gigabytes", "close"),  # 2e9 bytes is 6.9 % under 2 GiB
        ("16 Gbit", "close"),
        ("4", "incorrect"),
    ],
)
def test_a_question_asked_in_gib(answer, verdict):
    grade = grade_numeric(KV_7B_4K, answer, asked="GiB")
    assert grade.expected == 2 * 32 * 32 * 128 * 4096 * 2 == 2 * GIB
    assert grade.verdict == verdict, grade.feedback


def test_a_bare_number_without_an_asked_unit_is_in_base_units():
    assert grade_numeric(KV_7B_4K, "2").verdict == "incorrect"  # 2 bytes
    assert "read as 2 GiB" in grade_numeric(KV_7B_4K, "2", asked="GiB").feedback


def test_the_prompt_names_the_unit_asked_for():
    from tfdojo.practice.grading.numeric import asked_unit

    assert asked_unit("How large is the KV cache, in GiB, for one sequence?") == "GiB"
    assert asked_unit("Answer in FLOPs per token.") == "FLOPs per token"
    assert asked_unit("What is the bound, in tokens per second?") == "tokens per second"
    assert asked_unit("Trained in bf16 on 2T tokens. Give the number of parameters.") is None


def test_every_bundled_question_asked_in_gib_takes_a_bare_number_in_gib():
    from tfdojo.calc.claims import Call
    from tfdojo.practice.grading.numeric import asked_unit
    from tfdojo.practice.loader import load_bank

    asked_in_gib = [q for q in load_bank() if q.type == "numeric" and asked_unit(q.prompt) == "GiB"]
    assert len(asked_in_gib) >= 5
    for q in asked_in_gib:
        _, expected = Call(q.numeric.call, dict(q.numeric.args), q.numeric.part).run()
        assert grade_numeric(q.numeric, f"{expected / GIB:.3g}", asked="GiB").verdict == "correct", q.id
