"""Mutant: causal numerator, but the denominator sums over every key, the future included."""

import torch
import torch.nn.functional as F
from torch import Tensor


def elu_feature_map(x: Tensor) -> Tensor:
    """Correct features."""
    return F.elu(x) + 1


def linear_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False) -> Tensor:
    """Normalises causal rows by Σ over all j."""
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)
    den = torch.einsum("bhtf,bhf->bht", phi_q, phi_k.sum(2))
    if causal:
        num = torch.einsum("bhtf,bhtfd->bhtd", phi_q, torch.einsum("bhsf,bhsd->bhsfd", phi_k, v).cumsum(2))
    else:
        num = phi_q @ (phi_k.transpose(-1, -2) @ v)
    return num / den.unsqueeze(-1)
