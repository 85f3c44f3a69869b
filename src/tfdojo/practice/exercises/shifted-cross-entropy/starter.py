"""Next-token cross-entropy: logits at t are scored against the token at t + 1."""

from torch import Tensor


def next_token_loss(logits: Tensor, tokens: Tensor, ignore_index: int = -100) -> Tensor:
    """Mean -log p(tokens[:, t+1] | logits[:, t]) over targets that are not ignore_index; 0 when none count."""
    raise NotImplementedError
