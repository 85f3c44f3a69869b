"""Hugging Face Mistral folders -> tfdojo Llama with ``sliding_window`` (Mistral's tensors have Llama's names)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tfdojo.models.llama import Llama, LlamaConfig
from tfdojo.weights.hf_family import HFCheckpoint, HFFamily
from tfdojo.weights.hf_llama import llama_config, llama_state_dict


def mistral_config(hf: Mapping[str, Any], checkpoint: HFCheckpoint) -> LlamaConfig:
    """LlamaConfig from a Mistral config.json; ``sliding_window: null`` (Mistral v0.2+) means full attention."""
    return dataclasses.replace(llama_config(hf, checkpoint), sliding_window=hf.get("sliding_window"))


MISTRAL_FAMILY = HFFamily(config=mistral_config, model=Llama, state_dict=llama_state_dict)
