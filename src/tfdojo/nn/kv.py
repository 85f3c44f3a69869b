"""The interface a key/value cache offers to model code (implementations live in ``tfdojo.infer.cache``)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor


class KVCache(Protocol):
    """Per-layer key/value storage that grows by T positions per forward call."""

    @property
    def length(self) -> int:
        """Positions already stored (the same for every layer between forward calls)."""
        ...

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store k, v (B, Hkv, T, D) after the first ``length`` positions; return all (B, Hkv, length+T, D)."""
        ...

    def advance(self, t: int) -> None:
        """Commit the T positions that every layer has just stored."""
        ...


@runtime_checkable
class RaggedKVCache(KVCache, Protocol):
    """A cache that keeps each row's own length (e.g. a sinks cache, whose rows evict at their own pace).

    Told which columns of a left-padded prompt are padding, it stores none of them, and it then gives the model
    each row's positions and the key mask over the right-aligned view that ``update`` returns."""

    def drop_left(self, pads: Tensor) -> None:
        """The next forward's first ``pads[i]`` columns of row i are padding: keep them out of the cache."""
        ...

    def positions(self, t: int) -> Tensor:
        """(B, T) positions of every row's next t tokens."""
        ...

    def key_mask(self, t: int) -> Tensor:
        """(B, length + t) 1 where a column of the view holds a real key of that row, 0 on padding."""
        ...
