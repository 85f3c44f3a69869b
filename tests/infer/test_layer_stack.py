"""Stacked layer weights: each layer's product and norm unchanged, one copy in memory, mismatches refused."""

from __future__ import annotations

import pytest
import torch
from test_gemv_kernel import random_int4
from threads import one_thread  # noqa: F401  (autouse: one thread for tiny models)

from tfdojo.infer import gemv_kernel
from tfdojo.infer.int_linear import Int4Linear, Int8Linear
from tfdojo.infer.layer_stack import StackedNorms, StackedProducts, stackable
from tfdojo.infer.quant import quantize_int8
from tfdojo.nn.norms import RMSNorm

GEN = torch.Generator().manual_seed(3)


def int4_layers(n: int, out: int = 48, cols: int = 96, *, ours: bool = True, bias: bool = False) -> list[Int4Linear]:
    layers = []
    for _ in range(n):
        lin = Int4Linear(random_int4(out, cols), torch.randn(out, generator=GEN).bfloat16() if bias else None)
        if not ours:
            lin.one_row = None  # torch's kernel, as on a CPU without our AVX2 kernels
        layers.append(lin)
    return layers


def int8_layers(n: int, out: int = 40, cols: int = 64, *, ours: bool = True) -> list[Int8Linear]:
    layers = [Int8Linear(quantize_int8(torch.randn(out, cols, generator=GEN) * 0.05)) for _ in range(n)]
    for lin in layers if not ours else []:
        lin.one_row = None
    return layers


@pytest.mark.parametrize(
    ("make", "cols"),
    [
        (lambda: int4_layers(3), 96),
        (lambda: int4_layers(3, bias=True), 96),
        (lambda: int4_layers(3, ours=False), 96),
        (lambda: int8_layers(3), 64),
        (lambda: int8_layers(3, ours=False), 64),
    ],
    ids=["int4-ours", "int4-bias", "int4-torch", "int8-ours", "int8-torch"],
)
def test_stacked_products_equal_each_layers_own(make, cols):
    layers = make()
    x = torch.randn(1, 1, cols, generator=GEN).bfloat16()
    before = [lin(x) for lin in layers]  # each layer's own weights, before stacking
    stack = StackedProducts(layers)
    for i, lin in enumerate(layers):
        assert torch.equal(stack(i, x), before[i])
        assert torch.equal(lin(x), before[i])  # the layer's object still works, on views of the stack
        first = lin.row_parts()[1][0]
        assert first.untyped_storage().data_ptr() == stack.parts[0].untyped_storage().data_ptr()  # one copy
        if lin.bias is not None:
            assert lin.bias.untyped_storage().data_ptr() == stack.bias.untyped_storage().data_ptr()


def test_stacked_norms_are_views_with_the_same_output():
    norms = [RMSNorm(16, eps=1e-5) for _ in range(3)]
    for norm in norms:
        torch.nn.init.normal_(norm.weight, generator=GEN)
    x = torch.randn(2, 16, generator=GEN)
    before = [norm(x) for norm in norms]
    stack = StackedNorms(norms)
    for i, norm in enumerate(norms):
        assert torch.equal(stack.weight[i], norm.weight.detach())
        assert torch.equal(norm(x), before[i])
        assert norm.weight.untyped_storage().data_ptr() == stack.weight.untyped_storage().data_ptr()


def test_mismatched_layers_are_not_stackable():
    assert stackable(int4_layers(2)) and stackable(int8_layers(2))
    assert not stackable([*int4_layers(1), *int8_layers(1)])  # two kinds
    assert not stackable([*int4_layers(1), *int4_layers(1, out=32)])  # two shapes
    assert not stackable([*int4_layers(1), *int4_layers(1, ours=False)])  # two kernels
    assert not stackable([*int4_layers(1), *int4_layers(1, bias=True)])  # bias on one only
    assert not stackable([])
    with pytest.raises(ValueError, match="one kernel and one shape"):
        StackedProducts([*int4_layers(1), *int8_layers(1)])


def test_a_layer_index_needs_a_stack():
    """Our kernels offset their pointers by the layer: an index into a lone matrix or past the stack is refused."""
    lone = int4_layers(1)[0]
    if lone.one_row is None:
        pytest.skip("our AVX2 kernels are not built on this machine")
    x = torch.randn(96, generator=GEN).bfloat16()
    with pytest.raises(IndexError, match="needs a stack"):
        gemv_kernel.q4_gemv(x, *lone.one_row, layer=1)
    stack = StackedProducts(int4_layers(2))
    with pytest.raises(IndexError, match="needs a stack"):
        gemv_kernel.q4_gemv(x, *stack.parts, layer=2)
