"""A family-agnostic view of a model config: the numbers every calculator needs, and nothing family-specific.

Each config class gets one adapter (registered with :func:`register_adapter`) that reads its own fields; the
calculators then work on :class:`Arch` alone. Nothing is guessed from names: a config class without an adapter
is an error that says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from tfdojo.errors import ConfigError, UnknownModelError
from tfdojo.models.bert import BertConfig
from tfdojo.models.gpt2 import GPT2Config
from tfdojo.models.llama import LlamaConfig
from tfdojo.models.mixtral import MixtralConfig
from tfdojo.models.presets import PRESETS, Preset, preset_config
from tfdojo.models.t5 import T5Config
from tfdojo.models.variants import VariantConfig
from tfdojo.models.vit import ViTConfig

FFNKind = Literal["gated", "mlp"]
NormKind = Literal["rms", "layer"]
LayoutKind = Literal["pre", "post", "sandwich"]
PositionKind = Literal["rope", "learned", "sinusoidal", "alibi", "relative", "none"]


@dataclass(frozen=True)
class Arch:
    """The shape of a Transformer as the calculators see it (one decoder or encoder stack plus embeddings/head).

    ``final_norms``: norms after the last block (pre-LN; T5 has one per stack); ``embedding_norm``: one over the
    embeddings (BERT); ``n_positions``: rows of a learned position table (0 with rotary positions);
    ``n_experts`` = 0: a dense FFN; ``n_cross_layers``: decoder layers (of the ``n_layers``) that also attend to
    an encoder, with one more attention and one more norm; ``extra_params``: named family-specific parameters
    (a patch embedding, relative position biases) counted as they are; ``dropout``: the training dropout rate on
    the embeddings, residual branches and attention probabilities (activation memory counts its masks);
    ``capacity_factor``: a mixture's expert capacity, ⌈factor·tokens·k/E⌉ slots each (None: dropless);
    ``layout``: where the norms sit (pre-LN before each sublayer, post-LN after the residual add as in BERT,
    sandwich both before and after each sublayer); ``positions``: how positions enter (activation memory counts
    rotary tables, and ALiBi's dense bias).
    """

    family: str
    n_layers: int
    dim: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    ffn_kind: FFNKind
    ffn_hidden: int
    vocab_size: int
    tied_embeddings: bool
    norm: NormKind = "rms"
    norms_per_layer: int = 2
    final_norms: int = 1
    embedding_norm: bool = False
    n_positions: int = 0
    n_token_types: int = 0
    qkv_bias: bool = False
    out_bias: bool = False
    ffn_bias: bool = False
    head_bias: bool = False
    has_lm_head: bool = True
    pooler: bool = False
    n_experts: int = 0
    experts_per_token: int = 0
    sliding_window: int | None = None
    n_cross_layers: int = 0
    extra_params: tuple[tuple[str, int], ...] = ()
    dropout: float = 0.0
    capacity_factor: float | None = None
    layout: LayoutKind = "pre"
    positions: PositionKind = "rope"

    def __post_init__(self) -> None:
        sizes = {
            "n_layers": self.n_layers,
            "dim": self.dim,
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
            "head_dim": self.head_dim,
            "ffn_hidden": self.ffn_hidden,
            "vocab_size": self.vocab_size + (not self.has_lm_head),  # an encoder without a head may have none
        }
        bad = {k: v for k, v in sizes.items() if v <= 0}
        if bad:
            raise ConfigError(f"architecture sizes must be positive, got {bad}")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})")
        if self.n_experts < 0 or not 0 <= self.experts_per_token <= self.n_experts:
            raise ConfigError(
                f"experts_per_token ({self.experts_per_token}) must lie in [0, n_experts ({self.n_experts})]"
            )
        if self.n_experts and not self.experts_per_token:
            raise ConfigError(f"a mixture of {self.n_experts} experts needs experts_per_token ≥ 1")
        if not 0 <= self.n_cross_layers <= self.n_layers:
            raise ConfigError(f"n_cross_layers ({self.n_cross_layers}) must lie in [0, n_layers ({self.n_layers})]")
        if self.sliding_window is not None and self.sliding_window <= 0:
            raise ConfigError(f"sliding_window must be positive or None, got {self.sliding_window}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout is a probability in [0, 1), got {self.dropout}")
        if self.capacity_factor is not None and self.capacity_factor <= 0:
            raise ConfigError(f"capacity_factor must be positive or None (dropless), got {self.capacity_factor}")
        if self.layout not in LayoutKind.__args__:
            raise ConfigError(f"unknown layout {self.layout!r}; use one of {LayoutKind.__args__}")
        if self.positions not in PositionKind.__args__:
            raise ConfigError(f"unknown positions {self.positions!r}; use one of {PositionKind.__args__}")

    def require_one_stack(self, quantity: str) -> None:
        """ConfigError for an encoder-decoder, whose two stacks see different lengths (give them separately)."""
        if self.n_cross_layers:
            raise ConfigError(
                f"{quantity} needs one sequence length per stack, and {self.family} is an encoder-decoder; "
                "compute the encoder and the decoder as two decoder-only/encoder-only Arch values"
            )

    @property
    def extra_norms(self) -> int:
        """Norms outside the blocks."""
        return self.final_norms + self.embedding_norm

    @property
    def q_width(self) -> int:
        """Hq · D, the width of the queries (and of the attention output)."""
        return self.n_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        """Hkv · D, the width of the keys (and of the values)."""
        return self.n_kv_heads * self.head_dim


Config = TypeVar("Config")
_ADAPTERS: dict[type, Callable[[Any], Arch]] = {}


def register_adapter(config_cls: type[Config]) -> Callable[[Callable[[Config], Arch]], Callable[[Config], Arch]]:
    """Teach :func:`describe` to read ``config_cls`` (one adapter per config class)."""

    def add(fn: Callable[[Config], Arch]) -> Callable[[Config], Arch]:
        _ADAPTERS[config_cls] = fn
        return fn

    return add


def typed_config(model: Any) -> Any:
    """The family config for what a user has: a preset name, a ``Preset``, an HF folder or its config.json path.

    A string that names a preset is that preset (write ``./name`` for a folder of the same name); any other
    string or path must be an existing HF folder or config.json. Anything else is returned as it is.
    """
    if isinstance(model, Preset):
        return model.config()
    if isinstance(model, str) and model.lower() in PRESETS:
        return preset_config(model)
    if isinstance(model, str | os.PathLike):
        path = Path(model)
        if path.exists():
            from tfdojo.weights.hf import hf_typed_config  # weights builds on models: import only when needed

            return hf_typed_config(path)
        if isinstance(model, str) and os.sep not in model and not model.endswith(".json"):
            return preset_config(model)  # UnknownModelError with the closest preset names
        raise UnknownModelError(
            f"{str(model)!r} is neither a preset nor an existing Hugging Face folder or config.json; check the path "
            "or see `tfdojo calc presets`"
        )
    return model


def describe(config: Any) -> Arch:
    """The :class:`Arch` of a model: an ``Arch`` unchanged, a family config, or anything :func:`typed_config` reads."""
    if isinstance(config, Arch):
        return config
    config = typed_config(config)
    adapter = _ADAPTERS.get(type(config))  # the exact class: a subclass (Mixtral of Llama) may add parameters
    if adapter is not None:
        return adapter(config)
    known = ", ".join(sorted(c.__name__ for c in _ADAPTERS))
    raise ConfigError(
        f"the calculators cannot read a {type(config).__name__}; pass a preset name, a Preset, a Hugging Face "
        f"folder or config.json path, one of {known}, or a tfdojo.calc.describe.Arch"
    )


@register_adapter(LlamaConfig)
def _llama(c: LlamaConfig) -> Arch:
    return Arch(
        family="llama",
        n_layers=c.n_layers,
        dim=c.dim,
        n_heads=c.n_heads,
        n_kv_heads=c.n_kv_heads,
        head_dim=c.head_dim or c.dim // c.n_heads,
        ffn_kind="gated",
        ffn_hidden=c.ffn_hidden,
        vocab_size=c.vocab_size,
        tied_embeddings=c.tie_embeddings,
        norm="rms",
        qkv_bias=c.qkv_bias,
        out_bias=c.out_bias,
        ffn_bias=c.mlp_bias,
        # a window bounds the cache only when every layer slides (Qwen2 may keep its first layers full)
        sliding_window=c.sliding_window if c.sliding_layers is None or all(c.sliding_layers) else None,
    )


@register_adapter(MixtralConfig)
def _mixtral(c: MixtralConfig) -> Arch:
    return replace(_llama(c), family="mixtral", n_experts=c.n_experts, experts_per_token=c.top_k)


def _biased_mha(n_layers: int, dim: int, n_heads: int, ffn_hidden: int) -> dict[str, Any]:
    """Fields shared by GPT-2, BERT and ViT: LayerNorm, full multi-head attention, biased projections, GELU MLP."""
    return {
        "n_layers": n_layers,
        "dim": dim,
        "n_heads": n_heads,
        "n_kv_heads": n_heads,
        "head_dim": dim // n_heads,
        "ffn_kind": "mlp",
        "ffn_hidden": ffn_hidden,
        "norm": "layer",
        "qkv_bias": True,
        "out_bias": True,
        "ffn_bias": True,
    }


@register_adapter(GPT2Config)
def _gpt2(c: GPT2Config) -> Arch:
    return Arch(
        family="gpt2",
        **_biased_mha(c.n_layers, c.dim, c.n_heads, c.ffn_hidden or 4 * c.dim),
        vocab_size=c.vocab_size,
        tied_embeddings=c.tie_embeddings,
        n_positions=c.n_positions,
        positions="learned",
    )


@register_adapter(BertConfig)
def _bert(c: BertConfig) -> Arch:
    return Arch(
        family="bert",
        **_biased_mha(c.n_layers, c.dim, c.n_heads, c.ffn_hidden),
        vocab_size=c.vocab_size,
        tied_embeddings=False,
        final_norms=0,
        embedding_norm=True,
        n_positions=c.max_positions,
        positions="learned",
        layout="post",
        n_token_types=c.type_vocab_size,
        has_lm_head=False,
        pooler=c.pooler,
    )


@register_adapter(T5Config)
def _t5(c: T5Config) -> Arch:
    decoder_layers = c.n_decoder_layers or c.n_layers
    return Arch(
        family="t5",
        n_layers=c.n_layers + decoder_layers,
        dim=c.dim,
        n_heads=c.n_heads,
        n_kv_heads=c.n_heads,
        head_dim=c.head_dim,
        ffn_kind="gated" if c.gated_ffn else "mlp",
        ffn_hidden=c.ffn_hidden,
        vocab_size=c.vocab_size,
        tied_embeddings=c.tie_embeddings,
        norm="rms",
        final_norms=2,  # one after the encoder, one after the decoder
        n_cross_layers=decoder_layers,
        positions="relative",
        extra_params=(("relative position biases", 2 * c.num_buckets * c.n_heads),),  # encoder's and decoder's
    )


@register_adapter(ViTConfig)
def _vit(c: ViTConfig) -> Arch:
    grid = c.pos_grid or c.image_size // c.patch_size
    extras = [("patch embedding", c.channels * c.patch_size**2 * c.dim + c.dim), ("class token", c.dim)]
    if c.layer_scale:
        extras.append(("layer scales", 2 * c.n_layers * c.dim))
    return Arch(
        family="vit",
        **{**_biased_mha(c.n_layers, c.dim, c.n_heads, c.ffn_hidden), "qkv_bias": c.qkv_bias},
        vocab_size=0,
        tied_embeddings=False,
        n_positions=1 + grid**2,
        positions="learned",
        has_lm_head=False,
        extra_params=tuple(extras),
    )


@register_adapter(VariantConfig)
def _variant(c: VariantConfig) -> Arch:
    extra = ()
    if c.backend == "linformer":  # a learned E and F (k × max_len) in every layer
        extra = (("Linformer projections", c.n_layers * 2 * c.linformer_k * c.max_seq_len),)
    return Arch(
        family="variant",
        n_layers=c.n_layers,
        dim=c.dim,
        n_heads=c.n_heads,
        n_kv_heads=c.kv_heads,
        head_dim=c.head_dim,
        ffn_kind="gated" if c.n_experts or c.ffn in ("swiglu", "geglu") else "mlp",
        ffn_hidden=c.ffn_hidden,
        vocab_size=c.vocab_size,
        tied_embeddings=c.tie_embeddings,
        norm="layer" if c.norm == "layernorm" else "rms",
        norms_per_layer=4 if c.layout == "sandwich" else 2,
        final_norms=0 if c.layout == "post" else 1,
        n_positions=c.max_seq_len if c.positions == "learned" else 0,
        qkv_bias=c.bias,
        out_bias=c.bias,
        ffn_bias=c.bias and not c.n_experts,
        n_experts=c.n_experts,
        experts_per_token=c.top_k if c.n_experts else 0,
        capacity_factor=c.capacity_factor if c.n_experts else None,
        sliding_window=c.window,
        extra_params=extra,
        dropout=c.dropout,
        layout=c.layout,
        positions=c.positions,
    )
