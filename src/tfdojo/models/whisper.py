"""Whisper (Radford et al., 2022, "Robust Speech Recognition via Large-Scale Weak Supervision").

An encoder-decoder over a log-mel spectrogram (the front end is :mod:`tfdojo.models.whisper_features`):

    mel (B, n_mels, 2·A) --conv k3 + GELU--> (B, d, 2·A) --conv k3 stride 2 + GELU--> (B, d, A)   the conv stem
    encoder:  x = stem + sinusoidal positions;  per layer  x += SelfAttn(LN x);  x += MLP(LN x);   x = LN x
    decoder:  y = embed(tokens) + learned positions;  per layer  y += SelfAttn(LN y, causal, KV cache)
                                                                 y += CrossAttn(LN y, x);  y += MLP(LN y)
    logits = LN(y) · embedᵀ   (the head is the token embedding, tied)

A = 1500 audio positions for a 30 s window (100 mel frames per second, halved by the stride). Keys carry no bias
in the original; checkpoints that fuse q/k/v (CTranslate2) store zeros there, so k_proj keeps a bias here.
During greedy decoding each step feeds one token: self-attention keys/values come from a ``KVCache``, and the
cross-attention keys/values, which depend only on the audio, are projected once per window (:meth:`cross_kv`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.nn.attention import scaled_dot_product
from tfdojo.nn.blocks import PreNormBlock
from tfdojo.nn.cross_attention import CrossAttention
from tfdojo.nn.ffn import MLP
from tfdojo.nn.kv import KVCache
from tfdojo.nn.norms import LayerNorm
from tfdojo.nn.self_attention import Attention


@dataclass
class WhisperConfig:
    """Hyper-parameters of Whisper; defaults are tiny / tiny.en (39 M parameters)."""

    vocab_size: int = 51864
    n_mels: int = 80
    dim: int = 384
    n_heads: int = 6
    n_encoder_layers: int = 4
    n_decoder_layers: int = 4
    ffn_hidden: int = 1536
    n_audio_ctx: int = 1500  # encoder positions: 30 s of audio at 50 per second after the stride-2 conv
    n_text_ctx: int = 448  # decoder positions
    norm_eps: float = 1e-5
    attention_backend: str = "sdpa"

    def __post_init__(self) -> None:
        sizes = (self.vocab_size, self.n_mels, self.dim, self.n_encoder_layers, self.n_decoder_layers)
        if min(sizes) <= 0 or min(self.ffn_hidden, self.n_audio_ctx, self.n_text_ctx, self.n_heads) <= 0:
            raise ConfigError(f"sizes must be positive: {self}")
        if self.dim % self.n_heads:
            raise ConfigError(f"dim ({self.dim}) is not divisible by n_heads ({self.n_heads})")

    @property
    def n_frames(self) -> int:
        """Mel frames in one encoder window (twice the audio positions: the second conv has stride 2)."""
        return 2 * self.n_audio_ctx

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


def _block(c: WhisperConfig) -> PreNormBlock:
    attn = Attention(c.dim, c.n_heads, qkv_bias=True, out_bias=True, backend=c.attention_backend)
    mlp = MLP(c.dim, c.ffn_hidden, "gelu")
    return PreNormBlock(attn, mlp, LayerNorm(c.dim, c.norm_eps), LayerNorm(c.dim, c.norm_eps))


class WhisperEncoder(nn.Module):
    """mel (B, n_mels, n_frames) -> audio features (B, n_audio_ctx, dim)."""

    def __init__(self, c: WhisperConfig) -> None:
        super().__init__()
        self.config = c
        self.conv1 = nn.Conv1d(c.n_mels, c.dim, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(c.dim, c.dim, kernel_size=3, stride=2, padding=1)
        self.positions = nn.Parameter(torch.zeros(c.n_audio_ctx, c.dim))  # sinusoidal in the checkpoint
        self.layers = nn.ModuleList(_block(c) for _ in range(c.n_encoder_layers))
        self.norm = LayerNorm(c.dim, c.norm_eps)

    def forward(self, mel: Tensor) -> Tensor:
        c = self.config
        if mel.dim() != 3 or mel.shape[1] != c.n_mels or mel.shape[2] != c.n_frames:
            raise ConfigError(f"the encoder takes mel (B, {c.n_mels}, {c.n_frames}), got {tuple(mel.shape)}")
        x = F.gelu(self.conv1(mel))  # (B, d, n_frames)
        x = F.gelu(self.conv2(x))  # (B, d, n_audio_ctx)
        x = x.transpose(1, 2) + self.positions  # (B, n_audio_ctx, d)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class WhisperCrossAttention(CrossAttention):
    """Cross-attention whose keys and values can be projected from the audio once and reused every step."""

    def memory_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values (B, H, S, Dh) of the encoder output (B, S, d)."""
        b, s, _ = memory.shape
        k = self.k_proj(memory).view(b, s, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, S, Dh)
        v = self.v_proj(memory).view(b, s, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, S, Dh)
        return k, v

    def attend(self, x: Tensor, kv: tuple[Tensor, Tensor]) -> Tensor:
        """x (B, T, d) attending over precomputed keys/values -> (B, T, d)."""
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, Dh)
        y = scaled_dot_product(q, *kv, backend=self.backend)  # (B, H, T, Dh)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))  # (B, T, d)


