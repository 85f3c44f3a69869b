"""Linear warmup followed by cosine decay to a floor, as a function and as a PyTorch scheduler."""

import torch


def warmup_cosine_lr(step: int, *, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float = 0.0) -> float:
    """The learning rate at optimizer step `step` (from 0): linear warmup, half-cosine decay, then min_lr."""
    raise NotImplementedError


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int, min_lr_ratio: float = 0.0
) -> torch.optim.lr_scheduler.LRScheduler:
    """A scheduler giving each group base_lr · f(step), f the schedule above with max_lr 1, min_lr min_lr_ratio."""
    raise NotImplementedError
