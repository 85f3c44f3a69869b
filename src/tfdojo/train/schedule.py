"""The learning-rate schedule: linear warmup, then cosine decay (Loshchilov & Hutter, 2017, "SGDR")."""

from __future__ import annotations

import math

from tfdojo.train.config import ScheduleConfig


def lr_at(step: int, peak: float, s: ScheduleConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based): warmup to ``peak``, cosine to ``min_lr_ratio·peak``."""
    if s.warmup_steps and step < s.warmup_steps:
        return peak * (step + 1) / s.warmup_steps
    decay_steps = max(1, s.max_steps - s.warmup_steps)
    progress = min(1.0, (step - s.warmup_steps) / decay_steps)
    floor = peak * s.min_lr_ratio
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))
