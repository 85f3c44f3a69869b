import torch


def sinusoidal_table(n_positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """(n_positions, dim) float32: sin on even channels, cos on odd, angle p / base^(2i/dim)."""
    if dim % 2:
        raise ValueError(f"sinusoidal encodings pair sin and cos channels; dim must be even, got {dim}")
    positions = torch.arange(n_positions, dtype=torch.float64).unsqueeze(1)  # (N, 1)
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)
    angles = positions * inv_freq  # (N, dim/2)
    table = torch.empty(n_positions, dim, dtype=torch.float64)
    table[:, 0::2] = angles.sin()
    table[:, 1::2] = angles.cos()
    return table.float()
