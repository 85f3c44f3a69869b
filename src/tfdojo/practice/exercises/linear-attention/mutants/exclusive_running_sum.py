"""Mutant: the running sums stop before the query's own key (an exclusive cumsum)."""

import torch
import torch.nn.functional as F
from torch import Tensor


def elu_feature_map(x: Tensor) -> Tensor:
    """Correct features."""
    return F.elu(x) + 1


def linear_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False) -> Tensor:
    """Query i sees keys 0..i-1 only."""
    phi_q, phi_k = elu_feature_map(q), elu_feature_map(k)
    if causal:
        outer = torch.einsum("bhsf,bhsd->bhsfd", phi_k, v)
        num = torch.einsum("bhtf,bhtfd->bhtd", phi_q, outer.cumsum(2) - outer)
        den = torch.einsum("bhtf,bhtf->bht", phi_q, phi_k.cumsum(2) - phi_k)
    else:
        num = phi_q @ (phi_k.transpose(-1, -2) @ v)
        den = torch.einsum("bhtf,bhf->bht", phi_q, phi_k.sum(2))
    return num / den.unsqueeze(-1)
