"""Mutant: φ(x) = elu(x), which can be negative, so weights and denominators change sign."""

import torch
import torch.nn.functional as F
from torch import Tensor


def elu_feature_map(x: Tensor) -> Tensor:
    """Forgets the + 1."""
    return F.elu(x)


def linear_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False) -> Tensor:
    """Right sums around the wrong features."""
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)
    if causal:
        state = torch.einsum("bhsf,bhsd->bhsfd", phi_k, v).cumsum(2)
        num = torch.einsum("bhtf,bhtfd->bhtd", phi_q, state)
        den = torch.einsum("bhtf,bhtf->bht", phi_q, phi_k.cumsum(2))
    else:
        num = phi_q @ (phi_k.transpose(-1, -2) @ v)
        den = torch.einsum("bhtf,bhf->bht", phi_q, phi_k.sum(2))
    return num / den.unsqueeze(-1)
