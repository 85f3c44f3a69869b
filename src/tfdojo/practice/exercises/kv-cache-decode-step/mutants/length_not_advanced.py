import math

import torch


class KVCache:
    """Preallocated (batch, n_heads, max_len, head_dim) key and value buffers filled left to right."""

    def __init__(self, batch: int, n_heads: int, max_len: int, head_dim: int, dtype: torch.dtype = torch.float32):
        self.k = torch.zeros(batch, n_heads, max_len, head_dim, dtype=dtype)
        self.v = torch.zeros(batch, n_heads, max_len, head_dim, dtype=dtype)
        self.max_len = max_len
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (batch, n_heads, t, head_dim) at [length, length + t); return all stored keys and values."""
        end = self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"the cache holds {self.max_len} positions, {end} needed")
        self.k[:, :, self.length : end] = k
        self.v[:, :, self.length : end] = v
        return self.k[:, :, :end], self.v[:, :, :end]


def decode_step(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Append k, v to the cache; causal attention of q (batch, n_heads, t, head_dim) over every stored position."""
    keys, values = cache.append(k, v)
    t, s = q.shape[2], keys.shape[2]
    scores = q @ keys.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, t, s)
    query_pos = torch.arange(s - t, s).unsqueeze(1)  # the new tokens are the last t positions
    keep = torch.arange(s).unsqueeze(0) <= query_pos  # (t, s)
    scores = scores.masked_fill(~keep, float("-inf"))
    return torch.softmax(scores, dim=-1) @ values
