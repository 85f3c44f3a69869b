"""Mixtral (Jiang et al., 2024, "Mixtral of Experts"): a Mistral whose FFNs are sparse mixtures of SwiGLU experts.

Everything but the FFN is the Llama/Mistral assembly (:class:`tfdojo.models.llama.Llama`). In each block a router
scores the E experts per token, keeps the top k (k = 2 of E = 8 in Mixtral 8x7B), renormalises their softmax
weights to sum to 1 and mixes the chosen experts' outputs (:class:`tfdojo.nn.moe.MoE`, dropless).

The model returns logits like any decoder; each block keeps the router logits of its last call, from which
:meth:`Mixtral.load_balancing_loss` computes the auxiliary loss over all layers (Fedus et al., 2021), unweighted,
as Hugging Face reports it in ``aux_loss`` (training multiplies it by ``router_aux_loss_coef``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.models.llama import Llama, LlamaConfig
from tfdojo.nn.moe import MoE, RoutedFFN, load_balancing_loss


@dataclass
class MixtralConfig(LlamaConfig):
    """A LlamaConfig plus the mixture: ``n_experts`` SwiGLU experts of width ``ffn_hidden``, ``top_k`` per token."""

    n_experts: int = 8
    top_k: int = 2
    router_aux_loss_coef: float = 0.001  # weight of the auxiliary loss in training (HF MixtralConfig default)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < self.top_k <= self.n_experts:
            raise ConfigError(f"top_k ({self.top_k}) must be between 1 and n_experts ({self.n_experts})")


class Mixtral(Llama):
    """input_ids (B, T) -> logits (B, T, V), with a routed mixture of experts in every block."""

    config: MixtralConfig

    def feed_forward(self, c: LlamaConfig) -> nn.Module:
        if not isinstance(c, MixtralConfig):
            raise ConfigError(f"Mixtral needs a MixtralConfig (expert count and top_k), got {type(c).__name__}")
        return RoutedFFN(MoE(c.dim, c.ffn_hidden, c.n_experts, c.top_k, renormalize=True))

    def load_balancing_loss(self, attention_mask: Tensor | None = None) -> Tensor:
        """Auxiliary loss of the last forward call over every layer's routing; ``attention_mask`` (B, T) skips pads."""
        logits = [layer.ffn.router_logits for layer in self.layers]
        if any(layer_logits is None for layer_logits in logits):
            raise ConfigError("load_balancing_loss needs a forward call first: it reads that call's router logits")
        token_mask = None
        if attention_mask is not None:
            token_mask = attention_mask.reshape(-1).repeat(len(logits))  # (L·B·T,) same order as the logits
        return load_balancing_loss(torch.cat(logits), self.config.top_k, token_mask)  # over (L·B·T, E)
