"""Linear attention: elu+1 features, associativity for the non-causal case, running sums for the causal one."""

from torch import Tensor


def elu_feature_map(x: Tensor) -> Tensor:
    """φ(x) = elu(x) + 1, elementwise and strictly positive."""
    raise NotImplementedError


def linear_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False) -> Tensor:
    """q (B, H, T, D), k/v (B, H, S, D) -> φ(q)ᵀ Σ φ(k) vᵀ / φ(q)ᵀ Σ φ(k), over j ≤ i when causal."""
    raise NotImplementedError
