"""GPT-2 family (Radford et al., 2019, "Language Models are Unsupervised Multitask Learners").

Learned absolute positions added to the token embeddings, pre-LayerNorm blocks with a GELU (tanh) MLP and
biased projections, a final LayerNorm, and an output head tied to the token embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError, ContextLengthError
from tfdojo.models.decoding import decoder_masks
from tfdojo.nn.blocks import PreNormBlock
from tfdojo.nn.ffn import MLP, get_activation
from tfdojo.nn.kv import KVCache
from tfdojo.nn.norms import LayerNorm
from tfdojo.nn.self_attention import Attention


@dataclass
class GPT2Config:
    """Hyper-parameters of a GPT-2 decoder (defaults: GPT-2 small, 124M); ``ffn_hidden`` defaults to 4·dim."""

    vocab_size: int = 50257
    n_positions: int = 1024
    dim: int = 768
    n_layers: int = 12
    n_heads: int = 12
    ffn_hidden: int | None = None
    norm_eps: float = 1e-5
    activation: str = "gelu_tanh"
    tie_embeddings: bool = True
    attention_backend: str = "sdpa"
    scale_attn_by_inverse_layer_idx: bool = False  # layer i's scores also divided by i + 1 (HF's option)

    def __post_init__(self) -> None:
        if self.ffn_hidden is None:
            self.ffn_hidden = 4 * self.dim
        sizes = (self.vocab_size, self.n_positions, self.dim, self.n_layers, self.n_heads, self.ffn_hidden)
        if min(sizes) <= 0:
            raise ConfigError(f"GPT-2 sizes must be positive: {self}")
        if self.dim % self.n_heads:
            raise ConfigError(f"dim ({self.dim}) must be divisible by n_heads ({self.n_heads})")
        get_activation(self.activation)  # raises ConfigError naming the known activations

    def attention_scale(self, layer: int) -> float | None:
        """Layer ``layer``'s attention score scale: 1/√d_head, over (layer + 1) when scaled by inverse depth."""
        if not self.scale_attn_by_inverse_layer_idx:
            return None  # the backend's default 1/√d_head
        return (self.dim // self.n_heads) ** -0.5 / (layer + 1)

    @property
    def max_seq_len(self) -> int:
        """The context window: one learned position embedding per position."""
        return self.n_positions


class GPT2(nn.Module):
    """input_ids (B, T) -> logits (B, T, V). Pass a cache to decode incrementally."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.dim)
        self.pos_embed = nn.Embedding(c.n_positions, c.dim)
        self.layers = nn.ModuleList(
            PreNormBlock(
                attn=Attention(
                    c.dim,
                    c.n_heads,
                    qkv_bias=True,
                    out_bias=True,
                    backend=c.attention_backend,
                    scale=c.attention_scale(i),
                ),
                ffn=MLP(c.dim, c.ffn_hidden, c.activation),
                norm1=LayerNorm(c.dim, c.norm_eps),
                norm2=LayerNorm(c.dim, c.norm_eps),
            )
            for i in range(c.n_layers)
        )
        self.norm = LayerNorm(c.dim, c.norm_eps)
        self.lm_head = nn.Linear(c.dim, c.vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.embed.weight

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
        if past + input_ids.shape[1] > self.config.n_positions:
            raise ContextLengthError(
                f"{past} cached + {input_ids.shape[1]} new tokens exceed GPT-2's {self.config.n_positions} learned "
                "positions; shorten the prompt or ask for fewer new tokens"
            )
        positions, mask = decoder_masks(input_ids, past, positions, attention_mask)
        x = self.embed(input_ids) + self.pos_embed(positions)  # (B, T, dim); positions (B|1, T) broadcast
        for i, layer in enumerate(self.layers):
            x = layer(x, mask=mask, causal=True, cache=cache, layer=i)
        if cache is not None:
            cache.advance(input_ids.shape[1])
        if last_only:
            x = x[:, -1:]
        return self.lm_head(self.norm(x))

    @torch.no_grad()
    def num_parameters(self) -> int:
        """Distinct parameters (a tied head counts once)."""
        return sum(p.numel() for p in self.parameters())
