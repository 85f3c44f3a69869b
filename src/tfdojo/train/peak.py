"""This machine's matrix-multiply throughput, the denominator of the MFU the progress bar shows."""

from __future__ import annotations

import time
from functools import cache

import torch


@cache
def measured_peak_flops(dtype: torch.dtype = torch.float32, size: int = 512, seconds: float = 0.3) -> float:
    """FLOP/s of repeated square GEMMs at ``dtype`` (a practical peak; MFU against it is an upper bound)."""
    generator = torch.Generator().manual_seed(0)  # not the global stream: a run's dropout masks must not depend on it
    a = torch.randn(size, size, dtype=dtype, generator=generator)
    b = torch.randn(size, size, dtype=dtype, generator=generator)
    a @ b  # warm-up: thread pool and kernel selection
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        a @ b
        count += 1
    return 2 * size**3 * count / elapsed
