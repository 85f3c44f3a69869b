"""Mixture of Experts against a plain per-token loop (fp64), HF's Mixtral block and loss, and hand-built drops."""

import pytest
import torch
import torch.nn.functional as F
from transformers import MixtralConfig
from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock, load_balancing_loss_func

from tfdojo.errors import ConfigError
from tfdojo.nn.moe import MoE, load_balancing_loss, router_z_loss

DIM, HIDDEN, EXPERTS = 8, 16, 4


def dense_reference(moe: MoE, x: torch.Tensor, renormalize: bool = True) -> torch.Tensor:
    """Token by token, expert by expert: softmax, top-k, renormalise, weighted sum of SwiGLU experts."""
    out = torch.zeros_like(x)
    for n in range(x.shape[0]):
        probs = torch.softmax(moe.router.weight @ x[n], dim=-1)
        weights, chosen = probs.topk(moe.top_k)
        if renormalize:
            weights = weights / weights.sum()
        for w, e in zip(weights, chosen.tolist(), strict=True):
            gate, up, down = moe.experts.gate[e], moe.experts.up[e], moe.experts.down[e]
            out[n] += w * (down @ (F.silu(gate @ x[n]) * (up @ x[n])))
    return out


@pytest.mark.parametrize(("top_k", "renormalize"), [(2, True), (1, False), (3, True)])
def test_dropless_matches_dense_loop_in_fp64(top_k: int, renormalize: bool) -> None:
    torch.manual_seed(0)
    moe = MoE(DIM, HIDDEN, EXPERTS, top_k, renormalize=renormalize).double()
    x = torch.randn(3, 5, DIM, dtype=torch.float64)
    y, aux = moe(x)
    torch.testing.assert_close(y, dense_reference(moe, x.view(-1, DIM), renormalize).view(3, 5, DIM))
    assert aux.dropped == 0 and aux.router_logits.shape == (15, EXPERTS)


def test_gradients_match_dense_loop_for_router_and_experts() -> None:
    torch.manual_seed(1)
    moe = MoE(DIM, HIDDEN, EXPERTS, 2).double()
    x = torch.randn(12, DIM, dtype=torch.float64, requires_grad=True)
    target = torch.randn(12, DIM, dtype=torch.float64)
    params = [x, moe.router.weight, moe.experts.gate, moe.experts.up, moe.experts.down]
    ours = torch.autograd.grad((moe(x)[0] * target).sum(), params)
    reference = torch.autograd.grad((dense_reference(moe, x) * target).sum(), params)
    for got, want in zip(ours, reference, strict=True):
        assert want.abs().sum() > 0
        torch.testing.assert_close(got, want)


def test_matches_hf_mixtral_sparse_moe_block() -> None:
    torch.manual_seed(2)
    config = MixtralConfig(
        hidden_size=DIM, intermediate_size=HIDDEN, num_local_experts=EXPERTS, num_experts_per_tok=2, hidden_act="silu"
    )
    hf = MixtralSparseMoeBlock(config).eval()
    ours = MoE(DIM, HIDDEN, EXPERTS, 2)
    with torch.no_grad():
        hf.gate.weight.copy_(ours.router.weight)
        hf.experts.gate_up_proj.copy_(torch.cat((ours.experts.gate, ours.experts.up), dim=1))  # (E, 2·hidden, dim)
        hf.experts.down_proj.copy_(ours.experts.down)
    x = torch.randn(2, 9, DIM)
    y, aux = ours(x)
    torch.testing.assert_close(y, hf(x))
    hf_logits, _, _ = hf.gate(x)
    torch.testing.assert_close(aux.router_logits, hf_logits)


def test_load_balancing_loss_matches_hf() -> None:
    torch.manual_seed(3)
    layers = tuple(torch.randn(20, EXPERTS) * 2 for _ in range(3))
    expected = load_balancing_loss_func(layers[:1], EXPERTS, top_k=2)
    torch.testing.assert_close(load_balancing_loss(layers[0], 2), expected)
    whole_model = load_balancing_loss_func(layers, EXPERTS, top_k=2)
    torch.testing.assert_close(load_balancing_loss(torch.cat(layers), 2), whole_model)
    mask = (torch.arange(20) % 3 != 0).long().view(2, 10)  # (B, T) attention mask with padding
    masked = load_balancing_loss_func(layers[:1], EXPERTS, top_k=2, attention_mask=mask)
    torch.testing.assert_close(load_balancing_loss(layers[0], 2, token_mask=mask.view(-1)), masked)


def test_forward_reports_the_losses_of_its_own_logits() -> None:
    torch.manual_seed(4)
    moe = MoE(DIM, HIDDEN, EXPERTS, 2)
    _, aux = moe(torch.randn(10, DIM))
    expected = load_balancing_loss_func((aux.router_logits,), EXPERTS, top_k=2)
    torch.testing.assert_close(aux.load_balancing_loss, expected)
    torch.testing.assert_close(aux.z_loss, router_z_loss(aux.router_logits))


