import torch


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the last dim, statistics in float32."""
    xf = x.float()
    normed = xf * torch.rsqrt(xf.pow(2).sum(dim=-1, keepdim=True) + eps)
    return weight * normed.to(x.dtype)
