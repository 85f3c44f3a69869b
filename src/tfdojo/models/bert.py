"""BERT family (Devlin et al., 2019, "BERT: Pre-training of Deep Bidirectional Transformers").

A bidirectional encoder: token + position + token-type embeddings, a LayerNorm over their sum, post-LN blocks
(the 2017 arrangement) with a GELU (erf) MLP, and a key-padding mask so padded positions are never attended to.
The optional pooler is tanh(W h[CLS] + b), the sentence vector BERT's next-sentence head was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError, ContextLengthError
from tfdojo.nn.blocks import PostNormBlock
from tfdojo.nn.ffn import MLP, get_activation
from tfdojo.nn.masks import key_padding_mask
from tfdojo.nn.norms import LayerNorm
from tfdojo.nn.self_attention import Attention


@dataclass
class BertConfig:
    """Hyper-parameters of a BERT encoder (defaults: BERT-base, uncased vocabulary)."""

    vocab_size: int = 30522
    max_positions: int = 512
    type_vocab_size: int = 2
    dim: int = 768
    n_layers: int = 12
    n_heads: int = 12
    ffn_hidden: int = 3072
    norm_eps: float = 1e-12
    activation: str = "gelu"
    pooler: bool = True
    attention_backend: str = "sdpa"

    def __post_init__(self) -> None:
        sizes = (self.vocab_size, self.max_positions, self.type_vocab_size, self.dim, self.n_layers, self.n_heads)
        if min(*sizes, self.ffn_hidden) <= 0:
            raise ConfigError(f"BERT sizes must be positive: {self}")
        if self.dim % self.n_heads:
            raise ConfigError(f"dim ({self.dim}) must be divisible by n_heads ({self.n_heads})")
        get_activation(self.activation)  # raises ConfigError naming the known activations


class Bert(nn.Module):
    """input_ids (B, T) [+ token_type_ids, attention_mask] -> last hidden state (B, T, dim)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.dim)
        self.pos_embed = nn.Embedding(c.max_positions, c.dim)
        self.type_embed = nn.Embedding(c.type_vocab_size, c.dim)
        self.embed_norm = LayerNorm(c.dim, c.norm_eps)
        self.layers = nn.ModuleList(
            PostNormBlock(
                attn=Attention(c.dim, c.n_heads, qkv_bias=True, out_bias=True, backend=c.attention_backend),
                ffn=MLP(c.dim, c.ffn_hidden, c.activation),
                norm1=LayerNorm(c.dim, c.norm_eps),
                norm2=LayerNorm(c.dim, c.norm_eps),
            )
            for _ in range(c.n_layers)
        )
        self.pooler = nn.Linear(c.dim, c.dim) if c.pooler else None

    def forward(
        self, input_ids: Tensor, token_type_ids: Tensor | None = None, attention_mask: Tensor | None = None
    ) -> Tensor:
        """Contextual vectors for every token; ``attention_mask`` (B, T) is 1 for real tokens, 0 for padding."""
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, dim)
        mask = key_padding_mask(attention_mask) if attention_mask is not None else None  # (B, 1, 1, T)
        for layer in self.layers:
            x = layer(x, mask=mask, causal=False)
        return x

    def embeddings(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """The first layer's input (B, T, dim): token + position + segment embeddings, normalised."""
        t = input_ids.shape[1]
        if t > self.config.max_positions:
            raise ContextLengthError(
                f"{t} tokens exceed BERT's {self.config.max_positions} learned positions; truncate the input"
            )
        positions = torch.arange(t, device=input_ids.device)  # (T,)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embed(input_ids) + self.pos_embed(positions) + self.type_embed(token_type_ids)  # (B, T, dim)
        return self.embed_norm(x)

    def pool(self, hidden: Tensor) -> Tensor:
        """BERT's pooled sentence vector tanh(W h[CLS] + b), (B, dim); needs a config with ``pooler=True``."""
        if self.pooler is None:
            raise ConfigError("this BERT has no pooler (its checkpoint had none); mean-pool the hidden states instead")
        return torch.tanh(self.pooler(hidden[:, 0]))
