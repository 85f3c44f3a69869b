"""Every layer's weights of one kind stacked along a leading layer axis, so a compiled step has a few inputs, not 430.

A graph compiled by ``torch.compile`` takes each tensor it reads as an input, fetched and checked on every call.
A 30-layer decode step that reads each layer's matrices and norms from their own objects has ~430 of them, and
fetching them cost ~0.45 ms a call (a prototype with 420 tiny tensors: 430-560 µs a call against 34-47 µs with
the same numbers stacked into one tensor, one thread). Stacked, layer i's weights are ``stack[i]``, a view: the
graph has one input per kind of weight.

The stacks take the weights' place: each layer's objects are re-pointed at views of the stacked tensors (as
``fast_llama._fuse_rows`` does for the fused matrices), so the eager decoder and the compiled step read the same
memory and nothing is held twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from tfdojo.infer.int_linear import Int4Linear, Int8Linear
from tfdojo.nn.norms import RMSNorm


class StackedNorms:
    """The weights of one RMSNorm per layer, stacked (L, dim); the modules keep working on views."""

    def __init__(self, norms: Sequence[RMSNorm]) -> None:
        self.eps = norms[0].eps
        if any(norm.eps != self.eps for norm in norms):
            raise ValueError("stacked norms must share eps")
        self.weight = torch.stack([norm.weight.detach() for norm in norms])  # (L, dim)
        for i, norm in enumerate(norms):
            norm.weight.data = self.weight[i]


class StackedProducts:
    """One int matrix per layer (``Int4Linear`` or ``Int8Linear``), its one-row product's tensors stacked (L, ...).

    ``stack(i, x)`` is layer i's product of one row x (1, 1, in) -> (1, 1, out), by the kernel the layer's own
    object runs for one row (``row_parts``), handed the stacks and i (our kernels offset a pointer: no view).
    """

    def __init__(self, linears: Sequence[Int4Linear | Int8Linear]) -> None:
        if not stackable(linears):
            raise ValueError("stacked products must share one kernel and one shape")
        self.product, _, self.static = linears[0].row_parts()
        per_layer = [lin.row_parts()[1] for lin in linears]
        self.parts = tuple(torch.stack(list(same)) for same in zip(*per_layer, strict=True))  # (L, ...) each
        for i, lin in enumerate(linears):  # the layers now read views of the stacks
            lin.rebind_row_parts(tuple(t[i] for t in self.parts))
        biases = [lin.bias for lin in linears]
        self.bias = None if biases[0] is None else torch.stack(biases)  # (L, out)
        for i, lin in enumerate(linears if self.bias is not None else []):
            lin.bias = self.bias[i]  # a view too: the biases are not held twice either

    def __call__(self, i: int, x: Tensor) -> Tensor:
        y = self.product(x.reshape(-1), *self.parts, i, **self.static)  # (out,)
        y = y.view(1, 1, -1)  # (1, 1, out)
        return y if self.bias is None else y + self.bias[i]


def stackable(linears: Sequence[object]) -> bool:
    """Whether these matrices can be stacked: int products by one kernel, tensors of one shape, biases all or none."""
    if not linears or not all(isinstance(lin, (Int4Linear, Int8Linear)) for lin in linears):
        return False
    parts = [lin.row_parts() for lin in linears]  # type: ignore[union-attr]
    kernels = {(fn, tuple(static.items())) for fn, _, static in parts}
    shapes = {tuple(tuple(t.shape) for t in tensors) for _, tensors, _ in parts}
    biased = {lin.bias is not None for lin in linears}  # type: ignore[union-attr]
    return len(kernels) == len(shapes) == len(biased) == 1
