"""Hugging Face Mixtral folders -> :class:`tfdojo.models.mixtral.Mixtral`.

Attention, norms and embeddings carry Llama's names. The experts come in one of two layouts:
``block_sparse_moe.experts.{e}.w1/w3/w2`` (gate/up/down, one tensor per expert, what save_pretrained writes and the
released checkpoints use) or transformers 5's fused ``mlp.experts.gate_up_proj`` (E, 2·hidden, dim) and
``mlp.experts.down_proj``; both are stacked into our (E, hidden, dim) / (E, dim, hidden) parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from tfdojo.models.mixtral import Mixtral, MixtralConfig
from tfdojo.weights.hf_family import HFCheckpoint, HFFamily, hf_field, refuse_unsupported
from tfdojo.weights.hf_llama import llama_config


def mixtral_config(hf: Mapping[str, Any], checkpoint: HFCheckpoint) -> MixtralConfig:
    """MixtralConfig from config.json: Llama's fields, the sliding window, expert count and top-k."""
    refuse_unsupported(hf, {"router_jitter_noise": 0.0})
    llama = llama_config(hf, checkpoint)
    shared = {f.name: getattr(llama, f.name) for f in dataclasses.fields(llama)}  # shallow: keeps RopeScaling
    return MixtralConfig(
        **shared | {"sliding_window": hf.get("sliding_window")},
        n_experts=hf_field(hf, "num_local_experts"),
        top_k=hf_field(hf, "num_experts_per_tok"),
        router_aux_loss_coef=hf_field(hf, "router_aux_loss_coef", 0.001),
    )


def _experts(ckpt: HFCheckpoint, layer: str, n_experts: int) -> dict[str, Tensor]:
    """(gate, up, down) stacked over experts from either HF layout, under our ``ffn.moe.experts`` names."""
    fused = f"{layer}.mlp.experts.gate_up_proj"
    if fused in ckpt:
        gate, up = ckpt.take(fused).chunk(2, dim=1)  # (E, 2·hidden, dim) -> 2 × (E, hidden, dim)
        down = ckpt.take(f"{layer}.mlp.experts.down_proj")  # (E, dim, hidden)
    else:
        per_expert = f"{layer}.block_sparse_moe.experts"
        gate, down, up = (
            torch.stack([ckpt.take(f"{per_expert}.{e}.{w}.weight") for e in range(n_experts)])  # (E, out, in)
            for w in ("w1", "w2", "w3")
        )
    return {"ffn.moe.experts.gate": gate, "ffn.moe.experts.up": up, "ffn.moe.experts.down": down}


def mixtral_state_dict(ckpt: HFCheckpoint, config: MixtralConfig) -> dict[str, Tensor]:
    """Our parameter names -> tensors, for every parameter of a Mixtral."""
    base = ckpt.base_prefix("embed_tokens.weight", "model.")
    out = {"embed.weight": ckpt.take(f"{base}embed_tokens.weight"), "norm.weight": ckpt.take(f"{base}norm.weight")}
    if not config.tie_embeddings:
        out["lm_head.weight"] = ckpt.take("lm_head.weight")
    router = "mlp.gate" if f"{base}layers.0.mlp.gate.weight" in ckpt else "block_sparse_moe.gate"
    renames = {f"attn.{p}": f"self_attn.{p}" for p in ("q_proj", "k_proj", "v_proj", "o_proj")}
    renames |= {"norm1": "input_layernorm", "norm2": "post_attention_layernorm", "ffn.moe.router": router}
    for i in range(config.n_layers):
        layer = f"{base}layers.{i}"
        out |= {f"layers.{i}.{ours}.weight": ckpt.take(f"{layer}.{hf}.weight") for ours, hf in renames.items()}
        out |= {f"layers.{i}.{ours}": t for ours, t in _experts(ckpt, layer, config.n_experts).items()}
    return out


MIXTRAL_FAMILY = HFFamily(config=mixtral_config, model=Mixtral, state_dict=mixtral_state_dict)
