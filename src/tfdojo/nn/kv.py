"""The interface a key/value cache offers to model code (implementations live in ``tfdojo.infer.cache``)."""

from __future__ import annotations

from typing import Protocol

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
