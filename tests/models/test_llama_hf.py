"""Llama (grouped-query attention) against HF transformers' LlamaForCausalLM, loaded through our HF folder loader."""

from __future__ import annotations

import pytest
import torch
from hf_parity import check_left_padded, check_logits, perturbed, save_and_load
from transformers import LlamaConfig as HFLlamaConfig
from transformers import LlamaForCausalLM

from tfdojo.errors import ConfigError
from tfdojo.infer.fast_llama import FastLlama

VOCAB = 96


def tiny_hf_llama(**overrides) -> LlamaForCausalLM:
    """A 2-layer Llama, 4 query heads sharing 2 key/value heads, with its RMSNorm weights perturbed from 1."""
    torch.manual_seed(0)
    fields = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=1e-6,
        rope_theta=5000.0,
        max_position_embeddings=64,
    )
    return perturbed(LlamaForCausalLM(HFLlamaConfig(**(fields | overrides))))


@pytest.mark.parametrize("tied", [False, True])
def test_gqa_logits_match_hf(tmp_path, tied):
    hf = tiny_hf_llama(tie_word_embeddings=tied)
    ours = save_and_load(hf, tmp_path)
    c = ours.config
    assert (c.n_heads, c.n_kv_heads, c.rope_theta, c.tie_embeddings) == (4, 2, 5000.0, tied)
    assert (ours.lm_head.weight is ours.embed.weight) is tied
    check_logits(ours, hf, VOCAB)


@pytest.mark.parametrize(
    ("attention_bias", "mlp_bias"), [(True, False), (False, True), (True, True)], ids=["attention", "mlp", "both"]
)
def test_attention_and_mlp_biases_match_hf(tmp_path, attention_bias, mlp_bias):
    hf = tiny_hf_llama(attention_bias=attention_bias, mlp_bias=mlp_bias)
    ours = save_and_load(hf, tmp_path)
    c = ours.config
    assert (c.qkv_bias, c.out_bias, c.mlp_bias) == (attention_bias, attention_bias, mlp_bias)
    check_logits(ours, hf, VOCAB)
    check_left_padded(ours, hf, VOCAB)
    fast = FastLlama(ours)  # the fused decoder carries the biases too
    ids = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(fast(ids), hf(ids).logits, atol=1e-5, rtol=1e-4)


def test_left_padded_batch_matches_each_prompt_alone(tmp_path):
    hf = tiny_hf_llama()
    check_left_padded(save_and_load(hf, tmp_path), hf, VOCAB)


def test_explicit_head_dim(tmp_path):
    hf = tiny_hf_llama(head_dim=16)  # 4 heads × 16 = 64 ≠ hidden 32: q/o projections change width
    ours = save_and_load(hf, tmp_path)
    assert ours.config.head_dim == 16
    check_logits(ours, hf, VOCAB)


SCALINGS = {
    "linear": {"rope_type": "linear", "factor": 2.0},
    "dynamic": {"rope_type": "dynamic", "factor": 2.0},
    "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
    "llama3": {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 16,
    },
}


@pytest.mark.parametrize("kind", SCALINGS)
def test_scaled_rope_logits_match_hf(tmp_path, kind):
    """Each context-extension scaling read from config.json; 80 tokens > the 64 trained, so dynamic NTK engages."""
    hf = tiny_hf_llama(rope_scaling=SCALINGS[kind] | {"rope_theta": 5000.0})
    ours = save_and_load(hf, tmp_path)
    assert ours.config.rope_scaling.kind == kind
    ids = torch.randint(0, VOCAB, (2, 80), generator=torch.Generator().manual_seed(0))
    unscaled = save_and_load(tiny_hf_llama(), tmp_path / "plain")
    with torch.no_grad():
        expected, got, plain = hf(ids).logits, ours(ids), unscaled(ids)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert (plain - expected).abs().amax() > 1e-3  # the scaling really changed the logits


def test_unknown_rope_scaling_is_refused(tmp_path):
    hf = tiny_hf_llama()
    hf.config.rope_parameters = {"rope_type": "mystery", "factor": 2.0, "rope_theta": 5000.0}
    with pytest.raises(ConfigError, match="mystery"):
        save_and_load(hf, tmp_path)
