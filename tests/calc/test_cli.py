"""`tfdojo calc …` through Typer's CliRunner: values, JSON output, and clear errors without tracebacks."""

import json

import pytest
from typer.testing import CliRunner

from tfdojo.calc import roofline as roofline_module
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
    # 3 (forward + backward) × [2·(L·(4d² + 3dF) + V·d) weights + 4·L·S·d attention scores]
    layers, d_model, ffn, vocab, seq = 32, 4096, 11008, 32000, 2048
    weights = 2 * (layers * (4 * d_model**2 + 3 * d_model * ffn) + vocab * d_model)
    assert d["value"] == 3 * (weights + 4 * layers * seq * d_model) == 42_863_689_728


def test_text_output_prints_the_numbers() -> None:
    """What a person reads: the headline value with its exact count, and the substituted numbers of the steps."""
    params = runner.invoke(app, ["params", "--model", "llama-2-7b"]).stdout
    assert "6.74B params (6,738,415,616)" in params  # the published count
    assert "67,108,864" in params and "135,266,304" in params  # 4·4096² attention, 3·4096·11008 FFN per layer
    kv = runner.invoke(app, ["kv", "--model", "llama-2-70b", "--seq-len", "8192"]).stdout
    assert "2.50 GiB (2,684,354,560 bytes)" in kv and "2 · 80 · 8 · 128 · 8,192 · 1" in kv
    flops = runner.invoke(app, ["flops", "--model", "llama-2-7b", "--seq-len", "2048"]).stdout
    assert "4.286e+10 FLOP/token" in flops and "3·12,952,010,752 + 3·262,144,000 + 3·1,073,741,824" in flops
    # decode at S=4096 on an H100 (3.35 TB/s): 2·(6,738,415,616 − 32000·4096) weight bytes read (the embedding
    # rows are only gathered) + 2·32·32·128·4096·2 cache bytes = 15,362,170,880; 3.35e12 / that = 218.07
    ceiling = runner.invoke(app, ["roofline", "--model", "llama-2-7b", "--gpu", "h100-80gb"]).stdout
    assert "15,362,170,880 bytes" in ceiling and "decode ceiling at S=4,096, B=1: 218.1 tokens/s" in ceiling


def test_kv_cache_of_llama2_70b_at_8k() -> None:
    # 2 (K, V) · 80 layers · 8 KV heads · 128 · 2 bytes · 8192 tokens = 2.5 GiB
    assert _json("kv", "--model", "llama-2-70b", "--seq-len", "8192")["value"] == 2 * 80 * 8 * 128 * 2 * 8192


def test_memory_train_and_infer() -> None:
    train = _json("memory", "train", "--model", "llama-2-7b", "--seq-len", "1024")
    assert train["parts"]["optimizer"] + train["parts"]["master weights"] == 12 * 6_738_415_616
    infer = _json("memory", "infer", "--model", "llama-2-7b", "--weight-dtype", "float16", "--kv-dtype", "float16")
    assert infer["value"] == pytest.approx(2 * 6_738_415_616 + 2**31, rel=1e-4)  # weights + 2 GiB cache (+ logits)


def test_memory_train_counts_dropout_masks() -> None:
    plain = _json("memory", "train", "--model", "llama-2-7b", "--seq-len", "1024")
    dropped = _json("memory", "train", "--model", "llama-2-7b", "--seq-len", "1024", "--dropout", "0.1")
    # a fused attention kernel keeps no mask: one byte per element on the embeddings and 2 residual branches × 32
    masks = (2 * 32 + 1) * 1024 * 4096
    assert dropped["parts"]["activations"] - plain["parts"]["activations"] == masks
    text = runner.invoke(app, ["memory", "train", "--model", "llama-2-7b", "--seq-len", "1024", "--dropout", "0.1"])
    assert "residual dropout masks" in text.stdout and "2·1,024·4096" in text.stdout  # the step, substituted
    bad = runner.invoke(app, ["memory", "train", "--model", "llama-2-7b", "--dropout", "1"])
    assert bad.exit_code != 0 and "dropout is a probability" in bad.output and "Traceback" not in bad.output


def test_memory_train_window_masks_and_expert_slots() -> None:
    dense = _json("memory", "train", "--model", "mistral-7b", "--seq-len", "1024")["parts"]["activations"]
    fused = _json("memory", "train", "--model", "mistral-7b", "--seq-len", "1024", "--fused-masks")
    # tfdojo's sdpa keeps the bf16 (s, s) window mask, its own output (Hq·D = 4096) and a bool per row, × 32 layers
    assert dense - fused["parts"]["activations"] == 32 * (2 * 1024**2 + 2 * 1024 * 4096 + 1024)
    routed = _json("memory", "train", "--model", "mixtral-8x7b", "--seq-len", "1024")["parts"]["activations"]
    padded = _json("memory", "train", "--model", "mixtral-8x7b", "--seq-len", "1024", "--expert-slots", "padded")
    # dropless padding: E - k = 6 more slots per token, each 4 bf16 FFN rows (F = 14336), the input row, an int64
    assert padded["parts"]["activations"] - routed == 32 * 6 * 1024 * (4 * 2 * 14336 + 2 * 4096 + 8)
    bad = runner.invoke(app, ["memory", "train", "--model", "mixtral-8x7b", "--expert-slots", "dense"])
    assert bad.exit_code != 0 and "unknown expert_slots" in bad.output and "Traceback" not in bad.output


def test_roofline_decode_is_memory_bound_on_h100() -> None:
    d = _json("roofline", "--model", "llama-2-7b", "--gpu", "h100-80gb")
    assert d["parts"]["memory_s"] > 100 * d["parts"]["compute_s"]
    assert d["value"] == pytest.approx(1 / d["parts"]["memory_s"])  # batch 1: one token per step


def test_roofline_measure_uses_this_machines_peaks(monkeypatch: pytest.MonkeyPatch) -> None:
    times = iter([(0.01, 9), (0.25, 4)])  # best seconds of the 256 MiB copy, then of the 1024² matmul
    monkeypatch.setattr(roofline_module, "_best_seconds", lambda fn, budget_s: next(times))
    result = runner.invoke(app, ["roofline", "--model", "smollm2-135m", "--measure", "--seq-len", "256"])
    assert result.exit_code == 0, result.output
    bandwidth, peak = 2 * 256 * 2**20 / 0.01, 2 * 1024**3 / 0.25
    assert f"measured memory bandwidth: {bandwidth:.4g} bytes/s" in result.stdout
    assert f"measured matmul throughput: {peak:.4g} FLOP/s" in result.stdout
    expected = roofline_module.roofline("smollm2-135m", 256, 1, bandwidth=bandwidth, peak_flops=peak)
    assert f"decode ceiling at S=256, B=1: {expected.value:.4g} tokens/s" in result.stdout


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
