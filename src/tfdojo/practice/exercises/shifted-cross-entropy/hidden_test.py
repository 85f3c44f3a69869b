"""Hidden tests for the shifted cross-entropy: torch's F.cross_entropy on shifted tensors is the reference."""

import math

import torch
import torch.nn.functional as F


def _reference(logits: torch.Tensor, tokens: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    v = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].double().reshape(-1, v), tokens[:, 1:].reshape(-1), ignore_index=ignore_index)


def _data(b: int, t: int, v: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, v, generator=g, dtype=torch.float64) * 2, torch.randint(0, v, (b, t), generator=g)


def test_hand_computed_value(sub) -> None:
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0], [5.0, 5.0]]])  # (1, 3, 2)
    tokens = torch.tensor([[1, 0, 1]])
    # t=0 predicts token 0 with p = 1/2; t=1 predicts token 1 with p = 1/4; t=2 has no target.
    expected = (math.log(2.0) + math.log(4.0)) / 2
    loss = sub.next_token_loss(logits, tokens)
    assert loss.dim() == 0 and loss.dtype == torch.float32
    assert abs(loss.item() - expected) < 1e-6


def test_matches_cross_entropy(sub) -> None:
    logits, tokens = _data(3, 17, 11, 0)
    torch.testing.assert_close(sub.next_token_loss(logits, tokens).double(), _reference(logits, tokens))


def test_ignore_index_is_left_out_of_the_mean(sub) -> None:
    logits, tokens = _data(2, 9, 7, 1)
    tokens[0, 5:] = -100
    tokens[1, :3] = -100
    torch.testing.assert_close(sub.next_token_loss(logits, tokens).double(), _reference(logits, tokens))
    tokens[tokens == -100] = 6
    tokens[0, 2] = 6
    custom = sub.next_token_loss(logits, tokens, ignore_index=6).double()
    torch.testing.assert_close(custom, _reference(logits, tokens, ignore_index=6))


def test_gradients_match(sub) -> None:
    logits, tokens = _data(2, 8, 5, 2)
    tokens[1, 4] = -100
    mine = logits.clone().requires_grad_()
    ref = logits.clone().requires_grad_()
    sub.next_token_loss(mine, tokens).backward()
    _reference(ref, tokens).backward()
    torch.testing.assert_close(mine.grad, ref.grad, rtol=1e-5, atol=1e-7)


def test_large_logits_are_stable(sub) -> None:
    logits, tokens = _data(2, 6, 9, 3)
    big = (logits * 1e4).float()
    loss = sub.next_token_loss(big, tokens)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss.double(), _reference(big, tokens), rtol=1e-5, atol=1e-3)


def test_half_precision_input(sub) -> None:
    logits, tokens = _data(2, 10, 13, 4)
    half = logits.to(torch.bfloat16)
    loss = sub.next_token_loss(half, tokens)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss.double(), _reference(half, tokens), rtol=1e-5, atol=1e-5)


def test_no_targets_gives_zero_and_zero_gradient(sub) -> None:
    single = torch.randn(3, 1, 5, requires_grad=True)
    loss = sub.next_token_loss(single, torch.zeros(3, 1, dtype=torch.long))
    assert loss.item() == 0.0
    loss.backward()
    assert single.grad is not None and torch.all(single.grad == 0)
    logits = torch.randn(1, 4, 5, requires_grad=True)
    tokens = torch.tensor([[2, -100, -100, -100]])
    loss = sub.next_token_loss(logits, tokens)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(logits.grad == 0)
