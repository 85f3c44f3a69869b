"""Cross-attention (Vaswani et al., 2017, §3.2.3): queries from one sequence, keys and values from another.

    decoder states x (B, T, d) --W_q-->  Q (B, H, T, Dh)
    encoder output m (B, S, d) --W_k, W_v--> K, V (B, H, S, Dh)        out = softmax(Q Kᵀ·scale + M) V W_o

With ``memory`` left out the keys come from x itself and this is plain (non-causal by default) self-attention,
which is how T5 uses one module for both. ``scale`` is a constructor argument because T5 folds 1/√d into its
initialisation and attends with scale 1.
"""

from __future__ import annotations

from torch import Tensor, nn

from tfdojo.nn.attention import scaled_dot_product
from tfdojo.nn.kv import KVCache


class CrossAttention(nn.Module):
    """Multi-head attention of x over ``memory`` (or over x): (B, T, d), (B, S, d) -> (B, T, d)."""

    def __init__(
        self,
        dim: int,
        n_heads: int,
        head_dim: int | None = None,
        *,
        memory_dim: int | None = None,
        bias: bool = False,
        scale: float | None = None,
        backend: str = "sdpa",
    ) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, head_dim or dim // n_heads
        self.scale, self.backend = scale, backend
        inner, memory_dim = n_heads * self.head_dim, memory_dim or dim
        self.q_proj = nn.Linear(dim, inner, bias=bias)
        self.k_proj = nn.Linear(memory_dim, inner, bias=bias)
        self.v_proj = nn.Linear(memory_dim, inner, bias=bias)
        self.o_proj = nn.Linear(inner, dim, bias=bias)

    def memory_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values (B, H, S, Dh) of ``memory``: a decoder computes them once per source, not per step."""
        b, s, _ = memory.shape
        k = self.k_proj(memory).view(b, s, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, S, Dh)
        v = self.v_proj(memory).view(b, s, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, S, Dh)
        return k, v

    def forward(
        self,
        x: Tensor,
        memory: Tensor | tuple[Tensor, Tensor] | None = None,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        cache: KVCache | None = None,
        layer: int = 0,
    ) -> Tensor:
        """``memory``: (B, S, d), or its ``memory_kv`` keys and values; None attends over x itself.

        ``mask``: boolean keep-mask or additive bias broadcastable to (B, H, T, S), e.g. T5's position bias.
        ``cache`` stores self-attention keys and values (slot ``layer``) so a decoder step projects one token.
        """
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, Dh)
        k, v = memory if isinstance(memory, tuple) else self.memory_kv(x if memory is None else memory)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (B, H, cached + T, Dh)
        y = scaled_dot_product(q, k, v, causal=causal, mask=mask, scale=self.scale, backend=self.backend)
        y = y.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim)  # (B, T, H·Dh)
        return self.o_proj(y)
