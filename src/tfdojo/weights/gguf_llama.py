"""A Llama (tfdojo.models.llama) from a GGUF file: config from the llama.* metadata, weights by tensor name."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from tfdojo.errors import CheckpointError, MissingTensorError, UnsupportedModelError
from tfdojo.models.llama import Llama, LlamaConfig
from tfdojo.weights.gguf import REINSTALL_HINT, iter_dequantized, torch_shape, unpermute_rope_rows
from tfdojo.weights.gguf_reader import GGUFFile

SUPPORTED_ARCHITECTURES = ("llama",)

# llama.cpp tensor name (per block: blk.N.<name>) -> our module path (layers.N.<path>)
BLOCK_TENSORS = {
    "attn_norm.weight": "norm1.weight",
    "attn_q.weight": "attn.q_proj.weight",
    "attn_k.weight": "attn.k_proj.weight",
    "attn_v.weight": "attn.v_proj.weight",
    "attn_output.weight": "attn.o_proj.weight",
    "ffn_norm.weight": "norm2.weight",
    "ffn_gate.weight": "ffn.gate.weight",
    "ffn_up.weight": "ffn.up.weight",
    "ffn_down.weight": "ffn.down.weight",
}


def llama_config_from_gguf(
    metadata: Mapping[str, Any], tensor_names: Collection[str], source: str = "the GGUF file"
) -> LlamaConfig:
    """LlamaConfig from ``llama.*`` keys (llama.cpp's names); rejects architectures and RoPE variants we lack.

    The embeddings are tied when the file has no separate ``output.weight``.
    """
    arch = metadata.get("general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedModelError(
            f"{source} holds a {arch!r} model; tfdojo loads GGUF files of these architectures: "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}"
        )

    def key(name: str, default: Any = None) -> Any:
        value = metadata.get(f"{arch}.{name}", default)
        if value is None:
            raise CheckpointError(f"{source} lacks the metadata key {arch}.{name}; {REINSTALL_HINT}")
        return value

    scaling = metadata.get(f"{arch}.rope.scaling.type", "none")
    if scaling != "none":
        raise UnsupportedModelError(f"{source} uses RoPE scaling {scaling!r}, which tfdojo's Llama does not implement")
    n_heads = int(key("attention.head_count"))
    dim = int(key("embedding_length"))
    head_dim = int(metadata.get(f"{arch}.attention.key_length", dim // n_heads))
    if int(metadata.get(f"{arch}.rope.dimension_count", head_dim)) != head_dim:
        raise UnsupportedModelError(f"{source} rotates only part of each head (partial RoPE), which tfdojo lacks")
    tokens = metadata.get("tokenizer.ggml.tokens") or ()
    return LlamaConfig(
        vocab_size=int(metadata.get(f"{arch}.vocab_size", len(tokens)) or len(tokens)),
        dim=dim,
        n_layers=int(key("block_count")),
        n_heads=n_heads,
        n_kv_heads=int(key("attention.head_count_kv", n_heads)),
        ffn_hidden=int(key("feed_forward_length")),
        rope_theta=float(key("rope.freq_base", 10000.0)),
        norm_eps=float(key("attention.layer_norm_rms_epsilon")),
        max_seq_len=int(key("context_length")),
        head_dim=head_dim,
        tie_embeddings="output.weight" not in tensor_names,
    )


def llama_tensor_names(config: LlamaConfig) -> dict[str, str]:
    """GGUF tensor name -> our state-dict key, for every tensor the model needs."""
    names = {"token_embd.weight": "embed.weight", "output_norm.weight": "norm.weight"}
    if not config.tie_embeddings:
        names["output.weight"] = "lm_head.weight"
    for i in range(config.n_layers):
        names.update({f"blk.{i}.{theirs}": f"layers.{i}.{ours}" for theirs, ours in BLOCK_TENSORS.items()})
    return names


class _SkipInitializers(TorchFunctionMode):
    """Turns every ``torch.nn.init`` call into a no-op while a model is built whose weights will all be assigned.

    Without it, building SmolLM2 fills 135 M parameters with random numbers (seconds) only to overwrite them.
    The parameters are still allocated (``torch.empty``: untouched pages cost nothing) and buffers computed from
    the config, such as RoPE's frequencies, are built as usual. The meta device would skip the allocation too,
    but its first arithmetic imports ``torch._dynamo`` (seconds again) and its buffers would need rebuilding.
    """

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if getattr(func, "__module__", None) == "torch.nn.init":  # init.normal_(tensor, …) and its kind
            return kwargs["tensor"] if "tensor" in kwargs else args[0]
        return func(*args, **kwargs)


def llama_from_gguf(
    reader: GGUFFile,
    metadata: Mapping[str, Any],
    *,
    dtype: torch.dtype = torch.float32,
    source: str = "the GGUF file",
) -> tuple[LlamaConfig, Llama]:
    """Config and model (eval mode, frozen, weights in ``dtype``) from an opened GGUF file; ``source`` names it."""
    tensors = {t.name: t for t in reader.tensors}
    config = llama_config_from_gguf(metadata, tensors.keys(), source)
    names = llama_tensor_names(config)
    with _SkipInitializers():
        model = Llama(config)  # every parameter is assigned below (load_state_dict is strict)
    expected = model.state_dict()
    for theirs, ours in names.items():
        if theirs not in tensors:
            raise MissingTensorError(f"{source} lacks tensor {theirs!r} (our {ours}); {REINSTALL_HINT}")
        if torch_shape(tensors[theirs]) != tuple(expected[ours].shape):
            raise MissingTensorError(
                f"{source}: tensor {theirs!r} has shape {torch_shape(tensors[theirs])}, the config implies "
                f"{tuple(expected[ours].shape)} for {ours}; the file's metadata and tensors disagree"
            )
    unknown = sorted(set(tensors) - set(names))
    if unknown:
        raise UnsupportedModelError(f"{source} has tensors tfdojo's Llama has no place for: {unknown[:5]}")

    heads = {"attn_q.weight": config.n_heads, "attn_k.weight": config.n_kv_heads}
    state: dict[str, Tensor] = {}
    for name, weight in iter_dequantized((tensors[n] for n in names), label="dequantizing GGUF"):
        n_heads = heads.get(name.split(".", 2)[-1])
        state[names[name]] = (unpermute_rope_rows(weight, n_heads) if n_heads else weight).to(dtype)
    if config.tie_embeddings:
        state["lm_head.weight"] = state["embed.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    if config.tie_embeddings:
        model.lm_head.weight = model.embed.weight  # assign=True replaced both Parameters; share one again
    return config, model.eval().requires_grad_(False)
