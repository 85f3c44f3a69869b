"""Dynamic NTK RoPE generates past the trained context (with a warning), token for token with HF generate."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from tfdojo.errors import ContextLengthError
from tfdojo.infer.fast_llama import FastLlama, fast_decoder
from tfdojo.infer.generate import generate
from tfdojo.weights.hf import load_hf_model

TRAINED = 48  # max_position_embeddings: 10 prompt tokens + 70 new ones go 32 past it


class Ids:
    """A tokenizer stand-in for token-id prompts: no EOS, ids shown as numbers."""

    eos_token_ids: tuple[int, ...] = ()

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in text.split()]

    def decode(self, ids) -> str:
        return " ".join(map(str, ids))


def _hf_llama(tmp_path: Path, rope_scaling: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(HF model, ours loaded from its save_pretrained folder): a tiny Llama with the given RoPE scaling."""
    config = transformers.LlamaConfig(
        vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=TRAINED, rope_scaling=rope_scaling, eos_token_id=None,
        bos_token_id=None, pad_token_id=None,
    )  # fmt: skip
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(0.3 * torch.randn_like(p))  # sharper logits: greedy choices are not near-ties
    hf.save_pretrained(tmp_path)
    return hf, load_hf_model(tmp_path)[1]


def test_dynamic_ntk_generates_past_the_trained_length_like_hf(tmp_path: Path) -> None:
    hf, ours = _hf_llama(tmp_path, {"rope_type": "dynamic", "factor": 2.0})
    prompt = torch.randint(0, 96, (10,), generator=torch.Generator().manual_seed(1)).tolist()
    with torch.inference_mode():
        ids = torch.tensor([prompt])  # an explicit mask: HF would otherwise hide prompt tokens equal to the pad id
        expected = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=70, do_sample=False)
    expected = expected[0, 10:].tolist()
    assert len(expected) == 70 and len(set(expected)) > 10
    fast = fast_decoder(ours)  # what lm.generate runs; test_generate_fast holds it to the eager model step by step
    assert isinstance(fast, FastLlama)
    with pytest.warns(UserWarning, match=f"past the {TRAINED} the model was trained on; dynamic NTK"):
        out = generate(fast, Ids(), prompt, max_new_tokens=70)
    assert out.token_ids == expected


def test_fixed_scalings_keep_the_context_limit(tmp_path: Path) -> None:
    _, ours = _hf_llama(tmp_path, {"rope_type": "linear", "factor": 2.0})
    with pytest.raises(ContextLengthError, match=f"the model's context is {TRAINED} tokens"):
        generate(ours, Ids(), list(range(10)), max_new_tokens=70)
