"""Mutant: warmup is step / warmup_steps, so the first update runs at lr 0 and max_lr arrives a step late."""

import math

import torch


def warmup_cosine_lr(step: int, *, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """Off by one in the warmup."""
    if warmup_steps < 0 or total_steps <= warmup_steps or min_lr > max_lr:
        raise ValueError("bad schedule arguments")
    if step < warmup_steps:
        return max_lr * step / warmup_steps
    if step > total_steps:
        return min_lr
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * progress))


def warmup_cosine_scheduler(optimizer, *, warmup_steps, total_steps, min_lr_ratio=0.0):
    """LambdaLR over the function above."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: warmup_cosine_lr(
            s, max_lr=1.0, warmup_steps=warmup_steps, total_steps=total_steps, min_lr=min_lr_ratio
        ),
    )
