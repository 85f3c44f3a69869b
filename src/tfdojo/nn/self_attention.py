"""Multi-head self-attention with grouped key/value heads (MHA when n_kv_heads == n_heads, MQA when 1)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.nn.attention import scaled_dot_product
from tfdojo.nn.dropout import dropping
from tfdojo.nn.kv import KVCache
from tfdojo.nn.masks import check_window
from tfdojo.nn.rope import apply_rope


class Attention(nn.Module):
    """Project to Q, K, V; optionally rotate (RoPE); attend through a backend (optionally windowed); project back."""

    def __init__(
        self,
        dim: int,
        n_heads: int,
        n_kv_heads: int | None = None,
        head_dim: int | None = None,
        *,
        qkv_bias: bool = False,
        out_bias: bool = False,
        backend: str = "sdpa",
        window: int | None = None,
        scale: float | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if n_heads % n_kv_heads:
            raise ConfigError(f"n_heads ({n_heads}) must be a multiple of n_kv_heads ({n_kv_heads})")
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = head_dim or dim // n_heads
        self.backend = backend
        check_window(window)
        self.window = window  # sliding window (Mistral) when causal: each query sees its last `window` keys
        self.scale = scale  # the scores' multiplier; None is 1/√head_dim
        self.dropout = dropout  # on the attention probabilities, in training (backends eager and sdpa)
        self.q_proj = nn.Linear(dim, n_heads * self.head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(dim, n_kv_heads * self.head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(dim, n_kv_heads * self.head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(n_heads * self.head_dim, dim, bias=out_bias)

    def backend_options(self) -> dict[str, Any]:
        """Keyword options for the backend (the window here; subclasses add ALiBi slopes, projections, …)."""
        return {} if self.window is None else {"window": self.window}

    def forward(
        self,
        x: Tensor,
        *,
        rope: tuple[Tensor, Tensor] | None = None,
        mask: Tensor | None = None,
        causal: bool = False,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # (B, Hq, T, D)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, Hkv, T, D)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, Hkv, T, D)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, Hkv, S, D), S = cached + T
        options = self.backend_options()
        if self.dropout and dropping(self):
            options["dropout_p"] = self.dropout
        y = scaled_dot_product(q, k, v, causal=causal, mask=mask, scale=self.scale, backend=self.backend, **options)
        # y: (B, Hq, T, D)
        y = y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)  # (B, T, Hq·D)
        return self.o_proj(y)
