"""Random streams: independent masks per rank, shared streams kept in step, masks recomputed and resumed exactly."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from conftest import tiny_config
from tfdojo.nn.dropout import Dropout
from tfdojo.train import Trainer
from tfdojo.train.metrics import read_metrics
from tfdojo.train.parallel.rng import per_rank_stream
from tfdojo.train.peak import measured_peak_flops

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
    before = torch.get_rng_state()
    drop.eval()(torch.ones(10))  # evaluation draws nothing, as in one process
    assert torch.equal(torch.get_rng_state(), before)


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


def test_a_resumed_run_draws_the_same_dropout_masks(tmp_path: Path) -> None:
    """Nothing but training draws from the global stream (the MFU peak measurement has its own generator), so the
    RNG state a checkpoint keeps is the one the next step's dropout needs."""
    config = tiny_config(model={"dropout": P}, checkpoint={"every": 1})
    Trainer(config, tmp_path / "whole", progress=False).run(2)
    Trainer(config, tmp_path / "resumed", progress=False).run(1)
    measured_peak_flops.cache_clear()  # resuming happens in a new process, which measures the peak again
    Trainer(config, tmp_path / "resumed", progress=False, resume=True).run(2)
    losses = [[row["loss"] for row in read_metrics(tmp_path / run)] for run in ("whole", "resumed")]
    assert losses[0] == losses[1] and len(losses[0]) == 2
