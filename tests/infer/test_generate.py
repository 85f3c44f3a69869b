"""generate(): cached greedy equals recomputing everything, batches equal single prompts, and the text side
(EOS, stop strings, streaming of multi-byte characters) behaves, on tiny random models and a scripted model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from tfdojo.errors import ConfigError, ContextLengthError
from tfdojo.infer.generate import generate
from tfdojo.models.gpt2 import GPT2, GPT2Config
from tfdojo.models.llama import Llama, LlamaConfig
from tfdojo.nn.self_attention import Attention

EOS = 256


class ByteTokenizer:
    """One token per UTF-8 byte, plus an EOS id: multi-byte characters always span several tokens."""

    eos_token_ids = {EOS}

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


class ScriptedModel(nn.Module):
    """Emits a fixed sequence of tokens whatever the prompt, through a real cache (one Attention for its shape)."""

    def __init__(self, script: list[int], max_seq_len: int = 256) -> None:
        super().__init__()
        self.config = SimpleNamespace(max_seq_len=max_seq_len)
        self.attn = Attention(dim=8, n_heads=2)
        self.script, self.calls = script, 0

    def forward(self, input_ids, *, positions=None, attention_mask=None, cache=None, last_only=False):
        self.calls = 0 if cache.length == 0 else self.calls
        cache.advance(input_ids.shape[1])
        logits = torch.full((input_ids.shape[0], 1, EOS + 1), -1e4)
        logits[..., self.script[self.calls]] = 0.0
        self.calls += 1
        return logits


def scripted(text: str, then_eos: bool = True) -> ScriptedModel:
    return ScriptedModel(list(text.encode("utf-8")) + ([EOS] if then_eos else []))


def tiny_llama() -> Llama:
    """Untied head: a tied random model mostly predicts its own input token, which makes a poor test."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=EOS + 1,
        dim=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        ffn_hidden=96,
        max_seq_len=128,
        tie_embeddings=False,
    )
    return Llama(config).eval()


def tiny_gpt2() -> GPT2:
    torch.manual_seed(0)
    return GPT2(
        GPT2Config(vocab_size=EOS + 1, n_positions=128, dim=64, n_layers=2, n_heads=4, tie_embeddings=False)
    ).eval()


def greedy_full_recompute(model: nn.Module, ids: list[int], max_new_tokens: int) -> list[int]:
    """The plainest greedy decoder: the whole sequence through the model every step, argmax of the last logits."""
    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            nxt = int(model(torch.tensor([ids + out]))[0, -1].argmax())
            if nxt == EOS:
                break
            out.append(nxt)
    return out


@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
def test_cached_greedy_equals_full_recompute(build):
    model, prompt = build(), list(b"The quick brown fox")
    out = generate(model, ByteTokenizer(), prompt, max_new_tokens=64)
    expected = greedy_full_recompute(model, prompt, 64)
    assert len(set(expected)) > 4  # a varied sequence, so the comparison means something
    assert out.token_ids == expected
    assert out.text == ByteTokenizer().decode(expected)


@pytest.mark.parametrize("build", [tiny_llama, tiny_gpt2])
def test_left_padded_batch_equals_each_prompt_alone(build):
    model = build()
    prompts = [list(b"a"), list(b"hello there"), list(b"abc")]
    batched = generate(model, ByteTokenizer(), prompts, max_new_tokens=12)
    alone = [generate(model, ByteTokenizer(), p, max_new_tokens=12) for p in prompts]
    assert [g.token_ids for g in batched] == [g.token_ids for g in alone]
    assert all(len(g.token_ids) > 0 for g in batched)


def test_same_seed_same_sample_and_different_seed_differs():
    model, tok = tiny_llama(), ByteTokenizer()
    runs = [generate(model, tok, "hi", max_new_tokens=24, temperature=1.5, seed=s).token_ids for s in (1, 1, 2)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_prompt_plus_new_tokens_beyond_the_context_is_refused():
    with pytest.raises(ContextLengthError, match=r"120 tokens and 10 new tokens.*context is 128.*at most 8"):
        generate(tiny_llama(), ByteTokenizer(), [1] * 120, max_new_tokens=10)


def test_generation_stops_at_eos_and_leaves_it_out():
    out = generate(scripted("done"), ByteTokenizer(), "x", max_new_tokens=50)
    assert out.text == "done"
    assert out.token_ids == list(b"done")
    assert out.metrics.decode_tokens == 4  # 'd' came from the prefill; 'o', 'n', 'e' and EOS from decode steps


def test_max_new_tokens_caps_the_output():
    out = generate(scripted("abcdefgh"), ByteTokenizer(), "x", max_new_tokens=3)
    assert out.token_ids == list(b"abc")


def test_stop_string_cuts_the_text_and_is_never_streamed():
    pieces: list[str] = []
    out = generate(scripted("go STEP then STOP and more"), ByteTokenizer(), "x", stop=["STOP"], stream=pieces.append)
    assert out.text == "go STEP then "
    assert "".join(pieces) == out.text


def test_streamed_pieces_are_whole_characters_and_join_to_the_text():
    text = "héllo wörld — 日本語 🙂!"
    pieces: list[str] = []
    out = generate(scripted(text), ByteTokenizer(), "x", max_new_tokens=100, stream=pieces.append)
    assert out.text == text
    assert "".join(pieces) == text
    assert not any("\ufffd" in p for p in pieces)
    assert "🙂" in pieces  # four byte-tokens released as one character


def test_streaming_a_batch_is_refused():
    with pytest.raises(ConfigError, match="one prompt at a time"):
        generate(scripted("a"), ByteTokenizer(), ["x", "y"], stream=print)
