"""Next-token cross-entropy: logits at t are scored against the token at t + 1."""

import torch
from torch import Tensor


def next_token_loss(logits: Tensor, tokens: Tensor, ignore_index: int = -100) -> Tensor:
    """Mean -log p(tokens[:, t+1] | logits[:, t]) over targets that are not ignore_index; 0 when none count."""
    work = torch.promote_types(logits.dtype, torch.float32)
    scores = logits[:, :-1].to(work)  # (B, T-1, V): the last position predicts nothing
    targets = tokens[:, 1:]  # (B, T-1)
    counted = targets != ignore_index
    safe = targets.masked_fill(~counted, 0)  # a valid index to gather with; masked out below
    picked = scores.gather(-1, safe.unsqueeze(-1)).squeeze(-1)  # (B, T-1) logit of each target
    nll = torch.logsumexp(scores, dim=-1) - picked  # -log softmax at the target
    total = (nll * counted).sum()
    return (total / counted.sum().clamp_min(1)).float()
