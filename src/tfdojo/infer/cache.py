"""Preallocated contiguous key/value cache (the static cache of gpt-fast).

One buffer per K and V, shaped (n_layers, B, Hkv, max_len, D), allocated once. A forward over T new tokens
writes positions [length, length + T) of every layer in place and attends over the view [0, length + T):

    layer ℓ   | k₀ k₁ … k_{length-1} | new T | (unused up to max_len) |
                └──────── view returned by update ────────┘

Nothing is concatenated or reallocated while decoding, so the step costs the same at token 10 and token 1000.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError, ContextLengthError
from tfdojo.nn.self_attention import Attention


class StaticKVCache:
    """Implements ``tfdojo.nn.kv.KVCache`` over two preallocated (L, B, Hkv, max_len, D) buffers."""

    def __init__(
        self,
        n_layers: int,
        batch: int,
        n_kv_heads: int,
        max_len: int,
        head_dim: int,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        if min(n_layers, batch, n_kv_heads, max_len, head_dim) <= 0:
            raise ConfigError(
                f"cache sizes must be positive: n_layers={n_layers}, batch={batch}, n_kv_heads={n_kv_heads}, "
                f"max_len={max_len}, head_dim={head_dim}"
            )
        shape = (n_layers, batch, n_kv_heads, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.max_len = max_len
        self._length = 0

    @classmethod
    def for_model(cls, model: nn.Module, batch: int, max_len: int) -> StaticKVCache:
        """A cache that fits ``model``: one layer per ``Attention`` module, at the model's dtype and device."""
        attentions = [m for m in model.modules() if isinstance(m, Attention)]
        if not attentions:
            raise ConfigError(f"{type(model).__name__} has no tfdojo Attention layers to cache keys and values for")
        first = attentions[0]
        weight = first.k_proj.weight
        return cls(
            len(attentions),
            batch,
            first.n_kv_heads,
            max_len,
            first.head_dim,
            dtype=weight.dtype,
            device=weight.device,
        )

    @property
    def length(self) -> int:
        """Positions already stored and committed by :meth:`advance`."""
        return self._length

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write k, v (B, Hkv, T, D) at [length, length + T) of ``layer``; return views (B, Hkv, length + T, D)."""
        end = self._length + k.shape[2]
        if end > self.max_len:
            raise ContextLengthError(
                f"the key/value cache holds {self.max_len} positions but {end} are needed "
                f"({self._length} cached + {k.shape[2]} new); build the cache with a larger max_len"
            )
        self.k[layer, :, :, self._length : end] = k
        self.v[layer, :, :, self._length : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, t: int) -> None:
        """Commit the t positions every layer has just written."""
        self._length += t

    def reset(self) -> None:
        """Forget every stored position (the buffers are reused, not reallocated)."""
        self._length = 0
