"""Hugging Face GPT-2 folders -> tfdojo GPT2.

HF stores GPT-2's projections as ``Conv1D`` with weights laid out (in, out), the transpose of ``nn.Linear``,
and fuses the query, key and value projections into one ``c_attn`` of width 3·dim (q | k | v).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.models.gpt2 import GPT2, GPT2Config
from tfdojo.weights.hf_family import HFCheckpoint, HFFamily, hf_field, refuse_unsupported

# HF activation names -> ours (transformers/activations.py: "gelu_new" is the tanh approximation)
_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}


def gpt2_config(hf: Mapping[str, Any], checkpoint: HFCheckpoint) -> GPT2Config:
    """Our GPT2Config from a GPT-2 config.json."""
    refuse_unsupported(hf, {"scale_attn_weights": True, "add_cross_attention": False})
    act = hf_field(hf, "activation_function", "gelu_new")
    if act not in _ACTIVATIONS:
        raise ConfigError(f"GPT-2 activation_function {act!r} is not supported; expected one of {sorted(_ACTIVATIONS)}")
    return GPT2Config(
        vocab_size=hf_field(hf, "vocab_size"),
        n_positions=hf_field(hf, "n_positions"),
        dim=hf_field(hf, "n_embd"),
        n_layers=hf_field(hf, "n_layer"),
        n_heads=hf_field(hf, "n_head"),
        ffn_hidden=hf.get("n_inner"),
        norm_eps=hf_field(hf, "layer_norm_epsilon", 1e-5),
        activation=_ACTIVATIONS[act],
        tie_embeddings=hf_field(hf, "tie_word_embeddings", True),
        scale_attn_by_inverse_layer_idx=hf_field(hf, "scale_attn_by_inverse_layer_idx", False),
    )


def gpt2_state_dict(ckpt: HFCheckpoint, config: GPT2Config) -> dict[str, Tensor]:
    """Our parameter names -> tensors; Conv1D weights transposed, c_attn split into q, k, v."""
    base = ckpt.base_prefix("wte.weight", "transformer.")
    out = {
        "embed.weight": ckpt.take(f"{base}wte.weight"),
        "pos_embed.weight": ckpt.take(f"{base}wpe.weight"),
        "norm.weight": ckpt.take(f"{base}ln_f.weight"),
        "norm.bias": ckpt.take(f"{base}ln_f.bias"),
    }
    if not config.tie_embeddings:
        out["lm_head.weight"] = ckpt.take("lm_head.weight")
    for i in range(config.n_layers):
        hf, ours = f"{base}h.{i}.", f"layers.{i}."
        q, k, v = ckpt.take(f"{hf}attn.c_attn.weight").t().chunk(3, dim=0)  # (3·dim, dim) -> 3 × (dim, dim)
        qb, kb, vb = ckpt.take(f"{hf}attn.c_attn.bias").chunk(3, dim=0)  # (3·dim,) -> 3 × (dim,)
        out |= {
            f"{ours}attn.q_proj.weight": q,
            f"{ours}attn.k_proj.weight": k,
            f"{ours}attn.v_proj.weight": v,
            f"{ours}attn.q_proj.bias": qb,
            f"{ours}attn.k_proj.bias": kb,
            f"{ours}attn.v_proj.bias": vb,
            f"{ours}attn.o_proj.weight": ckpt.take(f"{hf}attn.c_proj.weight").t(),  # (in, out) -> (out, in)
            f"{ours}attn.o_proj.bias": ckpt.take(f"{hf}attn.c_proj.bias"),
            f"{ours}ffn.fc.weight": ckpt.take(f"{hf}mlp.c_fc.weight").t(),  # (in, out) -> (out, in)
            f"{ours}ffn.fc.bias": ckpt.take(f"{hf}mlp.c_fc.bias"),
            f"{ours}ffn.proj.weight": ckpt.take(f"{hf}mlp.c_proj.weight").t(),  # (in, out) -> (out, in)
            f"{ours}ffn.proj.bias": ckpt.take(f"{hf}mlp.c_proj.bias"),
            f"{ours}norm1.weight": ckpt.take(f"{hf}ln_1.weight"),
            f"{ours}norm1.bias": ckpt.take(f"{hf}ln_1.bias"),
            f"{ours}norm2.weight": ckpt.take(f"{hf}ln_2.weight"),
            f"{ours}norm2.bias": ckpt.take(f"{hf}ln_2.bias"),
        }
    return out


GPT2_FAMILY = HFFamily(config=gpt2_config, model=GPT2, state_dict=gpt2_state_dict)
