"""Weight initialisation for training from scratch (GPT-2, Radford et al., 2019, §2.3; as in nanoGPT).

Every matrix and embedding ~ N(0, 0.02²), biases 0, norm gains 1; the projections that write into the residual
stream (attention output, FFN down) are further scaled by 1/√(2L), so the residual's variance does not grow
with depth. PyTorch's default (uniform fan-in) init makes tied-embedding logits far too large at step 0.
"""

from __future__ import annotations

import math

import torch
from torch import nn

STD = 0.02


def init_weights(model: nn.Module, n_layers: int) -> nn.Module:
    """Initialise ``model`` in place (any VariantLM; MoE expert tensors included) and return it."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                module.weight.normal_(0.0, STD)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
        for p in _stacked_expert_weights(model):
            p.normal_(0.0, STD)
        residual_std = STD / math.sqrt(2 * n_layers)
        for block in model.layers:
            _residual_output(block.attn).normal_(0.0, residual_std)
            _residual_output(block.ffn).normal_(0.0, residual_std)
    return model


def _residual_output(module: nn.Module) -> torch.Tensor:
    """The weight of the projection that writes a sub-layer's output into the residual stream."""
    for owner in module.modules():  # the sub-layer itself first, then (for MoE) its experts
        for name in ("o_proj", "down", "proj"):
            weight = getattr(owner, name, None)
            if isinstance(weight, nn.Linear):
                return weight.weight
            if isinstance(weight, nn.Parameter):
                return weight
    raise TypeError(f"no residual output projection found on {type(module).__name__}")


def _stacked_expert_weights(model: nn.Module) -> list[nn.Parameter]:
    """MoE experts keep their weights as (E, out, in) parameters, not Linear modules."""
    return [p for m in model.modules() for p in m.parameters(recurse=False) if p.dim() == 3]
