"""Writing small GGUF files for tests, the way llama.cpp's convert_hf_to_gguf.py lays them out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from tfdojo.tokenize.gguf_vocab import byte_alphabet

F32 = gguf.GGMLQuantizationType.F32


def llama_cpp_permute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """llama.cpp's converter, written as an index map: file row h·D + 2i + j holds original row h·D + j·D/2 + i."""
    out, _ = w.shape
    d = out // n_heads
    rows = [h * d + j * (d // 2) + i for h in range(n_heads) for i in range(d // 2) for j in range(2)]
    return w[rows]


def tiny_hf_llama(*, tied: bool = True, hidden: int = 32, n_heads: int = 4, n_kv_heads: int = 2) -> LlamaForCausalLM:
    """A 2-layer HF Llama over the 258-token vocabulary of byte_vocab_metadata, norm weights moved away from 1."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=258,
        hidden_size=hidden,
        intermediate_size=hidden * 3 // 2,
        num_hidden_layers=2,
        num_attention_heads=n_heads,
        num_key_value_heads=n_kv_heads,
        rms_norm_eps=1e-6,
        rope_theta=500.0,
        max_position_embeddings=64,
        tie_word_embeddings=tied,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:  # a swapped or missing norm then shows in the logits
                p.add_(torch.randn_like(p) * 0.3)
    return model


def write_gguf(
    path: Path, arch: str, metadata: Mapping[str, Any], tensors: Mapping[str, tuple[np.ndarray, Any]]
) -> Path:
    """A GGUF file with the given metadata and (fp32 array, ggml type) tensors, quantized here when asked."""
    writer = gguf.GGUFWriter(path, arch)
    adders = {bool: writer.add_bool, int: writer.add_uint32, float: writer.add_float32, str: writer.add_string}
    for key, value in metadata.items():
        (writer.add_array if isinstance(value, list) else adders[type(value)])(key, value)
    for name, (array, qtype) in tensors.items():
        data = array if qtype == F32 else gguf.quants.quantize(array, qtype)
        writer.add_tensor(name, data, raw_dtype=None if qtype == F32 else qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def byte_vocab_metadata() -> dict[str, Any]:
    """A tokenizer whose id b < 256 is byte b, one merge (" t" -> 256) and <|im_end|> (257) as end of sequence."""
    tokens = [*(byte_alphabet()[b] for b in range(256)), "Ġt", "<|im_end|>"]
    return {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "smollm",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [int(gguf.TokenType.NORMAL)] * 257 + [int(gguf.TokenType.CONTROL)],
        "tokenizer.ggml.merges": ["Ġ t"],
        "tokenizer.ggml.eos_token_id": 257,
    }


def llama_gguf_from_hf(
    path: Path,
    hf_model: Any,
    *,
    drop: Iterable[str] = (),
    arch: str = "llama",
    extra: Mapping[str, np.ndarray] | None = None,
) -> Path:
    """An F32 GGUF of an HF LlamaForCausalLM: llama.* metadata, llama.cpp tensor names, Q/K rows permuted."""
    c = hf_model.config
    sd = {k: v.detach().float() for k, v in hf_model.state_dict().items()}
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    if not c.tie_word_embeddings:
        names["lm_head.weight"] = "output.weight"
    per_layer = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    for i in range(c.num_hidden_layers):
        names |= {f"model.layers.{i}.{hf}.weight": f"blk.{i}.{ours}.weight" for hf, ours in per_layer.items()}
    tensors = {}
    for hf_name, name in names.items():
        w = sd[hf_name]
        if name.endswith("attn_q.weight"):
            w = llama_cpp_permute(w, c.num_attention_heads)
        elif name.endswith("attn_k.weight"):
            w = llama_cpp_permute(w, c.num_key_value_heads)
        if name not in set(drop):
            tensors[name] = (w.numpy(), F32)
    tensors |= {name: (a, F32) for name, a in (extra or {}).items()}
    metadata = {
        f"{arch}.block_count": c.num_hidden_layers,
        f"{arch}.context_length": c.max_position_embeddings,
        f"{arch}.embedding_length": c.hidden_size,
        f"{arch}.feed_forward_length": c.intermediate_size,
        f"{arch}.attention.head_count": c.num_attention_heads,
        f"{arch}.attention.head_count_kv": c.num_key_value_heads,
        f"{arch}.rope.freq_base": float(c.rope_parameters["rope_theta"]),
        f"{arch}.attention.layer_norm_rms_epsilon": float(c.rms_norm_eps),
        **byte_vocab_metadata(),
    }
    return write_gguf(path, arch, metadata, tensors)
