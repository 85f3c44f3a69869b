"""Hugging Face DINOv2 folders (``model_type: dinov2``; Dinov2Model or a task model under ``dinov2.``) -> ViT.

DINOv2 is a ViT with layer scale and a position grid learned at ``image_size`` (518 px: 37 × 37 for /14),
resized bicubically for other images as HF does. The mask token (used in training only) is not loaded. The same
names serve the bundled ONNX weights (``weights/onnx_dinov2.py``), whose exporter kept them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.models.vit import ViT, ViTConfig
from tfdojo.weights.hf_family import HFCheckpoint, HFFamily, hf_field, refuse_unsupported
from tfdojo.weights.hf_vit import image_encoder_wrapper

# Our per-layer names -> HF Dinov2's, below ``encoder.layer.{i}.``; and the names outside the layers.
_LAYER_KEYS = {
    "norm1.weight": "norm1.weight",
    "norm1.bias": "norm1.bias",
    "attn.inner.q_proj.weight": "attention.attention.query.weight",
    "attn.inner.q_proj.bias": "attention.attention.query.bias",
    "attn.inner.k_proj.weight": "attention.attention.key.weight",
    "attn.inner.k_proj.bias": "attention.attention.key.bias",
    "attn.inner.v_proj.weight": "attention.attention.value.weight",
    "attn.inner.v_proj.bias": "attention.attention.value.bias",
    "attn.inner.o_proj.weight": "attention.output.dense.weight",
    "attn.inner.o_proj.bias": "attention.output.dense.bias",
    "attn.gamma": "layer_scale1.lambda1",
    "norm2.weight": "norm2.weight",
    "norm2.bias": "norm2.bias",
    "ffn.inner.fc.weight": "mlp.fc1.weight",
    "ffn.inner.fc.bias": "mlp.fc1.bias",
    "ffn.inner.proj.weight": "mlp.fc2.weight",
    "ffn.inner.proj.bias": "mlp.fc2.bias",
    "ffn.gamma": "layer_scale2.lambda1",
}
_TOP_KEYS = {
    "cls_token": "embeddings.cls_token",
    "pos_embed": "embeddings.position_embeddings",
    "patch_embed.weight": "embeddings.patch_embeddings.projection.weight",
    "patch_embed.bias": "embeddings.patch_embeddings.projection.bias",
    "norm.weight": "layernorm.weight",
    "norm.bias": "layernorm.bias",
}
_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}  # HF names -> ours; others match


def dinov2_name(ours: str) -> str:
    """Our ViT parameter name -> the HF Dinov2 name it comes from (without a task model's ``dinov2.`` prefix)."""
    layer = re.match(r"layers\.(\d+)\.(.+)$", ours)
    if layer:
        return f"encoder.layer.{layer.group(1)}.{_LAYER_KEYS[layer.group(2)]}"
    return _TOP_KEYS[ours]


def _square(hf: Mapping[str, Any], key: str, default: int) -> int:
    """An image or patch size that config.json may give as one int or as [h, w]; ours are square."""
    value = hf_field(hf, key, default)
    if isinstance(value, list | tuple):
        if len(set(value)) != 1:
            raise ConfigError(f"config.json sets {key}={value}; tfdojo's ViT needs square sizes")
        value = value[0]
    return int(value)


def dinov2_config(hf: Mapping[str, Any], checkpoint: HFCheckpoint) -> ViTConfig:
    """ViTConfig with layer scale from a DINOv2 config.json (MLP width = hidden_size · mlp_ratio)."""
    refuse_unsupported(hf, {"use_swiglu_ffn": False, "apply_layernorm": True})
    dim, activation = hf_field(hf, "hidden_size"), hf_field(hf, "hidden_act", "gelu")
    return ViTConfig(
        image_size=_square(hf, "image_size", 224),
        patch_size=_square(hf, "patch_size", 14),
        channels=hf_field(hf, "num_channels", 3),
        dim=dim,
        n_layers=hf_field(hf, "num_hidden_layers"),
        n_heads=hf_field(hf, "num_attention_heads"),
        ffn_hidden=int(dim * hf_field(hf, "mlp_ratio", 4)),
        norm_eps=hf_field(hf, "layer_norm_eps", 1e-6),
        activation=_ACTIVATIONS.get(activation, activation),
        qkv_bias=hf_field(hf, "qkv_bias", True),
        layer_scale=True,
    )


def dinov2_state_dict(ckpt: HFCheckpoint, config: ViTConfig) -> dict[str, Tensor]:
    """Every ViT parameter, read under its HF Dinov2 name."""
    base = ckpt.base_prefix("embeddings.cls_token", "dinov2.")
    names = list(_TOP_KEYS) + [f"layers.{i}.{key}" for i in range(config.n_layers) for key in _LAYER_KEYS]
    if not config.qkv_bias:
        names = [n for n in names if not re.search(r"[qkv]_proj\.bias$", n)]
    return {ours: ckpt.take(base + dinov2_name(ours)) for ours in names}


DINOV2_FAMILY = HFFamily(config=dinov2_config, model=ViT, state_dict=dinov2_state_dict, wrap=image_encoder_wrapper)
