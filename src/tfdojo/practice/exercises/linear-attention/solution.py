"""Linear attention: elu+1 features, associativity for the non-causal case, running sums for the causal one."""

import torch
import torch.nn.functional as F
from torch import Tensor


def elu_feature_map(x: Tensor) -> Tensor:
    """φ(x) = elu(x) + 1, elementwise and strictly positive."""
    return F.elu(x) + 1


def linear_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False) -> Tensor:
    """q (B, H, T, D), k/v (B, H, S, D) -> φ(q)ᵀ Σ φ(k) vᵀ / φ(q)ᵀ Σ φ(k), over j ≤ i when causal."""
    work = torch.promote_types(q.dtype, torch.float32)
    phi_q, phi_k, vw = elu_feature_map(q.to(work)), elu_feature_map(k.to(work)), v.to(work)
    if causal:
        state = torch.einsum("bhsf,bhsd->bhsfd", phi_k, vw).cumsum(2)  # (B, H, T, F, D): Σ_{j≤i} φ(k_j) v_jᵀ
        norm = phi_k.cumsum(2)  # (B, H, T, F): Σ_{j≤i} φ(k_j)
        num = torch.einsum("bhtf,bhtfd->bhtd", phi_q, state)
        den = torch.einsum("bhtf,bhtf->bht", phi_q, norm)
    else:
        state = torch.einsum("bhsf,bhsd->bhfd", phi_k, vw)  # (B, H, F, D)
        num = torch.einsum("bhtf,bhfd->bhtd", phi_q, state)
        den = torch.einsum("bhtf,bhf->bht", phi_q, phi_k.sum(2))
    return (num / den.unsqueeze(-1)).to(q.dtype)
