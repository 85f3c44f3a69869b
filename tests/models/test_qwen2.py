"""Qwen2 (biases on q, k, v) against HF transformers' Qwen2ForCausalLM, through our HF folder loader."""

from __future__ import annotations

import pytest
from hf_parity import check_left_padded, check_logits, save_and_load
from tiny_hf import DECODER_FIELDS, tiny_hf_decoder
from transformers import Qwen2Config, Qwen2ForCausalLM

from tfdojo.errors import ConfigError
from tfdojo.weights.hf import load_hf_model

VOCAB = DECODER_FIELDS["vocab_size"]


def tiny_hf_qwen2(**overrides) -> Qwen2ForCausalLM:
    return tiny_hf_decoder(Qwen2ForCausalLM, Qwen2Config, **overrides)


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
