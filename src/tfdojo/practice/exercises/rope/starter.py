import torch


def apply_rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate channel pairs (i, i + D/2) of x (B, H, T, D) by positions (T,) times base^(-2i/D)."""
    raise NotImplementedError
