"""Qwen2 (biases on q, k, v) against HF transformers' Qwen2ForCausalLM, through our HF folder loader."""

from __future__ import annotations

import pytest
import torch
from hf_parity import check_left_padded, check_logits, save_and_load
from transformers import Qwen2Config, Qwen2ForCausalLM

from tfdojo.errors import ConfigError
from tfdojo.weights.hf import load_hf_model

VOCAB = 80


def tiny_hf_qwen2(**overrides) -> Qwen2ForCausalLM:
    """A 2-layer Qwen2 with grouped key/value heads; biases and weights perturbed so that none is zero or one."""
    torch.manual_seed(0)
    fields = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    model = Qwen2ForCausalLM(Qwen2Config(**(fields | overrides))).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("tied", [False, True])
def test_biased_qkv_logits_match_hf(tmp_path, tied):
    hf = tiny_hf_qwen2(tie_word_embeddings=tied)
    assert hf.model.layers[0].self_attn.q_proj.bias.abs().amin() > 0
    ours = save_and_load(hf, tmp_path)
    assert ours.config.qkv_bias and ours.config.tie_embeddings == tied
    check_logits(ours, hf, VOCAB)
    check_left_padded(ours, hf, VOCAB)


def test_per_layer_sliding_window_is_refused(tmp_path):
    tiny_hf_qwen2(use_sliding_window=True, sliding_window=4, max_window_layers=1).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="use_sliding_window"):
        load_hf_model(tmp_path)
