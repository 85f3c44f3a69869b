import torch


def apply_rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate channel pairs (i, i + D/2) of x (B, H, T, D) by positions (T,) times base^(-2i/D)."""
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"RoPE needs an even head dimension, got {d}")
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    theta = base ** (-torch.arange(0, d, 2, dtype=work) / d)  # (D/2,)
    angles = positions.to(work).unsqueeze(-1) * theta  # (T, D/2)
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., : d // 2].to(work), x[..., d // 2 :].to(work)
    out = torch.cat((x1 * cos + x2 * sin, x2 * cos - x1 * sin), dim=-1)
    return out.to(x.dtype)
