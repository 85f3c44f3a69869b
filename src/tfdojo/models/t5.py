"""T5 (Raffel et al., 2020, "Exploring the Limits of Transfer Learning with a Unified Text-to-Text Transformer").

An encoder-decoder with pre-RMSNorm blocks, no absolute positions and no 1/√d in attention:

    encoder:  x = embed(input_ids);          per layer  x += SelfAttn(N(x), bias_enc);  x += FFN(N(x))
    decoder:  y = embed(decoder_input_ids);  per layer  y += SelfAttn(N(y), bias_dec, causal)
                                                         y += CrossAttn(N(y), encoder output);  y += FFN(N(y))
    logits = lm_head(N(y)) — scaled by d^-0.5 first when the head is the (tied) input embedding

``bias_enc``/``bias_dec`` are the bucketed relative position biases of :mod:`tfdojo.nn.relative_position`, one
table per stack, shared by its layers. T5 v1.1 swaps the ReLU MLP for a gated GELU and unties the head.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.nn.blocks import PreNormBlock
from tfdojo.nn.cross_attention import CrossAttention
from tfdojo.nn.ffn import MLP, GatedFFN, get_activation
from tfdojo.nn.kv import KVCache
from tfdojo.nn.masks import as_additive, key_padding_mask
from tfdojo.nn.norms import RMSNorm
from tfdojo.nn.relative_position import RelativePositionBias


@dataclass
class T5Config:
    """Hyper-parameters of T5; defaults are T5-small. ``scale_decoder_output`` defaults to ``tie_embeddings``."""

    vocab_size: int = 32128
    dim: int = 512
    head_dim: int = 64
    ffn_hidden: int = 2048
    n_layers: int = 6
    n_decoder_layers: int | None = None
    n_heads: int = 8
    num_buckets: int = 32
    max_distance: int = 128
    norm_eps: float = 1e-6
    activation: str = "relu"
    gated_ffn: bool = False
    tie_embeddings: bool = True
    scale_decoder_output: bool | None = None
    pad_token_id: int = 0
    eos_token_id: int = 1
    decoder_start_token_id: int = 0
    attention_backend: str = "sdpa"

    def __post_init__(self) -> None:
        if self.n_decoder_layers is None:
            self.n_decoder_layers = self.n_layers
        sizes = (self.vocab_size, self.dim, self.head_dim, self.ffn_hidden, self.n_layers, self.n_decoder_layers)
        if min(sizes) <= 0 or self.n_heads <= 0:
            raise ConfigError(f"sizes must be positive: {self}")
        if self.num_buckets < 4 or self.max_distance <= self.num_buckets // 4:
            raise ConfigError(
                f"relative positions need num_buckets >= 4 and max_distance > num_buckets / 4 "
                f"(got {self.num_buckets}, {self.max_distance})"
            )
        get_activation(self.activation)  # ConfigError for an unknown name
        if self.scale_decoder_output is None:
            self.scale_decoder_output = self.tie_embeddings


def _attention(c: T5Config) -> CrossAttention:
    return CrossAttention(c.dim, c.n_heads, c.head_dim, scale=1.0, backend=c.attention_backend)


def _ffn(c: T5Config) -> nn.Module:
    if c.gated_ffn:
        return GatedFFN(c.dim, c.ffn_hidden, c.activation)
    return MLP(c.dim, c.ffn_hidden, c.activation, bias=False)


class T5DecoderLayer(nn.Module):
    """y + SelfAttn(N₁y) (causal), then + CrossAttn(N₂y, encoder output), then + FFN(N₃y)."""

    def __init__(self, c: T5Config) -> None:
        super().__init__()
        self.self_attn, self.cross_attn, self.ffn = _attention(c), _attention(c), _ffn(c)
        self.norm1, self.norm2, self.norm3 = (RMSNorm(c.dim, c.norm_eps) for _ in range(3))

    def forward(
        self,
        y: Tensor,
        memory_kv: tuple[Tensor, Tensor],
        *,
        self_bias: Tensor,
        memory_mask: Tensor | None,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        y = y + self.self_attn(self.norm1(y), mask=self_bias, causal=True, cache=cache, layer=layer)
        y = y + self.cross_attn(self.norm2(y), memory_kv, mask=memory_mask)
        return y + self.ffn(self.norm3(y))


class T5(nn.Module):
    """(input_ids (B, S), decoder_input_ids (B, T)) -> logits (B, T, V); ``encode`` and ``decode`` separately."""

    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.dim)
        self.encoder_bias = RelativePositionBias(c.n_heads, c.num_buckets, c.max_distance, bidirectional=True)
        self.encoder_layers = nn.ModuleList(
            PreNormBlock(_attention(c), _ffn(c), RMSNorm(c.dim, c.norm_eps), RMSNorm(c.dim, c.norm_eps))
            for _ in range(c.n_layers)
        )
        self.encoder_norm = RMSNorm(c.dim, c.norm_eps)
        self.decoder_bias = RelativePositionBias(c.n_heads, c.num_buckets, c.max_distance, bidirectional=False)
        self.decoder_layers = nn.ModuleList(T5DecoderLayer(c) for _ in range(c.n_decoder_layers))
        self.decoder_norm = RMSNorm(c.dim, c.norm_eps)
        self.lm_head = nn.Linear(c.dim, c.vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Encoder output (B, S, dim); ``attention_mask`` (B, S) marks real tokens with 1, padding with 0."""
        x = self.embed(input_ids)  # (B, S, dim)
        s = input_ids.shape[1]
        bias = self.encoder_bias(s, s).to(x.dtype)  # (1, H, S, S)
        if attention_mask is not None:
            bias = bias + as_additive(key_padding_mask(attention_mask), x.dtype)  # (B, H, S, S)
        for layer in self.encoder_layers:
            x = layer(x, mask=bias)
        return self.encoder_norm(x)

    def memory_kv(self, encoder_output: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Every decoder layer's cross-attention keys and values (B, H, S, Dh), computed once per source."""
        return [layer.cross_attn.memory_kv(encoder_output) for layer in self.decoder_layers]

    def decode(
        self,
        decoder_input_ids: Tensor,
        encoder_output: Tensor | list[tuple[Tensor, Tensor]],
        attention_mask: Tensor | None = None,
        decoder_attention_mask: Tensor | None = None,
        *,
        cache: KVCache | None = None,
    ) -> Tensor:
        """Logits (B, T, V) for the decoder tokens, attending to the encoder (padding per ``attention_mask``).

        ``encoder_output`` is the encoder's (B, S, dim) or its :meth:`memory_kv`. With ``cache`` the T tokens follow
        the ``cache.length`` already stored (a generation step feeds one); ``decoder_attention_mask`` then covers
        the cached positions too.
        """
        y = self.embed(decoder_input_ids)  # (B, T, dim)
        t = decoder_input_ids.shape[1]
        s = t + (cache.length if cache is not None else 0)
        self_bias = self.decoder_bias(t, s).to(y.dtype)  # (1, H, T, S); the causal mask is added in attention
        if decoder_attention_mask is not None:
            self_bias = self_bias + as_additive(key_padding_mask(decoder_attention_mask), y.dtype)  # (B, H, T, S)
        memory_mask = None if attention_mask is None else key_padding_mask(attention_mask)  # (B, 1, 1, S_enc)
        memory_kv = self.memory_kv(encoder_output) if isinstance(encoder_output, Tensor) else encoder_output
        for i, (layer, kv) in enumerate(zip(self.decoder_layers, memory_kv, strict=True)):
            y = layer(y, kv, self_bias=self_bias, memory_mask=memory_mask, cache=cache, layer=i)
        if cache is not None:
            cache.advance(t)
        y = self.decoder_norm(y)
        if self.config.scale_decoder_output:
            y = y * self.config.dim**-0.5  # T5 trained the tied embedding at unit scale; the head undoes it
        return self.lm_head(y)

    def forward(
        self,
        input_ids: Tensor,
        decoder_input_ids: Tensor,
        *,
        attention_mask: Tensor | None = None,
        decoder_attention_mask: Tensor | None = None,
    ) -> Tensor:
        memory = self.encode(input_ids, attention_mask)
        return self.decode(decoder_input_ids, memory, attention_mask, decoder_attention_mask)
