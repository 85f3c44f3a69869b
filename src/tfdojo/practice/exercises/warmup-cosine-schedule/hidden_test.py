"""Hidden tests for warmup + cosine: hand values, torch's LinearLR and CosineAnnealingLR as independent references."""

import math

import torch


def _lr(sub, step: int, **kw: float) -> float:
    return sub.warmup_cosine_lr(step, **kw)


def test_hand_values(sub) -> None:
    kw = {"max_lr": 1.0, "warmup_steps": 4, "total_steps": 12}
    got = [_lr(sub, s, **kw) for s in (0, 1, 2, 3, 4, 8, 12, 13, 100)]
    expected = [0.25, 0.5, 0.75, 1.0, 1.0, 0.5, 0.0, 0.0, 0.0]
    assert all(math.isclose(a, b, abs_tol=1e-12) for a, b in zip(got, expected, strict=True)), got


def test_min_lr_floor(sub) -> None:
    kw = {"max_lr": 3e-4, "warmup_steps": 10, "total_steps": 110, "min_lr": 3e-5}
    assert math.isclose(_lr(sub, 60, **kw), 3e-5 + 0.5 * (3e-4 - 3e-5), rel_tol=1e-12)
    assert math.isclose(_lr(sub, 110, **kw), 3e-5, rel_tol=1e-12)
    assert math.isclose(_lr(sub, 500, **kw), 3e-5, rel_tol=1e-12)
    decay = [_lr(sub, s, **kw) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(decay, decay[1:], strict=False))


def test_warmup_matches_torch_linear_lr(sub) -> None:
    warmup = 7
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=2.0)
    ref = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1)
    for step in range(warmup):
        got = _lr(sub, step, max_lr=2.0, warmup_steps=warmup, total_steps=30)
        assert math.isclose(got, opt.param_groups[0]["lr"], rel_tol=1e-9), (step, got)
        opt.step()
        ref.step()


def test_decay_matches_torch_cosine_annealing(sub) -> None:
    warmup, total, max_lr, min_lr = 5, 45, 1e-3, 1e-4
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=max_lr)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=min_lr)
    for i in range(total - warmup + 1):
        got = _lr(sub, warmup + i, max_lr=max_lr, warmup_steps=warmup, total_steps=total, min_lr=min_lr)
        assert math.isclose(got, opt.param_groups[0]["lr"], rel_tol=1e-7), (i, got)
        opt.step()
        ref.step()


def test_no_warmup_starts_at_max(sub) -> None:
    assert math.isclose(_lr(sub, 0, max_lr=0.1, warmup_steps=0, total_steps=10), 0.1)
    assert math.isclose(_lr(sub, 5, max_lr=0.1, warmup_steps=0, total_steps=10), 0.05)


def test_bad_arguments_raise(sub) -> None:
    for kw in (
        {"max_lr": 1.0, "warmup_steps": -1, "total_steps": 10},
        {"max_lr": 1.0, "warmup_steps": 10, "total_steps": 10},
        {"max_lr": 1.0, "warmup_steps": 2, "total_steps": 10, "min_lr": 2.0},
    ):
        try:
            _lr(sub, 3, **kw)
        except ValueError:
            continue
        raise AssertionError(f"expected ValueError for {kw}")


def test_scheduler_sets_every_group(sub) -> None:
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.AdamW([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.01}])
    sched = sub.warmup_cosine_scheduler(opt, warmup_steps=3, total_steps=13, min_lr_ratio=0.1)
    # The scheduler lives in the submission's process with its own copy of the optimizer: read the groups there.
    for step in range(16):
        groups = sched.optimizer.param_groups
        assert [len(g["params"]) for g in groups] == [1, 1], "the scheduler must drive the optimizer it was given"
        for group, base in zip(groups, (0.1, 0.01), strict=True):
            want = base * _lr(sub, step, max_lr=1.0, warmup_steps=3, total_steps=13, min_lr=0.1)
            independent = base * (
                (step + 1) / 3 if step < 3 else 0.1 + 0.45 * (1 + math.cos(math.pi * min(step - 3, 10) / 10))
            )
            assert math.isclose(group["lr"], want, rel_tol=1e-9), (step, group["lr"], want)
            assert math.isclose(group["lr"], independent, rel_tol=1e-9), (step, group["lr"], independent)
        sched.optimizer.step()
        sched.step()
