"""Linear warmup followed by cosine decay to a floor, as a function and as a PyTorch scheduler."""

import math

import torch


def warmup_cosine_lr(step: int, *, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """The learning rate at optimizer step `step` (from 0): linear warmup, half-cosine decay, then min_lr."""
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
    if total_steps <= warmup_steps:
        raise ValueError(f"total_steps ({total_steps}) must be larger than warmup_steps ({warmup_steps})")
    if min_lr > max_lr:
        raise ValueError(f"min_lr ({min_lr}) must not exceed max_lr ({max_lr})")
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step > total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)  # 0 at the end of warmup, 1 at total_steps
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LRScheduler:
    """A scheduler giving each group base_lr · f(step), f the schedule above with max_lr 1, min_lr min_lr_ratio."""

    def factor(step: int) -> float:
        return warmup_cosine_lr(
            step, max_lr=1.0, warmup_steps=warmup_steps, total_steps=total_steps, min_lr=min_lr_ratio
        )

    factor(0)  # validates the arguments now rather than at the first step
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
