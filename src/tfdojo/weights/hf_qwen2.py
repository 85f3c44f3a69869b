"""Hugging Face Qwen2 folders -> tfdojo Llama with ``qkv_bias`` (Llama's tensor names plus q/k/v biases)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from tfdojo.models.llama import Llama, LlamaConfig
from tfdojo.weights.hf_family import HFCheckpoint, HFFamily, refuse_unsupported
from tfdojo.weights.hf_llama import llama_config, llama_state_dict


def qwen2_config(hf: Mapping[str, Any], checkpoint: HFCheckpoint) -> LlamaConfig:
    """LlamaConfig from a Qwen2 config.json; Qwen2's per-layer sliding window option is not implemented."""
    refuse_unsupported(hf, {"use_sliding_window": False})
    return dataclasses.replace(llama_config(hf, checkpoint), qkv_bias=True)


def qwen2_state_dict(checkpoint: HFCheckpoint, config: LlamaConfig) -> dict[str, Tensor]:
    """Llama's mapping plus ``layers.i.attn.{q,k,v}_proj.bias``."""
    state = llama_state_dict(checkpoint, config)
    base = checkpoint.base_prefix("embed_tokens.weight", "model.")
    for i in range(config.n_layers):
        for p in ("q_proj", "k_proj", "v_proj"):
            state[f"layers.{i}.attn.{p}.bias"] = checkpoint.take(f"{base}layers.{i}.self_attn.{p}.bias")
    return state


QWEN2_FAMILY = HFFamily(config=qwen2_config, model=Llama, state_dict=qwen2_state_dict)
