"""Hidden tests for top-2 MoE routing: tfdojo.nn.moe (route, load_balancing_loss, the MoE layer) is the reference."""

import torch
import torch.nn.functional as F

from tfdojo.nn.moe import MoE
from tfdojo.nn.moe import load_balancing_loss as reference_loss

DIM, HIDDEN, EXPERTS = 6, 10, 5


class _CountingExpert:
    """Expert e of a tfdojo MoE (SwiGLU), recording how many rows it was called on."""

    def __init__(self, moe: MoE, e: int) -> None:
        self.moe, self.e, self.rows = moe, e, 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[0]
        w = self.moe.experts
        return (F.silu(x @ w.gate[self.e].T) * (x @ w.up[self.e].T)) @ w.down[self.e].T


def _layer(seed: int) -> MoE:
    torch.manual_seed(seed)
    return MoE(DIM, HIDDEN, EXPERTS, 2, renormalize=True).double()


def test_route_matches_reference(sub) -> None:
    logits = torch.randn(40, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    weights, experts = sub.route_top2(logits)
    ref_w, ref_e = MoE(4, 4, 7, 2).route(logits)
    assert weights.shape == (40, 2) and experts.dtype == torch.long
    assert torch.equal(experts, ref_e)
    torch.testing.assert_close(weights.double(), ref_w.double())
    torch.testing.assert_close(weights.sum(-1).double(), torch.ones(40, dtype=torch.float64))


def test_route_hand_example(sub) -> None:
    probs = torch.tensor([[0.1, 0.6, 0.2, 0.1]])
    weights, experts = sub.route_top2(torch.log(probs))
    assert experts.tolist() == [[1, 2]]
    torch.testing.assert_close(weights.double(), torch.tensor([[0.75, 0.25]], dtype=torch.float64))


def test_loss_matches_reference(sub) -> None:
    logits = torch.randn(64, 8, generator=torch.Generator().manual_seed(1)) * 3
    torch.testing.assert_close(sub.load_balancing_loss(logits).float(), reference_loss(logits, 2))


def test_loss_is_two_when_uniform_and_larger_when_collapsed(sub) -> None:
    assert abs(sub.load_balancing_loss(torch.zeros(16, 4)).item() - 2.0) < 1e-6
    collapsed = torch.tensor([[9.0, 8.0, 0.0, 0.0]]).expand(16, -1)  # everyone picks experts 0 and 1
    # f = (1, 1, 0, 0); P ≈ (0.73, 0.27, 0, 0) -> 4 · (P_0 + P_1) ≈ 4
    p = torch.softmax(collapsed[0].double(), -1)
    assert abs(sub.load_balancing_loss(collapsed).item() - 4 * (p[0] + p[1]).item()) < 1e-5


def test_loss_gradient_matches_reference(sub) -> None:
    logits = torch.randn(30, 6, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mine = logits.clone().requires_grad_()
    ref = logits.clone().requires_grad_()
    sub.load_balancing_loss(mine).backward()
    reference_loss(ref, 2).backward()
    torch.testing.assert_close(mine.grad.float(), ref.grad.float())


def test_forward_matches_tfdojo_moe(sub) -> None:
    moe = _layer(3)
    x = torch.randn(13, DIM, dtype=torch.float64)
    experts = [_CountingExpert(moe, e) for e in range(EXPERTS)]
    y = sub.moe_forward(x, moe.router.weight, experts)
    torch.testing.assert_close(y, moe(x)[0])


def test_each_expert_sees_only_its_tokens(sub) -> None:
    moe = _layer(4)
    x = torch.randn(21, DIM, dtype=torch.float64)
    experts = [_CountingExpert(moe, e) for e in range(EXPERTS)]
    sub.moe_forward(x, moe.router.weight, experts)
    chosen = (x @ moe.router.weight.T).topk(2, dim=-1).indices
    expected = [int((chosen == e).sum()) for e in range(EXPERTS)]
    assert [ex.rows for ex in experts] == expected, ([ex.rows for ex in experts], expected)


def test_unused_expert_and_single_token(sub) -> None:
    moe = _layer(5)
    x = torch.randn(1, DIM, dtype=torch.float64)
    experts = [_CountingExpert(moe, e) for e in range(EXPERTS)]
    torch.testing.assert_close(sub.moe_forward(x, moe.router.weight, experts), moe(x)[0])
    assert sum(ex.rows for ex in experts) == 2


def test_forward_gradients_match(sub) -> None:
    moe = _layer(6)
    x = torch.randn(9, DIM, dtype=torch.float64)
    target = torch.randn(9, DIM, dtype=torch.float64)
    params = [moe.router.weight, moe.experts.gate, moe.experts.up, moe.experts.down]
    xs = [x.clone().requires_grad_() for _ in range(2)]
    experts = [_CountingExpert(moe, e) for e in range(EXPERTS)]
    mine = torch.autograd.grad((sub.moe_forward(xs[0], moe.router.weight, experts) * target).sum(), [xs[0], *params])
    ref = torch.autograd.grad((moe(xs[1])[0] * target).sum(), [xs[1], *params])
    for got, want in zip(mine, ref, strict=True):
        torch.testing.assert_close(got, want)
