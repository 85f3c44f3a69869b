"""Hidden tests for clipping by global norm: torch.nn.utils.clip_grad_norm_ on an identical copy is the reference."""

import math

import torch


def _model_with_grads(seed: int, grad_scale: float) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3))
    (model(torch.randn(4, 5)).square().sum() * grad_scale).backward()
    return model


def _copy_with_grads(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    copies = []
    for p in model.parameters():
        q = torch.nn.Parameter(p.detach().clone())
        q.grad = p.grad.clone()
        copies.append(q)
    return copies


def _compare(sub, model: torch.nn.Module, max_norm: float, norm_type: float = 2.0) -> None:
    reference = _copy_with_grads(model)
    grad_objects = [p.grad for p in model.parameters()]
    got = sub.clip_by_global_norm(model.parameters(), max_norm, norm_type)
    want = torch.nn.utils.clip_grad_norm_(reference, max_norm, norm_type)
    assert isinstance(got, torch.Tensor) and got.dim() == 0
    torch.testing.assert_close(got.float(), want.float())
    for p, q, before in zip(model.parameters(), reference, grad_objects, strict=True):
        assert p.grad is before, "clip the existing .grad tensors in place"
        torch.testing.assert_close(p.grad, q.grad)


def test_large_gradients_are_clipped(sub) -> None:
    model = _model_with_grads(0, 50.0)
    _compare(sub, model, 1.0)
    norm = math.sqrt(sum(float(p.grad.square().sum()) for p in model.parameters()))
    assert abs(norm - 1.0) < 1e-4


def test_small_gradients_are_untouched(sub) -> None:
    model = _model_with_grads(1, 1e-3)
    before = [p.grad.clone() for p in model.parameters()]
    _compare(sub, model, 10.0)
    for p, b in zip(model.parameters(), before, strict=True):
        assert torch.equal(p.grad, b)


def test_global_not_per_tensor(sub) -> None:
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])  # global norm 5
    total = sub.clip_by_global_norm([a, b], 1.0)
    assert abs(total.item() - 5.0) < 1e-6
    torch.testing.assert_close(a.grad, torch.tensor([0.6, 0.0]), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(b.grad, torch.tensor([0.8]), atol=1e-6, rtol=1e-5)


def test_infinity_and_p_norms(sub) -> None:
    _compare(sub, _model_with_grads(2, 20.0), 0.5, float("inf"))
    _compare(sub, _model_with_grads(3, 20.0), 0.5, 1.0)
    _compare(sub, _model_with_grads(4, 20.0), 0.5, 3.0)


def test_parameters_without_gradients_are_skipped(sub) -> None:
    model = _model_with_grads(5, 30.0)
    frozen = torch.nn.Parameter(torch.ones(3))
    params = [*model.parameters(), frozen]
    total = sub.clip_by_global_norm(iter(params), 0.1)
    assert frozen.grad is None
    reference = _model_with_grads(5, 30.0)
    want = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.1)
    torch.testing.assert_close(total.float(), want.float())
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)


def test_no_gradients_returns_zero(sub) -> None:
    total = sub.clip_by_global_norm([torch.nn.Parameter(torch.ones(2))], 1.0)
    assert float(total) == 0.0
    assert float(sub.clip_by_global_norm([], 1.0)) == 0.0
