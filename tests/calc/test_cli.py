"""`tfdojo calc …` through Typer's CliRunner: values, JSON output, and clear errors without tracebacks."""

import json

import pytest
from typer.testing import CliRunner

from tfdojo.calc.cli import app

runner = CliRunner()


def _json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_params_json_is_the_published_count() -> None:
    d = _json("params", "--model", "llama-2-7b")
    assert d["value"] == 6_738_415_616 and d["unit"] == "params"
    assert d["steps"] and d["assumptions"]


def test_chinchilla_rule_and_fit() -> None:
    assert _json("chinchilla", "5.76e23")["value"] == pytest.approx((5.76e23 / 120) ** 0.5)
    assert 25e9 < _json("chinchilla", "5.76e23", "--fit")["value"] < 70e9


def test_loss() -> None:
    d = _json("loss", "--params", "70e9", "--tokens", "1.4e12")
    assert d["value"] == pytest.approx(1.69 + 406.4 / 70e9**0.34 + 410.7 / 1.4e12**0.28)


def test_flops() -> None:
    d = _json("flops", "--model", "llama-2-7b", "--seq-len", "2048")
    assert d["value"] == pytest.approx(6 * 6.74e9, rel=0.15)


def test_kv_cache_of_llama2_70b_at_8k() -> None:
    # 2 (K, V) · 80 layers · 8 KV heads · 128 · 2 bytes · 8192 tokens = 2.5 GiB
    assert _json("kv", "--model", "llama-2-70b", "--seq-len", "8192")["value"] == 2 * 80 * 8 * 128 * 2 * 8192


def test_memory_train_and_infer() -> None:
    train = _json("memory", "train", "--model", "llama-2-7b", "--seq-len", "1024")
    assert train["parts"]["optimizer"] + train["parts"]["master weights"] == 12 * 6_738_415_616
    infer = _json("memory", "infer", "--model", "llama-2-7b", "--weight-dtype", "float16", "--kv-dtype", "float16")
    assert infer["value"] == pytest.approx(2 * 6_738_415_616 + 2**31, rel=1e-4)  # weights + 2 GiB cache (+ logits)


def test_roofline_decode_is_memory_bound_on_h100() -> None:
    d = _json("roofline", "--model", "llama-2-7b", "--gpu", "h100-80gb")
    assert d["parts"]["memory_s"] > 100 * d["parts"]["compute_s"]
    assert d["value"] == pytest.approx(1 / d["parts"]["memory_s"])  # batch 1: one token per step


def test_roofline_measure_uses_this_machine() -> None:
    result = runner.invoke(app, ["roofline", "--model", "smollm2-135m", "--measure", "--seq-len", "256"])
    assert result.exit_code == 0, result.output
    assert "bandwidth" in result.stdout.lower() and "decode ceiling" in result.stdout


def test_plan_prints_a_derivation() -> None:
    result = runner.invoke(app, ["plan", "--model", "llama-2-70b", "--gpus", "64", "--gpu", "h100-80gb"])
    assert result.exit_code == 0, result.output
    assert "plan: TP=" in result.stdout and "ZeRO" in result.stdout and "GiB" in result.stdout
    d = _json("plan", "--model", "llama-2-70b", "--gpus", "64", "--gpu", "h100-80gb")
    assert d["value"] <= 0.9 * 80 * 2**30


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["params", "--model", "llama-2-70"], "llama-2-70b"),
        (["plan", "--model", "llama-2-70b", "--gpus", "1", "--gpu", "a100-40gb"], "does not fit"),
        (["plan", "--model", "llama-2-7b", "--gpus", "8", "--gpu", "b300"], "unknown accelerator"),
        (["chinchilla", "0"], "positive"),
    ],
)
def test_errors_are_one_line_and_exit_1(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_presets_and_hardware_lists() -> None:
    names = {row["name"] for row in json.loads(runner.invoke(app, ["presets", "--json"]).stdout)}
    assert {"llama-2-70b", "gpt2", "bert-base", "gpt-3-175b"} <= names
    gpus = {row["name"]: row for row in json.loads(runner.invoke(app, ["hardware", "--json"]).stdout)}
    assert gpus["h100-80gb"]["peak_flops"]["bfloat16"] == pytest.approx(989.5e12)


def test_claims_all_agree() -> None:
    result = runner.invoke(app, ["claims", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) >= 20 and all(r["computed"] == r["recorded"] for r in rows)
