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

Rows of unequal length (a left-padded batch) keep their own lengths: :meth:`drop_left` says how many padding
columns the prefill writes in each row, :meth:`advance` drops them, and every row then keeps its own sinks and
evicts on its own schedule, exactly as it would alone. Rows are stored from column 0; :meth:`update` returns
them right-aligned (the newest token last in every row), and :meth:`key_mask` and :meth:`positions` give the
model the matching mask and cache positions:

    stored   row 0 [s s w w w w w . ]   row 1 [s s w w . . . . ]     (n = 7 and 4)
    view     row 0 [s s w w w w w N ]   row 1 [0 0 0 s s w w N ]     (N: the new token; 0: masked)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.infer.cache import CacheFactory, CacheGeometry, StaticKVCache, check_room, check_sizes
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
        self.lengths = torch.zeros(batch, dtype=torch.long)  # (B,) positions stored per row
        self.evicted = torch.zeros(batch, dtype=torch.long)  # (B,) tokens dropped per row (text pos = n + evicted)
        self._pads: Tensor | None = None  # (B,) padding columns the next forward writes, dropped by advance

    @classmethod
    def factory(cls, sinks: int = 4, window: int = 256, room: int = 1) -> CacheFactory:
        """A ``generate(..., cache=...)`` factory; positions come from the cache (padded rows: its key_mask too)."""

        def build(model: nn.Module, batch: int, max_len: int) -> SinkKVCache:
            config = model.config
            if getattr(config, "rope_scaling", None) is not None:
                raise ConfigError("the sink cache re-rotates keys with plain RoPE; this model scales RoPE")
            geometry = CacheGeometry.of(model)
            return cls(geometry, batch, sinks=sinks, window=window, rope_theta=config.rope_theta, room=room)

        return build

    @property
    def length(self) -> int:
        """Positions stored in the longest row (the view's width before the new tokens)."""
        return int(self.lengths.max())

    def truncate(self, length: int) -> None:
        """Forget every row's positions from ``length`` on (evicted tokens stay evicted)."""
        if not 0 <= length <= self.length:
            raise ConfigError(f"cannot truncate a cache of {self.length} positions to {length}")
        self.lengths.clamp_(max=length)

    def reset(self) -> None:
        """Forget every stored position and eviction (the buffers are reused, not reallocated)."""
        self.lengths.zero_()
        self.evicted.zero_()
        self._pads = None

    def drop_left(self, pads: Sequence[int] | Tensor) -> None:
        """The next forward's first ``pads[i]`` columns of row i are left padding: keep them out of the cache."""
        pads = torch.as_tensor(pads, dtype=torch.long).flatten()
        if pads.shape != self.lengths.shape or bool((pads < 0).any()):
            raise ConfigError(f"need one padding count >= 0 per row ({len(self.lengths)}), got {pads.tolist()}")
        self._pads = pads

    def positions(self, t: int) -> Tensor:
        """(B, T) cache positions of every row's next t tokens."""
        return self.lengths[:, None] + torch.arange(t)

    def key_mask(self, t: int) -> Tensor:
        """(B, length + t) 1 where a column of :meth:`update`'s view holds a real key of that row, 0 on the padding."""
        width = self.length + t
        return (torch.arange(width) >= width - t - self.lengths[:, None]).long()

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write k, v (B, Hkv, T, D) after each row's positions; return right-aligned views (B, Hkv, length + T, D)."""
        t, n = k.shape[2], self.length
        check_room(self.max_len, n, t)
        if bool((self.lengths == n).all()):  # rows of one length: write in place, return views
            self.k[layer, :, :, n : n + t] = k
            self.v[layer, :, :, n : n + t] = v
            return self.k[layer, :, :, : n + t], self.v[layer, :, :, : n + t]
        b, h, _, d = k.shape
        write = (self.lengths[:, None] + torch.arange(t)).to(k.device)  # (B, T) each row's next columns
        write = write[:, None, :, None].expand(b, h, t, d)
        self.k[layer].scatter_(2, write, k)
        self.v[layer].scatter_(2, write, v)
        width = n + t
        read = (torch.arange(width) - (width - t - self.lengths[:, None])).clamp(min=0)  # (B, S); padding: col 0
        read = read.to(k.device)[:, None, :, None].expand(b, h, width, d)
        return self.k[layer].gather(2, read), self.v[layer].gather(2, read)  # (B, Hkv, S, D), masked padding

    def advance(self, t: int) -> None:
        """Commit t positions, drop announced padding, then evict each row's oldest non-sink tokens for ``room``."""
        self.lengths += t
        if self._pads is not None:
            self._move(self._pads, start=0, rotate=False)
            self._pads = None
        evict = (self.lengths + self.room - self.max_len).clamp(min=0)  # (B,) max_len = sinks + window
        if bool((evict > 0).any()):
            self._move(evict, start=self.sinks, rotate=True)
            self.evicted += evict

    def _move(self, n: Tensor, start: int, rotate: bool) -> None:
        """Drop n[i] columns of row i at ``start``, shifting the rest left (keys rotated back by n[i] if ``rotate``)."""
        cols = torch.arange(self.max_len)
        source = torch.where(cols >= start, cols + n[:, None], cols).clamp(max=self.max_len - 1)  # (B, S)
        index = source.to(self.k.device)[None, :, None, :, None].expand_as(self.k)  # (L, B, Hkv, S, D)
        self.k = self.k.gather(3, index)
        self.v = self.v.gather(3, index)
        if rotate:  # RoPE rotations compose: R(p - n) = R(-n)·R(p), for the moved columns only
            angles = -(n[:, None] * (cols >= start)).to(self.inv_freq)[..., None] * self.inv_freq  # (B, S, D/2)
            angles = torch.cat((angles, angles), dim=-1)[None, :, None]  # (1, B, 1, S, D)
            cos, sin = angles.cos().to(self.k.dtype), angles.sin().to(self.k.dtype)
            self.k = self.k * cos + rotate_half(self.k) * sin
        self.lengths -= n
