"""Lab experiments on the bundled weights (SmolLM2, MiniLM), in their quick versions: each claim holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfdojo.lab import embeddings, induction_heads, logit_lens, quantization, residual_stream, sampling

pytestmark = pytest.mark.slow


def test_logit_lens_agreement_rises_with_depth(tmp_path: Path) -> None:
    finding = logit_lens.run(tmp_path, quick=True)
    assert finding.holds, finding.numbers["checks"]
    assert finding.numbers["agreement"][-1] == 1.0


def test_residual_stream_grows_and_final_norm_rescales(tmp_path: Path) -> None:
    finding = residual_stream.run(tmp_path, quick=True)
    assert finding.holds, finding.numbers["checks"]


def test_embeddings_separate_paraphrases_but_not_negations(tmp_path: Path) -> None:
    finding = embeddings.run(tmp_path, quick=True)
    assert finding.holds, finding.numbers["checks"]
    assert finding.numbers["mean"]["paraphrase"] > finding.numbers["mean"]["unrelated"]


def test_sampling_knobs_trade_diversity_for_coverage(tmp_path: Path) -> None:
    finding = sampling.run(tmp_path, quick=True)
    assert finding.holds, finding.numbers["checks"]


def test_induction_heads_copy_and_ablation_hurts(tmp_path: Path) -> None:
    finding = induction_heads.run(tmp_path, quick=True)
    assert finding.holds, finding.numbers["checks"]


def test_quantization_int8_weights_and_kv_near_free_int4_kv_costs(tmp_path: Path) -> None:
    finding = quantization.run(tmp_path, quick=True)
    assert finding.holds, finding.numbers["checks"]
    kv = finding.numbers["kv_bytes_per_position"]
    assert kv["fp32"] == 2 * 30 * 3 * 64 * 4  # 2 (K, V) · 30 layers · 3 KV heads · 64 channels · fp32
    assert kv["int8"] == 2 * 30 * 3 * (64 + 2 * 4) and kv["int4"] == 2 * 30 * 3 * (32 + 2 * 4)  # codes + scale, offset
