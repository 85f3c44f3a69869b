"""Generation with the real SmolLM2-135M-Instruct weights and tokenizer (the session's ``smollm2`` fixture)."""

from __future__ import annotations

import pytest
import torch

from tfdojo.infer.fast_llama import FastLlama
from tfdojo.infer.generate import IncrementalDetokenizer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chat_prompt(smollm2) -> list[int]:
    messages = [{"role": "user", "content": "What is the capital of France? Answer in two sentences."}]
    return smollm2.tokenizer.encode(smollm2.tokenizer.apply_chat_template(messages))


def test_cached_greedy_equals_full_recompute(smollm2, chat_prompt):
    """Recomputing the whole sequence at step i is a causal forward over prompt + out[:i], whose last logits are
    the full forward's logits at that position: so one uncached forward over prompt + out checks all 64 steps."""
    out = smollm2.generate(chat_prompt, max_new_tokens=64, ignore_eos=True)
    with torch.inference_mode():
        logits = smollm2.model(torch.tensor([chat_prompt + out.token_ids]))  # (1, T, V), no cache
    expected = logits[0, len(chat_prompt) - 1 : -1].argmax(-1).tolist()
    assert out.token_ids == expected
    assert "Paris" in out.text


def test_lm_generate_equals_hf_generate(smollm2, smollm2_hf_model, chat_prompt):
    """The path users get (``lm.generate`` through FastLlama) against HF ``generate`` on the same GGUF, greedy."""
    assert isinstance(smollm2.decoder, FastLlama)
    out = smollm2.generate(chat_prompt, max_new_tokens=40)
    eos = sorted(smollm2.tokenizer.eos_token_ids)
    with torch.inference_mode():
        hf = smollm2_hf_model.generate(
            torch.tensor([chat_prompt]), max_new_tokens=40, do_sample=False, eos_token_id=eos, pad_token_id=eos[0]
        )[0, len(chat_prompt) :].tolist()
    assert hf[-1] in eos  # the answer ended within the limit
    hf = hf[:-1]  # HF keeps the EOS that ended the answer; ours leaves it out
    assert out.token_ids == hf and "Paris" in out.text  # the whole answer, to HF's EOS, token for token


def test_streamed_pieces_join_to_the_text_and_eos_ends_the_answer(smollm2, chat_prompt):
    pieces: list[str] = []
    out = smollm2.generate(chat_prompt, max_new_tokens=64, stream=pieces.append)
    assert "".join(pieces) == out.text
    assert len(out.token_ids) < 64  # the answer ended with <|im_end|>, which is neither in the ids nor the text
    assert not set(out.token_ids) & smollm2.tokenizer.eos_token_ids
    assert "<|im_end|>" not in out.text


def test_stop_string_cuts_real_output(smollm2, chat_prompt):
    full = smollm2.generate(chat_prompt, max_new_tokens=32).text
    word = "Paris"
    cut = smollm2.generate(chat_prompt, max_new_tokens=32, stop=[word])
    assert cut.text == full[: full.index(word)]


def test_detokenizer_never_splits_a_character(smollm2):
    text = "Größe, naïve café — 東京タワー 🙂🚀 κόσμε"
    ids = smollm2.tokenizer.encode(text)
    detok = IncrementalDetokenizer(smollm2.tokenizer)
    pieces = [detok.push(i) for i in ids] + [detok.flush()]
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)
    assert "" in pieces[:-1]  # some token ended inside a character and was held back until the next one
