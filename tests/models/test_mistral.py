"""Mistral (sliding-window attention) against HF transformers' MistralForCausalLM, through our HF folder loader."""

from __future__ import annotations

import torch
from hf_parity import check_left_padded, check_logits, save_and_load
from tiny_hf import DECODER_FIELDS, tiny_hf_decoder
from transformers import MistralConfig, MistralForCausalLM

VOCAB = DECODER_FIELDS["vocab_size"]
WINDOW = 4  # shorter than the 9-token inputs of check_logits, so the window cuts off real keys


def tiny_hf_mistral(sliding_window: int | None = WINDOW) -> MistralForCausalLM:
    return tiny_hf_decoder(MistralForCausalLM, MistralConfig, sliding_window=sliding_window)


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


def test_cached_greedy_past_the_window_matches_hf(tmp_path):
    """Decoding through our static KV cache applies the window at every step: 12 greedy tokens equal HF's."""
    from tfdojo.infer.generate import generate

    class Ids:
        """Token ids in, token ids out: the tokenizer surface generate() needs."""

        eos_token_ids: set[int] = set()

        def encode(self, text):
            raise AssertionError("ids only")

        def decode(self, ids):
            return " ".join(map(str, ids))

    hf = tiny_hf_mistral()
    ours = save_and_load(hf, tmp_path)
    prompt = torch.randint(0, VOCAB, (1, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = hf.generate(prompt, max_new_tokens=12, do_sample=False, min_new_tokens=12)[0, 6:].tolist()
    got = generate(ours, Ids(), prompt[0].tolist(), max_new_tokens=12, ignore_eos=True)
    assert got.token_ids == expected
