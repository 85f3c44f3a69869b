"""Dropout (Srivastava et al., 2014, "Dropout: A Simple Way to Prevent Neural Networks from Overfitting").

In training each element is zeroed with probability p and the survivors are scaled by 1/(1-p) ("inverted"
dropout), so the expectation is unchanged and evaluation needs no rescaling. Off in eval mode and under
``torch.inference_mode``: generation never drops, whatever mode the model was left in. Backward needs only which
elements survived: ``torch.native_dropout`` keeps that as one byte per element, where ``F.dropout`` on a CPU keeps
its fp32 noise (four).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def dropping(module: nn.Module) -> bool:
    """Whether ``module``'s dropout is active now: training mode, outside ``torch.inference_mode``."""
    return module.training and not torch.is_inference_mode_enabled()


class Dropout(nn.Dropout):
    """``nn.Dropout`` that is also off under ``torch.inference_mode`` and keeps a one-byte mask for backward."""

    def __init__(self, p: float) -> None:
        super().__init__(p)  # no in-place option: forward never writes into its input

    def forward(self, x: Tensor) -> Tensor:
        return torch.native_dropout(x, self.p, True)[0] if dropping(self) else x


def make_dropout(p: float) -> nn.Module:
    """Dropout(p), or an ``nn.Identity`` when p is 0, so a model without dropout does no extra work."""
    return Dropout(p) if p > 0 else nn.Identity()
