"""Preallocated contiguous key/value cache (the static cache of gpt-fast), and what every cache shares.

One buffer per K and V, shaped (n_layers, B, Hkv, max_len, D), allocated once. A forward over T new tokens
writes positions [length, length + T) of every layer in place and attends over the view [0, length + T):

    layer ℓ   | k₀ k₁ … k_{length-1} | new T | (unused up to max_len) |
                └──────── view returned by update ────────┘

Nothing is concatenated or reallocated while decoding, so the step costs the same at token 10 and token 1000.
The other caches (paged, quantized, sinks + window) live beside it in ``tfdojo.infer``; all of them implement
``tfdojo.nn.kv.KVCache``, so ``generate(..., cache=...)`` and the model code run unchanged on any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError, ContextLengthError
from tfdojo.nn.kv import KVCache
from tfdojo.nn.self_attention import Attention

CacheFactory = Callable[[nn.Module, int, int], KVCache]  # (model, batch, max_len) -> a fresh cache


@dataclass(frozen=True)
class CacheGeometry:
    """What a cache must match in a model: layers, key/value heads, head size, dtype and device."""

    n_layers: int
    n_kv_heads: int
    head_dim: int
    dtype: torch.dtype
    device: torch.device

    @classmethod
    def of(cls, model: nn.Module) -> CacheGeometry:
        """One layer per ``Attention`` module, at the model's dtype and device."""
        attentions = [m for m in model.modules() if isinstance(m, Attention)]
        if not attentions:
            raise ConfigError(f"{type(model).__name__} has no tfdojo Attention layers to cache keys and values for")
        first = attentions[0]
        weight = first.k_proj.weight
        return cls(len(attentions), first.n_kv_heads, first.head_dim, weight.dtype, weight.device)


def check_sizes(**sizes: int) -> None:
    """Refuse a cache with a zero or negative size, naming every size given."""
    if min(sizes.values()) <= 0:
        shown = ", ".join(f"{name}={value}" for name, value in sizes.items())
        raise ConfigError(f"cache sizes must be positive: {shown}")


def check_room(max_len: int, length: int, t: int) -> int:
    """The end position of t new tokens after ``length``; ContextLengthError past ``max_len``."""
    end = length + t
    if end > max_len:
        raise ContextLengthError(
            f"the key/value cache holds {max_len} positions but {end} are needed "
            f"({length} cached + {t} new); build the cache with a larger max_len"
        )
    return end


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
        check_sizes(n_layers=n_layers, batch=batch, n_kv_heads=n_kv_heads, max_len=max_len, head_dim=head_dim)
        shape = (n_layers, batch, n_kv_heads, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.max_len = max_len
        self._length = 0

    @classmethod
    def for_model(cls, model: nn.Module, batch: int, max_len: int) -> StaticKVCache:
        """A cache that fits ``model``: one layer per ``Attention`` module, at the model's dtype and device."""
        g = CacheGeometry.of(model)
        return cls(g.n_layers, batch, g.n_kv_heads, max_len, g.head_dim, dtype=g.dtype, device=g.device)

    @property
    def length(self) -> int:
        """Positions already stored and committed by :meth:`advance`."""
        return self._length

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write k, v (B, Hkv, T, D) at [length, length + T) of ``layer``; return views (B, Hkv, length + T, D)."""
        end = check_room(self.max_len, self._length, k.shape[2])
        self.k[layer, :, :, self._length : end] = k
        self.v[layer, :, :, self._length : end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, t: int) -> None:
        """Commit the t positions every layer has just written."""
        self._length += t

    def truncate(self, length: int) -> None:
        """Forget every position from ``length`` on (speculative decoding drops rejected draft tokens)."""
        if not 0 <= length <= self._length:
            raise ConfigError(f"cannot truncate a cache of {self._length} positions to {length}")
        self._length = length

    def reset(self) -> None:
        """Forget every stored position (the buffers are reused, not reallocated)."""
        self._length = 0
