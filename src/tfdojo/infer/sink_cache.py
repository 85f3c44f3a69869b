"""Attention sinks + a sliding window (Xiao et al., 2024, "Efficient Streaming Language Models with Attention
Sinks", StreamingLLM).

The cache keeps the first ``sinks`` tokens for good and the most recent ``window`` tokens; everything between is
evicted. Positions follow the paper: a token's position is its place *in the cache*, not in the text, so the
model never sees a position past sinks + window however long the stream runs:

    text        t0 t1 t2 t3 | t4 … t99 (evicted) | t100 … t163
    cache       t0 t1 t2 t3 |                      t100 … t163
    positions    0  1  2  3 |                        4 …   67       (sinks = 4, window = 64)

Keys are cached after RoPE, so when n tokens are evicted the window's keys are rotated back by n positions
(RoPE rotations compose: R(p - n) = R(-n)·R(p)). Eviction happens in :meth:`advance`, leaving room for the
next ``room`` tokens, so a model that numbers new tokens from ``cache.length`` (no explicit positions) gets the
cache positions by itself. ``sinks=0`` is plain window attention, the baseline whose perplexity blows up once
the first tokens leave the cache.
"""

from __future__ import annotations

import torch
from torch import nn

from tfdojo.errors import ConfigError
from tfdojo.infer.cache import CacheFactory, CacheGeometry, StaticKVCache, check_sizes
from tfdojo.nn.rope import inverse_frequencies, rotate_half


class SinkKVCache(StaticKVCache):
    """Implements ``tfdojo.nn.kv.KVCache``: ``sinks`` first tokens + the last ``window`` tokens, cache positions."""

    def __init__(
        self,
        geometry: CacheGeometry,
        batch: int,
        *,
        sinks: int,
        window: int,
        rope_theta: float,
        room: int = 1,
    ) -> None:
        g = geometry
        check_sizes(window=window, room=room)
        if sinks < 0 or room > window:
            raise ConfigError(f"need sinks >= 0 and room <= window, got sinks={sinks}, room={room}, window={window}")
        super().__init__(g.n_layers, batch, g.n_kv_heads, sinks + window, g.head_dim, dtype=g.dtype, device=g.device)
        self.sinks, self.room = sinks, room
        self.inv_freq = inverse_frequencies(g.head_dim, rope_theta).to(g.device)  # (D/2,)
        self.evicted = 0  # tokens dropped so far (the text position of a new token is length + evicted)

    @classmethod
    def factory(cls, sinks: int = 4, window: int = 256, room: int = 1) -> CacheFactory:
        """A ``generate(..., cache=...)`` factory (equal-length, unpadded prompts: positions come from the cache)."""

        def build(model: nn.Module, batch: int, max_len: int) -> SinkKVCache:
            config = model.config
            if getattr(config, "rope_scaling", None) is not None:
                raise ConfigError("the sink cache re-rotates keys with plain RoPE; this model scales RoPE")
            geometry = CacheGeometry.of(model)
            return cls(geometry, batch, sinks=sinks, window=window, rope_theta=config.rope_theta, room=room)

        return build

    def advance(self, t: int) -> None:
        """Commit t positions, then evict the oldest non-sink tokens so that ``room`` more will fit."""
        self._length += t
        n = self._length + self.room - self.max_len  # max_len = sinks + window
        if n <= 0:
            return
        s, kept = self.sinks, self._length - self.sinks - n  # window tokens that stay
        angles = -n * self.inv_freq  # rotate back by n positions
        cos = torch.cat((angles, angles)).cos().to(self.k.dtype)  # (D,)
        sin = torch.cat((angles, angles)).sin().to(self.k.dtype)
        moved = self.k[:, :, :, s + n : s + n + kept]  # (L, B, Hkv, kept, D)
        self.k[:, :, :, s : s + kept] = moved * cos + rotate_half(moved) * sin
        self.v[:, :, :, s : s + kept] = self.v[:, :, :, s + n : s + n + kept].clone()
        self._length -= n
        self.evicted += n
