"""Mistral (sliding-window attention) against HF transformers' MistralForCausalLM, through our HF folder loader."""

from __future__ import annotations

import torch
from hf_parity import check_left_padded, check_logits, save_and_load
from transformers import MistralConfig, MistralForCausalLM

VOCAB = 80
WINDOW = 4  # shorter than the 9-token inputs of check_logits, so the window cuts off real keys


def tiny_hf_mistral(sliding_window: int | None = WINDOW) -> MistralForCausalLM:
    """A 2-layer Mistral with grouped key/value heads and every weight perturbed from its initial value."""
    torch.manual_seed(0)
    config = MistralConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=sliding_window,
        max_position_embeddings=64,
    )
    model = MistralForCausalLM(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_sliding_window_logits_match_hf(tmp_path):
    hf = tiny_hf_mistral()
    ours = save_and_load(hf, tmp_path)
    assert ours.config.sliding_window == WINDOW
    check_logits(ours, hf, VOCAB)
    check_left_padded(ours, hf, VOCAB)


def test_the_window_changes_the_logits(tmp_path):
    """Guards the test above: with full attention the same weights give different logits after WINDOW tokens."""
    hf = tiny_hf_mistral()
    full = save_and_load(tiny_hf_mistral(sliding_window=None), tmp_path)
    assert full.config.sliding_window is None
    ids = torch.randint(0, VOCAB, (1, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        windowed, unwindowed = hf(ids).logits, full(ids)
    torch.testing.assert_close(unwindowed[:, :WINDOW], windowed[:, :WINDOW], atol=1e-5, rtol=1e-4)
    assert (unwindowed[:, WINDOW:] - windowed[:, WINDOW:]).abs().amax() > 1e-2
