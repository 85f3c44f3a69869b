import torch


class KVCache:
    """Preallocated (batch, n_heads, max_len, head_dim) key and value buffers filled left to right."""

    def __init__(self, batch: int, n_heads: int, max_len: int, head_dim: int, dtype: torch.dtype = torch.float32):
        raise NotImplementedError

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (batch, n_heads, t, head_dim) at [length, length + t); return all stored keys and values."""
        raise NotImplementedError


def decode_step(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Append k, v to the cache; causal attention of q (batch, n_heads, t, head_dim) over every stored position."""
    raise NotImplementedError
