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
    """Our LlamaConfig from a Llama config.json; ``attention_bias`` biases q, k, v and o, ``mlp_bias`` the SwiGLU."""
    refuse_unsupported(hf, {"hidden_act": "silu"})
    n_heads = hf_field(hf, "num_attention_heads")
    attention_bias = hf_field(hf, "attention_bias", False)
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
        qkv_bias=attention_bias,
        out_bias=attention_bias,
        mlp_bias=hf_field(hf, "mlp_bias", False),
    )


def llama_state_dict(ckpt: HFCheckpoint, config: LlamaConfig) -> dict[str, Tensor]:
    """Our parameter names -> tensors (HF ``model.layers.i.self_attn.q_proj`` -> ``layers.i.attn.q_proj``), with
    the biases the config asks for (q/k/v for Qwen2's and Llama's ``attention_bias``, o and the MLP for Llama's)."""
    base = ckpt.base_prefix("embed_tokens.weight", "model.")
    out = {"embed.weight": ckpt.take(f"{base}embed_tokens.weight"), "norm.weight": ckpt.take(f"{base}norm.weight")}
    if not config.tie_embeddings:
        out["lm_head.weight"] = ckpt.take("lm_head.weight")
    linears = {  # ours -> HF, below layers.i.; each with the bias flag that covers it
        "attn.q_proj": ("self_attn.q_proj", config.qkv_bias),
        "attn.k_proj": ("self_attn.k_proj", config.qkv_bias),
        "attn.v_proj": ("self_attn.v_proj", config.qkv_bias),
        "attn.o_proj": ("self_attn.o_proj", config.out_bias),
        "ffn.gate": ("mlp.gate_proj", config.mlp_bias),
        "ffn.up": ("mlp.up_proj", config.mlp_bias),
        "ffn.down": ("mlp.down_proj", config.mlp_bias),
    }
    for i in range(config.n_layers):
        hf, ours = f"{base}layers.{i}.", f"layers.{i}."
        for name, (hf_name, biased) in linears.items():
            for kind in ("weight", "bias") if biased else ("weight",):
                out[f"{ours}{name}.{kind}"] = ckpt.take(f"{hf}{hf_name}.{kind}")
        out[f"{ours}norm1.weight"] = ckpt.take(f"{hf}input_layernorm.weight")
        out[f"{ours}norm2.weight"] = ckpt.take(f"{hf}post_attention_layernorm.weight")
    return out


LLAMA_FAMILY = HFFamily(config=llama_config, model=Llama, state_dict=llama_state_dict)