class WhisperDecoderLayer(nn.Module):
    """y + SelfAttn(LN₁ y) (causal, cached), then + CrossAttn(LN₂ y, audio), then + MLP(LN₃ y)."""

    def __init__(self, c: WhisperConfig) -> None:
        super().__init__()
        self.self_attn = Attention(c.dim, c.n_heads, qkv_bias=True, out_bias=True, backend=c.attention_backend)
        self.cross_attn = WhisperCrossAttention(c.dim, c.n_heads, bias=True, backend=c.attention_backend)
        self.mlp = MLP(c.dim, c.ffn_hidden, "gelu")
        self.norm1, self.norm2, self.norm3 = (LayerNorm(c.dim, c.norm_eps) for _ in range(3))

    def forward(self, y: Tensor, kv: tuple[Tensor, Tensor], *, cache: KVCache | None, layer: int) -> Tensor:
        y = y + self.self_attn(self.norm1(y), causal=True, cache=cache, layer=layer)
        y = y + self.cross_attn.attend(self.norm2(y), kv)
        return y + self.mlp(self.norm3(y))


class WhisperDecoder(nn.Module):
    """tokens (B, T) + per-layer audio keys/values -> logits (B, T, vocab); incremental with a KV cache."""

    def __init__(self, c: WhisperConfig) -> None:
        super().__init__()
        self.config = c
        self.embed = nn.Embedding(c.vocab_size, c.dim)
        self.positions = nn.Parameter(torch.zeros(c.n_text_ctx, c.dim))  # learned
        self.layers = nn.ModuleList(WhisperDecoderLayer(c) for _ in range(c.n_decoder_layers))
        self.norm = LayerNorm(c.dim, c.norm_eps)

    def cross_kv(self, audio: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Each layer's cross-attention keys and values (B, H, A, Dh) for the audio features (B, A, d)."""
        return [layer.cross_attn.memory_kv(audio) for layer in self.layers]

    def forward(self, tokens: Tensor, kv: list[tuple[Tensor, Tensor]], cache: KVCache | None = None) -> Tensor:
        past = cache.length if cache is not None else 0
        t = tokens.shape[1]
        if past + t > self.config.n_text_ctx:
            raise ConfigError(f"the decoder holds {self.config.n_text_ctx} tokens; asked for {past + t}")
        y = self.embed(tokens) + self.positions[past : past + t]  # (B, T, d)
        for i, layer in enumerate(self.layers):
            y = layer(y, kv[i], cache=cache, layer=i)
        if cache is not None:
            cache.advance(t)
        return self.norm(y) @ self.embed.weight.T  # (B, T, vocab)


class Whisper(nn.Module):
    """(mel (B, n_mels, n_frames), tokens (B, T)) -> logits (B, T, vocab); ``encoder`` and ``decoder`` separately."""

    def __init__(self, config: WhisperConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = WhisperEncoder(config)
        self.decoder = WhisperDecoder(config)

    def forward(self, mel: Tensor, tokens: Tensor) -> Tensor:
        return self.decoder(tokens, self.decoder.cross_kv(self.encoder(mel)))
