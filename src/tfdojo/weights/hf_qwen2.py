"""Hugging Face Qwen2 folders -> tfdojo Llama with ``qkv_bias`` and per-layer sliding windows (Llama's names)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tfdojo.models.llama import Llama, LlamaConfig
from tfdojo.weights.hf_family import HFCheckpoint, HFFamily, hf_field
from tfdojo.weights.hf_llama import llama_config, llama_state_dict


def qwen2_config(hf: Mapping[str, Any], checkpoint: HFCheckpoint) -> LlamaConfig:
    """LlamaConfig from a Qwen2 config.json: q/k/v biases, and the sliding window where it applies.

    ``use_sliding_window`` turns the window on; ``layer_types`` (or, without it, layers from ``max_window_layers``
    on, as HF derives it) says which layers slide; the others attend fully.
    """
    window = hf_field(hf, "sliding_window", None) if hf_field(hf, "use_sliding_window", False) else None
    n_layers = hf_field(hf, "num_hidden_layers")
    if window is None:
        sliding_layers = None
    elif hf.get("layer_types") is not None:
        sliding_layers = tuple(kind == "sliding_attention" for kind in hf["layer_types"])
    else:
        sliding_layers = tuple(i >= hf_field(hf, "max_window_layers", 28) for i in range(n_layers))
    return dataclasses.replace(
        llama_config(hf, checkpoint), qkv_bias=True, sliding_window=window, sliding_layers=sliding_layers
    )


QWEN2_FAMILY = HFFamily(config=qwen2_config, model=Llama, state_dict=llama_state_dict)
