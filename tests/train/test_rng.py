"""Per-rank random streams: independent masks per rank, shared streams kept in step, masks recomputed exactly."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from tfdojo.nn.dropout import Dropout
from tfdojo.train.parallel.rng import per_rank_stream

P = 0.1


def test_each_rank_drops_its_own_elements_and_the_shared_stream_stays_in_step() -> None:
    masks, shared_after = [], []
    for rank in (0, 1):  # two ranks that share one seed
        torch.manual_seed(5)
        drop = Dropout(P)
        per_rank_stream(drop, rank)
        masks.append(drop(torch.ones(200_000)) == 0)
        shared_after.append(torch.get_rng_state())
    n = masks[0].numel()
    for mask in masks:
        assert abs(mask.double().mean().item() - P) < 5 * math.sqrt(P * (1 - P) / n)
    both = (masks[0] & masks[1]).double().mean().item()  # independent draws: p², not p
    assert abs(both - P**2) < 5 * math.sqrt(P**2 * (1 - P**2) / n)
    assert torch.equal(shared_after[0], shared_after[1])  # the replicated regions after it still agree


def test_activation_checkpointing_recomputes_the_same_masks() -> None:
    torch.manual_seed(0)
    block = nn.Sequential(nn.Linear(16, 16), Dropout(0.5), nn.Linear(16, 16))
    per_rank_stream(block[1], rank=1)
    x = torch.randn(64, 16, requires_grad=True)
    grads = []
    for recompute in (False, True):
        torch.manual_seed(1)
        y = checkpoint(block, x, use_reentrant=False) if recompute else block(x)
        (grad,) = torch.autograd.grad(y.square().sum(), x)
        grads.append(grad)
    torch.testing.assert_close(grads[1], grads[0], atol=0, rtol=0)
