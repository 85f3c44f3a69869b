import torch


def sinusoidal_table(n_positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """(n_positions, dim) float32: sin on even channels, cos on odd, angle p / base^(2i/dim)."""
    raise NotImplementedError
