"""Qwen2 (q/k/v biases, per-layer sliding window) against HF's Qwen2ForCausalLM, through our HF folder loader."""

from __future__ import annotations

import pytest
import torch
from hf_parity import check_left_padded, check_logits, save_and_load
from tiny_hf import DECODER_FIELDS, tiny_hf_decoder
from transformers import Qwen2Config, Qwen2ForCausalLM

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


def test_per_layer_sliding_window_matches_hf(tmp_path):
    """Layers from max_window_layers on slide (a window of 4 < the 9-token inputs); layer 0 attends fully."""
    hf = tiny_hf_qwen2(use_sliding_window=True, sliding_window=4, max_window_layers=1)
    assert hf.config.layer_types == ["full_attention", "sliding_attention"]
    ours = save_and_load(hf, tmp_path)
    assert [layer.attn.window for layer in ours.layers] == [None, 4]
    check_logits(ours, hf, VOCAB)
    check_left_padded(ours, hf, VOCAB)
    unwindowed = tiny_hf_qwen2()  # the same weights attending fully everywhere: the window must matter
    ids = torch.randint(0, VOCAB, (1, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (unwindowed(ids).logits[:, 4:] - hf(ids).logits[:, 4:]).abs().amax() > 1e-2


def test_sliding_window_off_means_full_attention(tmp_path):
    """use_sliding_window false: HF ignores sliding_window and max_window_layers, and so do we."""
    ours = save_and_load(tiny_hf_qwen2(use_sliding_window=False, sliding_window=4, max_window_layers=0), tmp_path)
    assert ours.config.sliding_window is None and [layer.attn.window for layer in ours.layers] == [None, None]
