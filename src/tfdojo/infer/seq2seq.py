"""Generation for encoder-decoder models (T5): encode the source once, then one decoder step per new token.

    source ──encode──► memory ──project once per layer──► cross-attention K, V (B, H, S, Dh)
    start token ──decode step (1 token; self-attention K, V cached)──► logits ─► token₁ ─► … until EOS or the limit

With ``use_cache=False`` the decoder re-runs over the whole target each step: the plain forward's logits at every
position, the reference the cached path is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.infer.cache import StaticKVCache
from tfdojo.infer.sampling import SamplingConfig, sample
from tfdojo.nn.kv import KVCache


class EncoderDecoder(Protocol):
    """What generation needs from a model (``tfdojo.models.t5.T5`` has it)."""

    config: Any  # n_decoder_layers, n_heads, head_dim: the shape of the decoder's self-attention cache

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor: ...

    def memory_kv(self, encoder_output: Tensor) -> list[tuple[Tensor, Tensor]]: ...

    def decode(
        self,
        decoder_input_ids: Tensor,
        encoder_output: Tensor | list[tuple[Tensor, Tensor]],
        attention_mask: Tensor | None = None,
        *,
        cache: KVCache | None = None,
    ) -> Tensor: ...


def _decoder_cache(model: EncoderDecoder, memory: Tensor, max_len: int) -> StaticKVCache:
    """A self-attention cache for every decoder layer, at the encoder output's dtype and device."""
    c = model.config
    return StaticKVCache(
        c.n_decoder_layers, memory.shape[0], c.n_heads, max_len, c.head_dim, dtype=memory.dtype, device=memory.device
    )


@torch.inference_mode()
def generate_seq2seq(
    model: EncoderDecoder,
    input_ids: Tensor,
    *,
    max_new_tokens: int,
    decoder_start_token_id: int,
    eos_token_id: int | None = None,
    pad_token_id: int = 0,
    attention_mask: Tensor | None = None,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    use_cache: bool = True,
) -> Tensor:
    """(B, S) source ids -> (B, 1 + n) target ids starting with the start token; after EOS a row gets padding.

    Stops early once every row has produced EOS, so n ≤ ``max_new_tokens`` (Hugging Face ``generate`` returns the
    same layout). Sampling as in :func:`tfdojo.infer.generate.generate`: greedy at temperature 0.
    """
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    sampling = SamplingConfig(temperature, top_k, top_p)
    generator = torch.Generator(device=input_ids.device).manual_seed(seed) if seed is not None else None
    memory = model.encode(input_ids, attention_mask)  # (B, S, dim)
    cache = _decoder_cache(model, memory, max_new_tokens) if use_cache else None
    source = model.memory_kv(memory) if use_cache else memory  # cross-attention K, V projected once
    b = input_ids.shape[0]
    target = torch.full((b, 1), decoder_start_token_id, dtype=torch.long, device=input_ids.device)  # (B, 1)
    done = torch.zeros(b, dtype=torch.bool, device=input_ids.device)
    for _ in range(max_new_tokens):
        fed = target[:, -1:] if use_cache else target  # (B, 1) against the cache, or the whole target
        logits = model.decode(fed, source, attention_mask, cache=cache)[:, -1]  # (B, V)
        next_ids = sample(logits, sampling, generator).masked_fill(done, pad_token_id)  # (B,)
        target = torch.cat((target, next_ids.unsqueeze(1)), dim=1)  # (B, T + 1)
        if eos_token_id is not None:
            done = done | (next_ids == eos_token_id)
            if bool(done.all()):  # one host sync per step, to stop as soon as every row has finished
                break
    return target


@dataclass
class Seq2SeqLM:
    """An encoder-decoder with its config and tokenizer (None when the folder has none), as the loaders return it."""

    config: Any
    model: nn.Module
    tokenizer: Any = None

    def generate(self, input_ids: Tensor, *, max_new_tokens: int = 64, **options: Any) -> Tensor:
        """Target ids (B, 1 + n), starting with the decoder start token, using the config's special ids.

        ``options``: ``attention_mask``, ``temperature``, ``top_k``, ``top_p``, ``seed``, ``use_cache`` as in
        :func:`generate_seq2seq`.
        """
        c = self.config
        return generate_seq2seq(
            self.model,  # type: ignore[arg-type]  (T5 satisfies EncoderDecoder)
            input_ids,
            max_new_tokens=max_new_tokens,
            decoder_start_token_id=c.decoder_start_token_id,
            eos_token_id=c.eos_token_id,
            pad_token_id=c.pad_token_id,
            **options,
        )
