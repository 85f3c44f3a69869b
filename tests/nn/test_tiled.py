"""Tiled (FlashAttention-2) attention against an fp64 reference: FlashAttention's own accuracy criterion
(error at most 2× eager fp32's), gradcheck of the recomputing backward, and gradients beside eager's."""

from __future__ import annotations

import pytest
import torch
from attention_reference import reference_attention
from torch import Tensor

from tfdojo.nn.attention import scaled_dot_product
from tfdojo.nn.positions import alibi_slopes

# name: (B, Hq, Hkv, T, S, causal, window, alibi, padded)
CASES = {
    "causal": (1, 4, 4, 300, 300, True, None, False, False),
    "bidirectional_gqa": (2, 6, 2, 257, 257, False, None, False, False),
    "sliding_window": (1, 4, 2, 300, 300, True, 50, False, False),
    "local_window": (1, 4, 4, 211, 211, False, 40, False, False),
    "alibi": (1, 8, 8, 200, 200, True, None, True, False),
    "padding": (2, 4, 2, 190, 190, True, None, False, True),
    "decode_alignment": (2, 6, 2, 37, 300, True, 64, False, False),
    "single_query_mqa": (1, 4, 1, 1, 300, True, None, True, False),
    "everything": (2, 4, 2, 150, 173, True, 60, True, True),
}


def _inputs(case: tuple, dtype: torch.dtype, head_dim: int = 32) -> tuple[Tensor, ...]:
    b, hq, hkv, t, s, *_ = case
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(b, hq, t, head_dim, generator=gen, dtype=dtype)
    k = torch.randn(b, hkv, s, head_dim, generator=gen, dtype=dtype)
    v = torch.randn(b, hkv, s, head_dim, generator=gen, dtype=dtype)
    return q, k, v


def _options(case: tuple) -> dict:
    b, hq, _, t, s, causal, window, alibi, padded = case
    keep = None
    if padded:  # row 0 unpadded, row 1 right-padded by 7 (every query still sees key 0, a real one)
        real = torch.ones(b, s, dtype=torch.bool)
        real[-1, -7:] = False
        keep = real[:, None, None, :]  # (B, 1, 1, S)
    return {"causal": causal, "window": window, "alibi_slopes": alibi_slopes(hq) if alibi else None, "mask": keep}


def _reference(q: Tensor, k: Tensor, v: Tensor, options: dict) -> Tensor:
    return reference_attention(
        q,
        k,
        v,
        causal=options["causal"],
        window=options["window"],
        slopes=options["alibi_slopes"],
        keep=options["mask"],
    )


@pytest.mark.parametrize("name", CASES)
def test_forward_error_at_most_twice_eager_fp32(name: str) -> None:
    case = CASES[name]
    q, k, v = _inputs(case, torch.float32)
    options = _options(case)
    expected = _reference(q, k, v, options)
    tiled = scaled_dot_product(q, k, v, backend="tiled", block_q=64, block_k=96, **options)
    eager = scaled_dot_product(q, k, v, backend="eager", **options)
    tiled_error = (tiled.double() - expected).abs().max()
    eager_error = (eager.double() - expected).abs().max()
    assert tiled_error <= 2 * eager_error, f"tiled {tiled_error:.3g} vs eager {eager_error:.3g}"


@pytest.mark.parametrize("name", ["causal", "bidirectional_gqa", "everything"])
def test_default_tiles_match_the_reference(name: str) -> None:
    case = CASES[name]
    q, k, v = _inputs(case, torch.float64)
    options = _options(case)
    out = scaled_dot_product(q, k, v, backend="tiled", **options)
    torch.testing.assert_close(out, _reference(q, k, v, options), rtol=0, atol=1e-12)


# name: (B, Hq, Hkv, T, S, causal, window, alibi, padded) — tiny, so numerical Jacobians stay cheap
GRAD_CASES = {
    "causal_gqa": (1, 4, 2, 9, 9, True, None, False, False),
    "window": (1, 2, 2, 9, 9, True, 3, False, False),
    "local_window_alibi": (1, 2, 1, 9, 9, False, 4, True, False),
    "padding_decode": (2, 2, 1, 4, 9, True, None, True, True),
}


@pytest.mark.parametrize("fast_mode", [True, False], ids=["fast", "full"])
@pytest.mark.parametrize("name", GRAD_CASES)
def test_gradcheck_fp64(name: str, fast_mode: bool) -> None:
    """Full mode builds the whole numerical Jacobian (slow in Python tiles), so it runs on 3-wide heads."""
    case = GRAD_CASES[name]
    q, k, v = (x.requires_grad_() for x in _inputs(case, torch.float64, head_dim=8 if fast_mode else 3))
    options = _options(case)

    def attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return scaled_dot_product(q, k, v, backend="tiled", block_q=4, block_k=3, **options)

    assert torch.autograd.gradcheck(attend, (q, k, v), eps=1e-6, atol=1e-7, fast_mode=fast_mode)


@pytest.mark.parametrize("name", ["causal", "bidirectional_gqa", "sliding_window", "everything"])
def test_gradients_beside_eager_fp32(name: str) -> None:
    case = CASES[name]
    options = _options(case)
    upstream = torch.randn(_inputs(case, torch.float32)[0].shape, generator=torch.Generator().manual_seed(1))

    def grads(backend: str, dtype: torch.dtype) -> list[Tensor]:
        q, k, v = (x.requires_grad_() for x in _inputs(case, dtype))
        out = (
            _reference(q, k, v, options)
            if backend == "reference"
            else scaled_dot_product(q, k, v, backend=backend, block_q=64, block_k=96, **options)
            if backend == "tiled"
            else scaled_dot_product(q, k, v, backend=backend, **options)
        )
        out.backward(upstream.to(dtype))
        return [x.grad.double() for x in (q, k, v)]

    expected = grads("reference", torch.float64)
    for name_, tiled, eager, ref in zip(
        "qkv", grads("tiled", torch.float32), grads("eager", torch.float32), expected, strict=True
    ):
        tiled_error, eager_error = (tiled - ref).abs().max(), (eager - ref).abs().max()
        assert tiled_error <= 2 * eager_error, f"d{name_}: tiled {tiled_error:.3g} vs eager {eager_error:.3g}"


def test_half_precision_inputs_accumulate_in_fp32() -> None:
    case = CASES["causal"]
    q, k, v = _inputs(case, torch.bfloat16)
    options = _options(case)
    out = scaled_dot_product(q, k, v, backend="tiled", block_q=64, block_k=96, **options)
    eager = scaled_dot_product(q, k, v, backend="eager", **options)  # eager also works in fp32 then rounds
    assert out.dtype == torch.bfloat16
    expected = _reference(q, k, v, options)
    assert (out.double() - expected).abs().max() <= 2 * (eager.double() - expected).abs().max()


def test_saves_no_score_matrix() -> None:
    """The autograd graph holds q, k, v, O and the logsumexp: nothing of size T·S."""
    t = s = 256
    q, k, v = (torch.randn(1, 2, n, 16, requires_grad=True) for n in (t, s, s))
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda x: saved.append(x.numel()) or x, lambda x: x):
        scaled_dot_product(q, k, v, causal=True, backend="tiled", block_q=64, block_k=64)
    assert saved and max(saved) < t * s
