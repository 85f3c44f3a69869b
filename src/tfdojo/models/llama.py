"""Llama family (Touvron et al., 2023): pre-RMSNorm decoder, RoPE, SwiGLU, grouped-query attention.

SmolLM2 is a small Llama: 30 layers, d=576, 9 query heads sharing 3 key/value heads, tied embeddings.
Two later families are Llamas with one field changed: Mistral 7B (Jiang et al., 2023) attends within a sliding
window of the last ``sliding_window`` keys; Qwen2 (Yang et al., 2024) adds biases to the q/k/v projections (and
may slide the window in some layers only, ``sliding_layers``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.models.decoding import decoder_masks
from tfdojo.nn.blocks import PreNormBlock
from tfdojo.nn.ffn import SwiGLU
from tfdojo.nn.kv import KVCache
from tfdojo.nn.norms import RMSNorm
from tfdojo.nn.rope import RopeScaling, RotaryEmbedding
from tfdojo.nn.self_attention import Attention


@dataclass
class LlamaConfig:
    """Hyper-parameters of a Llama-style decoder; ``head_dim`` defaults to dim / n_heads."""

    vocab_size: int = 49152
    dim: int = 576
    n_layers: int = 30
    n_heads: int = 9
    n_kv_heads: int = 3
    ffn_hidden: int = 1536
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    max_seq_len: int = 2048
    tie_embeddings: bool = True
    head_dim: int | None = None
    attention_backend: str = "sdpa"
    qkv_bias: bool = False  # Qwen2; HF Llama's attention_bias sets it and out_bias
    out_bias: bool = False  # a bias on o_proj (HF Llama's attention_bias)
    mlp_bias: bool = False  # biases on gate, up and down (HF Llama's mlp_bias)
    sliding_window: int | None = None  # Mistral: each query sees itself and the window - 1 keys before it
    sliding_layers: tuple[bool, ...] | None = None  # Qwen2: the layers that use the window (None: all of them)
    rope_scaling: RopeScaling | None = None  # linear / dynamic NTK / YaRN / Llama-3 context extension

    def __post_init__(self) -> None:
        if self.dim <= 0 or self.n_layers <= 0 or self.vocab_size <= 0 or self.ffn_hidden <= 0:
            raise ConfigError(f"sizes must be positive: {self}")
        if self.n_heads <= 0 or self.n_kv_heads <= 0 or self.n_heads % self.n_kv_heads:
            raise ConfigError(f"n_heads ({self.n_heads}) must be a positive multiple of n_kv_heads ({self.n_kv_heads})")
        if self.head_dim is None:
            if self.dim % self.n_heads:
                raise ConfigError(f"dim ({self.dim}) is not divisible by n_heads ({self.n_heads}); set head_dim")
            self.head_dim = self.dim // self.n_heads
        if self.head_dim % 2:
            raise ConfigError(f"RoPE needs an even head_dim, got {self.head_dim}")
        if self.sliding_window is not None and self.sliding_window <= 0:
            raise ConfigError(f"sliding_window must be a positive number of keys or None, got {self.sliding_window}")
        if self.sliding_layers is not None and len(self.sliding_layers) != self.n_layers:
            raise ConfigError(f"sliding_layers names {len(self.sliding_layers)} layers; the model has {self.n_layers}")

    def window(self, layer: int) -> int | None:
        """The sliding window of ``layer``: ``sliding_window`` where that layer slides, else None (full attention)."""
        slides = self.sliding_layers is None or self.sliding_layers[layer]
        return self.sliding_window if slides else None


class Llama(nn.Module):
    """input_ids (B, T) -> logits (B, T, V). Pass a cache to decode incrementally."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.dim)
        self.rope = RotaryEmbedding(c.head_dim, c.rope_theta, c.rope_scaling)
        self.layers = nn.ModuleList(
            PreNormBlock(
                attn=Attention(
                    c.dim,
                    c.n_heads,
                    c.n_kv_heads,
                    c.head_dim,
                    qkv_bias=c.qkv_bias,
                    out_bias=c.out_bias,
                    backend=c.attention_backend,
                    window=c.window(i),
                ),
                ffn=self.feed_forward(c),
                norm1=RMSNorm(c.dim, c.norm_eps),
                norm2=RMSNorm(c.dim, c.norm_eps),
            )
            for i in range(c.n_layers)
        )
        self.norm = RMSNorm(c.dim, c.norm_eps)
        self.lm_head = nn.Linear(c.dim, c.vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def feed_forward(self, c: LlamaConfig) -> nn.Module:
        """One block's FFN: SwiGLU here; Mixtral overrides it with a routed mixture of SwiGLU experts."""
        return SwiGLU(c.dim, c.ffn_hidden, bias=c.mlp_bias)

    def forward(
        self,
        input_ids: Tensor,
        *,
        positions: Tensor | None = None,
        attention_mask: Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
    ) -> Tensor:
        """Logits for every position, or for the last one only (``last_only``: the prefill of generation)."""
        past = cache.length if cache is not None else 0
        positions, mask = decoder_masks(input_ids, past, positions, attention_mask)
        x = self.embed(input_ids)  # (B, T, dim)
        rope = self.rope(positions, x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, rope=rope, mask=mask, causal=True, cache=cache, layer=i)
        if cache is not None:
            cache.advance(input_ids.shape[1])
        if last_only:
            x = x[:, -1:]
        return self.lm_head(self.norm(x))

    @torch.no_grad()
    def num_parameters(self) -> int:
        """Distinct parameters (a tied head counts once)."""
        return sum(p.numel() for p in self.parameters())
