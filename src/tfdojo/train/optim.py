"""AdamW with weight decay on matrices only (GPT-2/nanoGPT practice: no decay on norms, biases, or 1-D gains)."""

from __future__ import annotations

import torch
from torch import nn

from tfdojo.train.config import OptimConfig


def make_optimizer(model: nn.Module, o: OptimConfig) -> torch.optim.AdamW:
    """AdamW over the model's trainable parameters, decayed when they have two or more dimensions."""
    params = [p for p in model.parameters() if p.requires_grad]
    unique = list({id(p): p for p in params}.values())  # tied weights once
    decay = [p for p in unique if p.dim() >= 2]
    no_decay = [p for p in unique if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=o.lr, betas=o.betas, eps=o.eps, foreach=False)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
