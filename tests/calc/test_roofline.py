"""Roofline: hand-computed decode and prefill ceilings, the ~1 FLOP/byte of 16-bit decode, and measure()."""

from __future__ import annotations

import re
import time

import pytest

from tfdojo.calc import roofline as roofline_module
from tfdojo.calc.roofline import measure, roofline
from tfdojo.errors import ConfigError
from tfdojo.models.llama import LlamaConfig

LLAMA2_7B = LlamaConfig(vocab_size=32000, dim=4096, n_layers=32, n_heads=32, n_kv_heads=32, ffn_hidden=11008,
                        tie_embeddings=False)  # fmt: skip
H100_SXM = {"bandwidth": 3.35e12, "peak_flops": 989.5e12}  # NVIDIA H100 SXM datasheet: HBM3, dense bf16


def test_llama_2_7b_decode_ceiling_on_h100_by_hand() -> None:
    # weights read: 2 bytes × (6,738,415,616 − 32000·4096 untied embedding rows merely gathered);
    # KV cache at S=1: 2·32·32·128·1·2 = 524,288 bytes
    result = roofline(LLAMA2_7B, 1, 1, **H100_SXM, weight_dtype="float16", kv_dtype="float16")
    assert result.value == pytest.approx(3.35e12 / (2 * (6_738_415_616 - 32000 * 4096) + 524_288))
    assert result.value == pytest.approx(253.5, abs=0.1)
    assert result.parts["memory_s"] > 100 * result.parts["compute_s"]  # memory-bound by two orders of magnitude


def test_16_bit_decode_does_about_one_flop_per_byte_per_sequence() -> None:
    for batch in (1, 8, 64):
        result = roofline(LLAMA2_7B, 1, batch, **H100_SXM, weight_dtype="float16", kv_dtype="float16")
        intensity = next(s.value for s in result.steps if s.what == "arithmetic intensity")
        assert intensity == pytest.approx(batch, rel=0.01)


def test_batching_raises_decode_throughput_until_compute_bound() -> None:
    small = roofline(LLAMA2_7B, 16, 1, **H100_SXM)
    large = roofline(LLAMA2_7B, 16, 4096, **H100_SXM)
    assert large.value > 100 * small.value
    assert large.parts["compute_s"] > large.parts["memory_s"]


def test_long_prefill_is_compute_bound() -> None:
    result = roofline(LLAMA2_7B, 2048, 1, mode="prefill", **H100_SXM)
    assert result.parts["compute_s"] > result.parts["memory_s"]
    # 2 FLOPs per layer weight (N minus embedding, head and 65 norms of 4096), the head once per prompt, and
    # the dense attention scores 4·L·T·d
    per_token = 2 * (6_738_415_616 - 2 * 32000 * 4096 - 65 * 4096) + 2 * 32000 * 4096 / 2048 + 4 * 32 * 2048 * 4096
    assert result.value == pytest.approx(989.5e12 / per_token, rel=1e-6)


def test_measure_divides_the_bytes_and_flops_by_the_best_time(monkeypatch: pytest.MonkeyPatch) -> None:
    times = iter([(0.004, 7), (0.0025, 5)])  # best seconds and runs: the copy, then the matmul
    monkeypatch.setattr(roofline_module, "_best_seconds", lambda fn, budget_s: next(times))
    measured = measure(copy_mib=64, matmul_n=512, budget_s=0.2)
    assert measured.bandwidth.value == 2 * 64 * 2**20 / 0.004  # every byte read once and written once
    assert measured.matmul.value == 2 * 512**3 / 0.0025
    assert (measured.bandwidth.unit, measured.matmul.unit) == ("bytes/s", "FLOP/s")
    assert "best of 7" in measured.bandwidth.steps[0].substituted


def test_measured_bandwidth_is_at_least_what_the_wall_clock_allows() -> None:
    """The best of n copies takes at most 1/n of the time spent copying: bandwidth ≥ n · bytes moved ÷ elapsed."""
    start = time.perf_counter()
    measured = measure(copy_mib=64, matmul_n=256, budget_s=0.1)
    elapsed = time.perf_counter() - start
    runs = int(re.search(r"best of (\d+)", measured.bandwidth.steps[0].substituted).group(1))
    assert measured.bandwidth.value >= runs * 2 * 64 * 2**20 / elapsed
    mm_runs = int(re.search(r"best of (\d+)", measured.matmul.steps[0].substituted).group(1))
    assert measured.matmul.value >= mm_runs * 2 * 256**3 / elapsed


@pytest.mark.parametrize("kwargs", [{"bandwidth": 0.0, "peak_flops": 1e12}, {"bandwidth": 1e9, "peak_flops": -1.0}])
def test_bad_input_is_a_config_error(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match="positive"):
        roofline(LLAMA2_7B, 16, 1, **kwargs)
    with pytest.raises(ConfigError, match="positive"):
        roofline(LLAMA2_7B, 0, 1, bandwidth=1e9, peak_flops=1e12)
    with pytest.raises(ConfigError, match="unknown roofline mode"):
        roofline(LLAMA2_7B, 16, 1, mode="train", bandwidth=1e9, peak_flops=1e12)  # type: ignore[arg-type]
