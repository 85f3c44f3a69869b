"""Hugging Face BERT folders (BertModel, or a task model whose base sits under "bert.") -> tfdojo Bert."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.models.bert import Bert, BertConfig
from tfdojo.weights.hf_family import HFCheckpoint, HFFamily, encoder_wrapper, hf_field, refuse_unsupported

# HF activation names -> ours ("gelu" is the exact erf form BERT was trained with)
_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "relu": "relu"}


def bert_config(hf: Mapping[str, Any], checkpoint: HFCheckpoint) -> BertConfig:
    """Our BertConfig from a BERT config.json; the pooler is kept when the checkpoint has one."""
    refuse_unsupported(hf, {"position_embedding_type": "absolute", "is_decoder": False, "add_cross_attention": False})
    act = hf_field(hf, "hidden_act", "gelu")
    if act not in _ACTIVATIONS:
        raise ConfigError(f"BERT hidden_act {act!r} is not supported; expected one of {sorted(_ACTIVATIONS)}")
    base = checkpoint.base_prefix("embeddings.word_embeddings.weight", "bert.")
    return BertConfig(
        vocab_size=hf_field(hf, "vocab_size"),
        max_positions=hf_field(hf, "max_position_embeddings"),
        type_vocab_size=hf_field(hf, "type_vocab_size", 2),
        dim=hf_field(hf, "hidden_size"),
        n_layers=hf_field(hf, "num_hidden_layers"),
        n_heads=hf_field(hf, "num_attention_heads"),
        ffn_hidden=hf_field(hf, "intermediate_size"),
        norm_eps=hf_field(hf, "layer_norm_eps", 1e-12),
        activation=_ACTIVATIONS[act],
        pooler=f"{base}pooler.dense.weight" in checkpoint,
    )


def bert_state_dict(ckpt: HFCheckpoint, config: BertConfig) -> dict[str, Tensor]:
    """Our parameter names -> tensors (HF ``encoder.layer.i.attention.self.query`` -> ``layers.i.attn.q_proj``)."""
    base = ckpt.base_prefix("embeddings.word_embeddings.weight", "bert.")
    renames = {
        "embed": "embeddings.word_embeddings",
        "pos_embed": "embeddings.position_embeddings",
        "type_embed": "embeddings.token_type_embeddings",
    }
    out = {f"{ours}.weight": ckpt.take(f"{base}{hf}.weight") for ours, hf in renames.items()}
    pairs = {"embed_norm": "embeddings.LayerNorm"} | ({"pooler": "pooler.dense"} if config.pooler else {})
    for i in range(config.n_layers):
        hf, ours = f"encoder.layer.{i}.", f"layers.{i}."
        pairs |= {
            f"{ours}attn.q_proj": f"{hf}attention.self.query",
            f"{ours}attn.k_proj": f"{hf}attention.self.key",
            f"{ours}attn.v_proj": f"{hf}attention.self.value",
            f"{ours}attn.o_proj": f"{hf}attention.output.dense",
            f"{ours}norm1": f"{hf}attention.output.LayerNorm",
            f"{ours}ffn.fc": f"{hf}intermediate.dense",
            f"{ours}ffn.proj": f"{hf}output.dense",
            f"{ours}norm2": f"{hf}output.LayerNorm",
        }
    for ours, hf in pairs.items():  # every one of these is a (weight, bias) pair
        out[f"{ours}.weight"] = ckpt.take(f"{base}{hf}.weight")
        out[f"{ours}.bias"] = ckpt.take(f"{base}{hf}.bias")
    return out


BERT_FAMILY = HFFamily(config=bert_config, model=Bert, state_dict=bert_state_dict, wrap=encoder_wrapper)
