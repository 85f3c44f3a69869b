"""Hugging Face ViT folders (``model_type: vit``; ViTModel or a task model under ``vit.``) -> :class:`ViT`.

The loader returns an :class:`ImageEncoder`; the pooler and any classifier head in the folder are not used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tfdojo.models.vit import ViT, ViTConfig
from tfdojo.weights.hf_family import HFCheckpoint, HFFamily, hf_field

_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}  # HF names -> ours; others match

# Our per-layer names -> HF's, below ``encoder.layer.{i}.``.
_LAYER_KEYS = {
    "norm1": "layernorm_before",
    "attn.q_proj": "attention.attention.query",
    "attn.k_proj": "attention.attention.key",
    "attn.v_proj": "attention.attention.value",
    "attn.o_proj": "attention.output.dense",
    "norm2": "layernorm_after",
    "ffn.fc": "intermediate.dense",
    "ffn.proj": "output.dense",
}
_QKV = ("attn.q_proj", "attn.k_proj", "attn.v_proj")  # biased unless config.json sets qkv_bias: false


@dataclass
class ImageEncoder:
    """A vision backbone with its config: ``encode(pixel_values)`` -> last hidden state (B, 1 + N, dim)."""

    config: ViTConfig
    model: nn.Module

    @torch.no_grad()
    def encode(self, pixel_values: Tensor) -> Tensor:
        """Normalised images (B, C, H, W) -> hidden states; token 0 is [CLS]."""
        return self.model(pixel_values)


def vit_config(hf: Mapping[str, Any], checkpoint: HFCheckpoint) -> ViTConfig:
    """ViTConfig from a ViT config.json."""
    activation = hf_field(hf, "hidden_act", "gelu")
    return ViTConfig(
        image_size=hf_field(hf, "image_size", 224),
        patch_size=hf_field(hf, "patch_size", 16),
        channels=hf_field(hf, "num_channels", 3),
        dim=hf_field(hf, "hidden_size"),
        n_layers=hf_field(hf, "num_hidden_layers"),
        n_heads=hf_field(hf, "num_attention_heads"),
        ffn_hidden=hf_field(hf, "intermediate_size"),
        norm_eps=hf_field(hf, "layer_norm_eps", 1e-12),
        activation=_ACTIVATIONS.get(activation, activation),
        qkv_bias=hf_field(hf, "qkv_bias", True),
    )


def vit_state_dict(ckpt: HFCheckpoint, config: ViTConfig) -> dict[str, Tensor]:
    """Our parameter names -> tensors (HF ``encoder.layer.i.attention.attention.query`` -> ``layers.i.attn.q_proj``)."""
    base = ckpt.base_prefix("embeddings.cls_token", "vit.")
    out = {
        "cls_token": ckpt.take(f"{base}embeddings.cls_token"),
        "pos_embed": ckpt.take(f"{base}embeddings.position_embeddings"),
        "patch_embed.weight": ckpt.take(f"{base}embeddings.patch_embeddings.projection.weight"),
        "patch_embed.bias": ckpt.take(f"{base}embeddings.patch_embeddings.projection.bias"),
        "norm.weight": ckpt.take(f"{base}layernorm.weight"),
        "norm.bias": ckpt.take(f"{base}layernorm.bias"),
    }
    for i in range(config.n_layers):
        for ours, hf in _LAYER_KEYS.items():
            kinds = ("weight",) if ours in _QKV and not config.qkv_bias else ("weight", "bias")
            for kind in kinds:
                out[f"layers.{i}.{ours}.{kind}"] = ckpt.take(f"{base}encoder.layer.{i}.{hf}.{kind}")
    return out


def image_encoder_wrapper(config: ViTConfig, model: nn.Module, tokenizer: Any, folder: Path) -> ImageEncoder:
    """An ``ImageEncoder`` (images have no tokenizer)."""
    return ImageEncoder(config, model)


VIT_FAMILY = HFFamily(config=vit_config, model=ViT, state_dict=vit_state_dict, wrap=image_encoder_wrapper)
