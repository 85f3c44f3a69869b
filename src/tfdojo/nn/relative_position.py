"""T5's bucketed relative position bias (Raffel et al., 2020, "Exploring the Limits of Transfer Learning", §2.1).

Instead of adding positions to the embeddings, every attention score gets a learned scalar per head that depends
only on the distance k - q between key and query. Distances are grouped into buckets: half of the buckets are
exact (0, 1, 2, …), the other half grow logarithmically up to ``max_distance``, past which all share the last one.

    bidirectional (encoder): buckets [0, n/2) for keys at or before the query, [n/2, n) for keys after it
    causal (decoder):        only k ≤ q can be attended, so all n buckets describe distances q - k ≥ 0

The bias is computed once per stack (by its first layer in HF's layout) and added in every layer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def relative_position_bucket(relative: Tensor, *, bidirectional: bool, num_buckets: int, max_distance: int) -> Tensor:
    """Bucket index (same shape, int64) for each key-minus-query distance in ``relative``."""
    offset = torch.zeros_like(relative)
    if bidirectional:
        num_buckets //= 2
        offset = (relative > 0).long() * num_buckets  # keys after the query use the upper half
        distance = relative.abs()
    else:
        distance = (-relative).clamp(min=0)  # a causal query never sees later keys; those collapse to 0
    exact = num_buckets // 2
    # log-spaced buckets from `exact` to `max_distance`; the clamp keeps log() finite where the exact branch wins
    log_ratio = torch.log(distance.clamp(min=exact).float() / exact) / math.log(max_distance / exact)
    far = (exact + (log_ratio * (num_buckets - exact)).long()).clamp(max=num_buckets - 1)
    return offset + torch.where(distance < exact, distance, far)


class RelativePositionBias(nn.Module):
    """Learned per-head bias for each distance bucket: (T queries, S keys) -> additive bias (1, H, T, S)."""

    def __init__(self, n_heads: int, num_buckets: int = 32, max_distance: int = 128, *, bidirectional: bool) -> None:
        super().__init__()
        self.num_buckets, self.max_distance, self.bidirectional = num_buckets, max_distance, bidirectional
        self.embedding = nn.Embedding(num_buckets, n_heads)

    def forward(self, t: int, s: int) -> Tensor:
        """Queries sit at key positions S - T … S - 1 (the end of the keys, as with a cache)."""
        device = self.embedding.weight.device
        q_pos = torch.arange(s - t, s, device=device).unsqueeze(1)  # (T, 1)
        k_pos = torch.arange(s, device=device).unsqueeze(0)  # (1, S)
        buckets = relative_position_bucket(
            k_pos - q_pos,
            bidirectional=self.bidirectional,
            num_buckets=self.num_buckets,
            max_distance=self.max_distance,
        )  # (T, S)
        return self.embedding(buckets).permute(2, 0, 1).unsqueeze(0)  # (1, H, T, S)
