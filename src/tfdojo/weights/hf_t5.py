"""Hugging Face T5 folders (``model_type: t5``) -> :class:`tfdojo.models.t5.T5`.

HF nests each block as ``block.{i}.layer.{j}``: j = 0 self-attention, then (decoder only) j = 1 cross-attention
("EncDecAttention"), then the feed-forward ("DenseReluDense", ``wi``/``wo``, or ``wi_0``/``wi_1``/``wo`` gated).
Only block 0 of each stack stores the relative position table. Original T5 ties the head to ``shared`` and
rescales the decoder output by d^-0.5; v1.1 stores a separate ``lm_head.weight`` and does not rescale.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from tfdojo.models.t5 import T5, T5Config
from tfdojo.weights.hf_family import HFCheckpoint, HFFamily, hf_field

# HF activation names -> ours ("gated-gelu" means the tanh GELU, HF's "gelu_new", for historical reasons).
_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gated-gelu": "gelu_tanh"}


def t5_config(hf: Mapping[str, Any], checkpoint: HFCheckpoint) -> T5Config:
    """config.json -> T5Config; a stored ``lm_head.weight`` means an untied head (T5 v1.1, Flan-T5).

    Without tensors (config.json alone, for the calculators) ``tie_word_embeddings`` decides instead.
    """
    projection = hf_field(hf, "feed_forward_proj", "relu")
    activation = projection.removeprefix("gated-")
    tied = "lm_head.weight" not in checkpoint if checkpoint.tensors else hf_field(hf, "tie_word_embeddings", True)
    return T5Config(
        vocab_size=hf_field(hf, "vocab_size"),
        dim=hf_field(hf, "d_model"),
        head_dim=hf_field(hf, "d_kv"),
        ffn_hidden=hf_field(hf, "d_ff"),
        n_layers=hf_field(hf, "num_layers"),
        n_decoder_layers=hf_field(hf, "num_decoder_layers", None),
        n_heads=hf_field(hf, "num_heads"),
        num_buckets=hf_field(hf, "relative_attention_num_buckets", 32),
        max_distance=hf_field(hf, "relative_attention_max_distance", 128),
        norm_eps=hf_field(hf, "layer_norm_epsilon", 1e-6),
        activation=_ACTIVATIONS.get(projection, _ACTIVATIONS.get(activation, activation)),
        gated_ffn=projection.startswith("gated-"),
        tie_embeddings=tied,
        scale_decoder_output=hf_field(hf, "scale_decoder_outputs", hf_field(hf, "tie_word_embeddings", True)),
        pad_token_id=hf_field(hf, "pad_token_id", 0),
        eos_token_id=hf_field(hf, "eos_token_id", 1),
        decoder_start_token_id=hf_field(hf, "decoder_start_token_id", 0),
    )


def _attention(ours: str, theirs: str) -> dict[str, str]:
    return {f"{ours}.{p}_proj.weight": f"{theirs}.{p}.weight" for p in "qkvo"}


def _ffn(ours: str, theirs: str, gated: bool) -> dict[str, str]:
    names = {"gate": "wi_0", "up": "wi_1", "down": "wo"} if gated else {"fc": "wi", "proj": "wo"}
    return {f"{ours}.{a}.weight": f"{theirs}.DenseReluDense.{b}.weight" for a, b in names.items()}


def t5_key_map(c: T5Config) -> dict[str, str]:
    """Our parameter name -> the HF tensor name it is read from."""
    keys = {
        "embed.weight": "shared.weight",
        "encoder_bias.embedding.weight": "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "encoder_norm.weight": "encoder.final_layer_norm.weight",
        "decoder_bias.embedding.weight": "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "decoder_norm.weight": "decoder.final_layer_norm.weight",
    }
    if not c.tie_embeddings:
        keys["lm_head.weight"] = "lm_head.weight"
    for i in range(c.n_layers):
        ours, theirs = f"encoder_layers.{i}", f"encoder.block.{i}.layer"
        keys |= _attention(f"{ours}.attn", f"{theirs}.0.SelfAttention") | _ffn(
            f"{ours}.ffn", f"{theirs}.1", c.gated_ffn
        )
        keys |= {
            f"{ours}.norm1.weight": f"{theirs}.0.layer_norm.weight",
            f"{ours}.norm2.weight": f"{theirs}.1.layer_norm.weight",
        }
    for i in range(c.n_decoder_layers):
        ours, theirs = f"decoder_layers.{i}", f"decoder.block.{i}.layer"
        keys |= _attention(f"{ours}.self_attn", f"{theirs}.0.SelfAttention")
        keys |= _attention(f"{ours}.cross_attn", f"{theirs}.1.EncDecAttention")
        keys |= _ffn(f"{ours}.ffn", f"{theirs}.2", c.gated_ffn)
        keys |= {f"{ours}.norm{j + 1}.weight": f"{theirs}.{j}.layer_norm.weight" for j in range(3)}
    return keys


def t5_state_dict(checkpoint: HFCheckpoint, config: T5Config) -> dict[str, Tensor]:
    """Every T5 parameter under our name, read from the checkpoint."""
    return {ours: checkpoint.take(theirs) for ours, theirs in t5_key_map(config).items()}


def seq2seq_wrapper(config: T5Config, model: nn.Module, tokenizer: Any, folder: Path) -> Any:
    """A ``Seq2SeqLM`` (config, model, tokenizer, cached ``generate`` with sampling)."""
    from tfdojo.infer.seq2seq import Seq2SeqLM  # infer builds on weights' output, so import late

    return Seq2SeqLM(config, model, tokenizer)


T5_FAMILY = HFFamily(config=t5_config, model=T5, state_dict=t5_state_dict, wrap=seq2seq_wrapper)