def test_z_loss_matches_st_moe_formula() -> None:
    torch.manual_seed(5)
    logits = torch.randn(6, EXPERTS, dtype=torch.float64) * 3
    expected = sum(torch.log(torch.exp(row).sum()) ** 2 for row in logits) / 6
    torch.testing.assert_close(router_z_loss(logits).double(), expected)


def hand_routed(top_k: int, capacity_factor: float, router_rows: list[list[float]]) -> MoE:
    """Two experts whose router reads the first two input channels, so each token's choices are set by x."""
    torch.manual_seed(6)
    moe = MoE(DIM, HIDDEN, 2, top_k, capacity_factor).double()
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[:, :2] = torch.tensor(router_rows, dtype=torch.float64)
    return moe


def expert(moe: MoE, e: int, x: torch.Tensor) -> torch.Tensor:
    gate, up, down = moe.experts.gate[e], moe.experts.up[e], moe.experts.down[e]
    return down @ (F.silu(gate @ x) * (up @ x))


def test_capacity_drops_tokens_in_arrival_order_top1() -> None:
    """Four tokens all want expert 0; capacity ⌈1.0·4·1/2⌉ = 2 keeps the first two, the last two get zero."""
    moe = hand_routed(1, 1.0, [[1.0, 0.0], [-1.0, 0.0]])
    x = torch.randn(4, DIM, dtype=torch.float64)
    x[:, 0], x[:, 1] = 2.0, 0.0
    y, aux = moe(x)
    p0 = torch.softmax(torch.tensor([2.0, -2.0], dtype=torch.float64), 0)[0]  # renormalised top-1 weight is 1
    assert moe.capacity(4) == 2 and p0 < 1
    torch.testing.assert_close(y[0], expert(moe, 0, x[0]))
    torch.testing.assert_close(y[1], expert(moe, 0, x[1]))
    torch.testing.assert_close(y[2:], torch.zeros(2, DIM, dtype=torch.float64), rtol=0, atol=0)
    assert aux.dropped == 2


def test_capacity_serves_first_choices_before_second_choices() -> None:
    """Top-2 over two experts, capacity 2: each queue takes its two first choices and drops the second choice."""
    moe = hand_routed(2, 2 / 3, [[1.0, 0.0], [0.0, 1.0]])  # expert 0 reads channel 0, expert 1 channel 1
    x = torch.randn(3, DIM, dtype=torch.float64)
    x[:, :2] = torch.tensor([[1.0, 0.5], [1.0, -0.5], [0.0, 1.0]])  # first choices: e0, e0, e1
    y, aux = moe(x)
    assert moe.capacity(3) == 2
    w = torch.softmax(moe.router.weight @ x.T, dim=0)  # (E, N); top-2 of two experts keeps both, sums to 1
    # queue e0: t0 (1st), t1 (1st), t2 (2nd: dropped); queue e1: t2 (1st), t0 (2nd), t1 (2nd: dropped)
    torch.testing.assert_close(y[0], w[0, 0] * expert(moe, 0, x[0]) + w[1, 0] * expert(moe, 1, x[0]))
    torch.testing.assert_close(y[1], w[0, 1] * expert(moe, 0, x[1]))
    torch.testing.assert_close(y[2], w[1, 2] * expert(moe, 1, x[2]))
    assert aux.dropped == 2


def test_generous_capacity_drops_nothing() -> None:
    torch.manual_seed(7)
    moe = MoE(DIM, HIDDEN, EXPERTS, 2, capacity_factor=EXPERTS / 2).double()  # C = N: no queue can overflow
    x = torch.randn(11, DIM, dtype=torch.float64)
    y, aux = moe(x)
    torch.testing.assert_close(y, dense_reference(moe, x))
    assert aux.dropped == 0


def test_aux_losses_send_gradient_to_the_router() -> None:
    torch.manual_seed(8)
    moe = MoE(DIM, HIDDEN, EXPERTS, 2, capacity_factor=1.0)
    _, aux = moe(torch.randn(16, DIM))
    (grad_lb,) = torch.autograd.grad(aux.load_balancing_loss, moe.router.weight, retain_graph=True)
    (grad_z,) = torch.autograd.grad(aux.z_loss, moe.router.weight)
    assert grad_lb.abs().sum() > 0 and grad_z.abs().sum() > 0


def test_invalid_settings_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="top_k"):
        MoE(DIM, HIDDEN, 4, 5)
    with pytest.raises(ConfigError, match="capacity_factor"):
        MoE(DIM, HIDDEN, 4, 2, capacity_factor=0.0)
