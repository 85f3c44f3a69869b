"""Hugging Face Llama folders -> tfdojo Llama (HF already uses our rotate-half RoPE layout: names change only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from tfdojo.models.llama import Llama, LlamaConfig
from tfdojo.nn.rope import RopeScaling
from tfdojo.weights.hf_family import HFCheckpoint, HFFamily, hf_field, refuse_unsupported


def rope_theta(hf: Mapping[str, Any]) -> float:
    """RoPE base from ``rope_parameters`` (transformers ≥ 5) or ``rope_theta`` (older)."""
    params = hf.get("rope_parameters") or {}
    return float(params.get("rope_theta") or hf_field(hf, "rope_theta", 10000.0))


def rope_scaling(hf: Mapping[str, Any]) -> RopeScaling | None:
    """The context-extension scaling in ``rope_parameters`` (transformers ≥ 5) or ``rope_scaling`` (older)."""
    return RopeScaling.from_hf(
        hf.get("rope_parameters") or hf.get("rope_scaling"), hf_field(hf, "max_position_embeddings", 2048)
    )


def llama_config(hf: Mapping[str, Any], checkpoint: HFCheckpoint) -> LlamaConfig:
    """Our LlamaConfig from a Llama config.json."""
    refuse_unsupported(hf, {"hidden_act": "silu", "attention_bias": False, "mlp_bias": False})
    n_heads = hf_field(hf, "num_attention_heads")
    return LlamaConfig(
        vocab_size=hf_field(hf, "vocab_size"),
        dim=hf_field(hf, "hidden_size"),
        n_layers=hf_field(hf, "num_hidden_layers"),
        n_heads=n_heads,
        n_kv_heads=hf_field(hf, "num_key_value_heads", n_heads),
        ffn_hidden=hf_field(hf, "intermediate_size"),
        rope_theta=rope_theta(hf),
        rope_scaling=rope_scaling(hf),
        norm_eps=hf_field(hf, "rms_norm_eps", 1e-6),
        max_seq_len=hf_field(hf, "max_position_embeddings", 2048),
        tie_embeddings=hf_field(hf, "tie_word_embeddings", False),
        head_dim=hf.get("head_dim"),
    )


def llama_state_dict(ckpt: HFCheckpoint, config: LlamaConfig) -> dict[str, Tensor]:
    """Our parameter names -> tensors (HF ``model.layers.i.self_attn.q_proj`` -> ``layers.i.attn.q_proj``)."""
    base = ckpt.base_prefix("embed_tokens.weight", "model.")
    out = {"embed.weight": ckpt.take(f"{base}embed_tokens.weight"), "norm.weight": ckpt.take(f"{base}norm.weight")}
    if not config.tie_embeddings:
        out["lm_head.weight"] = ckpt.take("lm_head.weight")
    for i in range(config.n_layers):
        hf, ours = f"{base}layers.{i}.", f"layers.{i}."
        out |= {
            f"{ours}attn.{p}.weight": ckpt.take(f"{hf}self_attn.{p}.weight") for p in ("q_proj", "k_proj", "v_proj")
        }
        out |= {
            f"{ours}attn.o_proj.weight": ckpt.take(f"{hf}self_attn.o_proj.weight"),
            f"{ours}ffn.gate.weight": ckpt.take(f"{hf}mlp.gate_proj.weight"),
            f"{ours}ffn.up.weight": ckpt.take(f"{hf}mlp.up_proj.weight"),
            f"{ours}ffn.down.weight": ckpt.take(f"{hf}mlp.down_proj.weight"),
            f"{ours}norm1.weight": ckpt.take(f"{hf}input_layernorm.weight"),
            f"{ours}norm2.weight": ckpt.take(f"{hf}post_attention_layernorm.weight"),
        }
    return out


LLAMA_FAMILY = HFFamily(config=llama_config, model=Llama, state_dict=llama_state_dict)
