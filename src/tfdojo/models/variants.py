"""One Transformer whose every mechanism is chosen by a typed config: the model to try variants side by side.

The families (GPT-2, Llama, BERT, …) each fix their choices; :class:`VariantConfig` names every choice instead::

    tokens ─ embed (+ learned | sinusoidal positions) ─┬─ block × n_layers ─ final norm ─ head ─ logits
                                                        │   layout: pre | post | sandwich
                                                        │   norm:   layernorm | rmsnorm
                                                        │   attention: MHA / GQA / MQA (n_kv_heads),
                                                        │     backend: eager | sdpa | tiled | block_sparse |
                                                        │              linear | linformer,
                                                        │     positions inside attention: rope (+ scaling) | alibi,
                                                        │     window (sliding), causal or bidirectional
                                                        │   ffn: gelu | relu2 MLP, swiglu, geglu, or a routed MoE
                                                        │   dropout (training): embeddings, each residual branch,
                                                        │     attention probabilities (eager | sdpa)
                                                        └─ (each choice documented in docs/architecture/variants.md)

With ``causal=True`` it is a decoder-only language model (works with a KV cache where the backend allows one);
with ``causal=False`` a bidirectional encoder with a token head (masked-LM style). ``VariantLM.aux`` holds the
MoE losses of the last call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.models.decoding import decoder_masks, document_masks
from tfdojo.nn.attention import available_backends
from tfdojo.nn.backends.linear import PerformerFeatures
from tfdojo.nn.backends.linformer import LinformerProjection
from tfdojo.nn.blocks import BlockLayout, make_block
from tfdojo.nn.dropout import make_dropout
from tfdojo.nn.ffn import make_ffn
from tfdojo.nn.kv import KVCache
from tfdojo.nn.masks import check_window
from tfdojo.nn.moe import MoE, RoutedFFN, load_balancing_loss, router_z_loss
from tfdojo.nn.norms import NormKind, make_norm
from tfdojo.nn.positions import LearnedPositions, SinusoidalPositions, alibi_slopes
from tfdojo.nn.rope import RopeScaling, RotaryEmbedding
from tfdojo.nn.self_attention import Attention

PositionKind = Literal["learned", "sinusoidal", "rope", "alibi", "none"]
FfnChoice = Literal["gelu", "relu2", "swiglu", "geglu"]
FeatureMapKind = Literal["elu", "performer"]
CACHE_BACKENDS = ("eager", "sdpa", "tiled")  # backends that accept queries against a longer key cache
DROPOUT_BACKENDS = ("eager", "sdpa")  # backends that drop attention probabilities


@dataclass(frozen=True)
class SparsePattern:
    """Block-sparse layout (backend "block_sparse"): local blocks, every ``stride``-th block, leading global blocks."""

    block: int = 64
    local: int = 1
    stride: int | None = None
    global_blocks: int = 0


@dataclass
class VariantConfig:
    """Every architectural choice of one Transformer stack, validated at construction."""

    vocab_size: int = 256
    dim: int = 64
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int | None = None  # None = MHA; 1 = MQA; between = GQA
    ffn_hidden: int = 256
    max_seq_len: int = 512
    causal: bool = True
    positions: PositionKind = "rope"
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None
    norm: NormKind = "rmsnorm"
    norm_eps: float = 1e-5
    layout: BlockLayout = "pre"
    ffn: FfnChoice = "swiglu"
    bias: bool = False  # biases in every projection and FFN (GPT-2, BERT) or none (Llama)
    backend: str = "sdpa"
    window: int | None = None  # sliding (causal) or local (bidirectional) window, in positions
    sparse: SparsePattern = field(default_factory=SparsePattern)  # used by backend "block_sparse"
    feature_map: FeatureMapKind = "elu"  # used by backend "linear"
    performer_features: int = 64
    linformer_k: int = 64  # projected length, used by backend "linformer"
    n_experts: int = 0  # 0 = a dense FFN in every block
    top_k: int = 2
    capacity_factor: float | None = None  # None = dropless
    tie_embeddings: bool = True
    dropout: float = 0.0  # training only: embeddings, residual branches, attention probabilities (GPT-2, nanoGPT)

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.dim, self.n_layers, self.n_heads, self.ffn_hidden, self.max_seq_len) <= 0:
            raise ConfigError(f"sizes must be positive: {self}")
        kv = self.n_heads if self.n_kv_heads is None else self.n_kv_heads
        if kv <= 0 or self.n_heads % kv:
            raise ConfigError(f"n_heads ({self.n_heads}) must be a positive multiple of n_kv_heads ({kv})")
        if self.dim % self.n_heads:
            raise ConfigError(f"dim ({self.dim}) must be divisible by n_heads ({self.n_heads})")
        if self.positions not in PositionKind.__args__:
            raise ConfigError(f"unknown positions {self.positions!r}; use one of {PositionKind.__args__}")
        if self.positions == "rope" and self.head_dim % 2:
            raise ConfigError(f"RoPE needs an even head dimension, got {self.head_dim}")
        if self.rope_scaling is not None and self.positions != "rope":
            raise ConfigError("rope_scaling applies only with positions='rope'")
        if self.ffn not in FfnChoice.__args__:
            raise ConfigError(f"unknown ffn {self.ffn!r}; use one of {FfnChoice.__args__}")
        if self.backend not in available_backends():
            raise ConfigError(f"unknown attention backend {self.backend!r}; registered: {available_backends()}")
        check_window(self.window)
        if self.backend == "linformer" and self.causal:
            raise ConfigError("Linformer's projections mix positions across the sequence; use it with causal=False")
        if self.backend in ("linear", "linformer", "block_sparse") and (
            self.window is not None or self.positions == "alibi"
        ):
            raise ConfigError(f"backend {self.backend!r} takes neither a window nor ALiBi; use eager, sdpa or tiled")
        if self.n_experts < 0 or (self.n_experts and not 0 < self.top_k <= self.n_experts):
            raise ConfigError(f"MoE needs 1 ≤ top_k ≤ n_experts; got top_k={self.top_k}, n_experts={self.n_experts}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout is a probability in [0, 1) (1 would drop everything); got {self.dropout}")
        if self.dropout and self.backend not in DROPOUT_BACKENDS:
            raise ConfigError(
                f"dropout > 0 drops attention probabilities, which backend {self.backend!r} cannot do; "
                f"use one of {DROPOUT_BACKENDS} or dropout = 0"
            )

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.dim // self.n_heads

    @property
    def kv_heads(self) -> int:
        """Key/value heads (n_heads when n_kv_heads is None)."""
        return self.n_heads if self.n_kv_heads is None else self.n_kv_heads


class VariantAttention(Attention):
    """Attention whose backend options (ALiBi slopes, sparse pattern, feature map, projections) come from the config."""

    def __init__(self, c: VariantConfig) -> None:
        super().__init__(
            c.dim,
            c.n_heads,
            c.kv_heads,
            qkv_bias=c.bias,
            out_bias=c.bias,
            backend=c.backend,
            window=c.window,
            dropout=c.dropout,
        )
        self.options: dict[str, Any] = {}
        if c.positions == "alibi":
            self.register_buffer("alibi", alibi_slopes(c.n_heads).float(), persistent=False)
        if c.backend == "block_sparse":
            s = c.sparse
            self.options |= {"block": s.block, "local": s.local, "stride": s.stride, "global_blocks": s.global_blocks}
        if c.backend == "linear":
            self.features = (
                PerformerFeatures(c.head_dim, c.performer_features) if c.feature_map == "performer" else None
            )
        if c.backend == "linformer":
            self.projection = LinformerProjection(c.max_seq_len, c.linformer_k)

    def backend_options(self) -> dict[str, Any]:
        options = super().backend_options() | self.options
        if hasattr(self, "alibi"):
            options["alibi_slopes"] = self.alibi
        if self.backend == "linear":
            options["feature_map"] = self.features if self.features is not None else "elu"
        if self.backend == "linformer":
            options["projection"] = self.projection
        return options


def _feed_forward(c: VariantConfig) -> nn.Module:
    if c.n_experts:
        activation = "gelu" if c.ffn in ("gelu", "geglu") else "silu"
        return RoutedFFN(MoE(c.dim, c.ffn_hidden, c.n_experts, c.top_k, c.capacity_factor, activation=activation))
    if c.ffn in ("gelu", "relu2"):
        return make_ffn("mlp", c.dim, c.ffn_hidden, activation="gelu_tanh" if c.ffn == "gelu" else "relu2", bias=c.bias)
    return make_ffn(c.ffn, c.dim, c.ffn_hidden, bias=c.bias)


@dataclass(frozen=True)
class VariantAux:
    """MoE losses of the last call (zeros for a dense model): load balancing (Switch) and router z-loss (ST-MoE)."""

    load_balancing: Tensor
    router_z: Tensor


class VariantLM(nn.Module):
    """input_ids (B, T) -> logits (B, T, V) for any :class:`VariantConfig`; pass a cache to decode incrementally."""

    def __init__(self, config: VariantConfig) -> None:
        super().__init__()
        self.config = c = config
        self.embed = nn.Embedding(c.vocab_size, c.dim)
        self.pos_embed: nn.Module | None = None
        if c.positions == "learned":
            self.pos_embed = LearnedPositions(c.max_seq_len, c.dim)
        elif c.positions == "sinusoidal":
            self.pos_embed = SinusoidalPositions(c.dim, c.max_seq_len)
        self.rope = RotaryEmbedding(c.head_dim, c.rope_theta, c.rope_scaling) if c.positions == "rope" else None
        self.drop = make_dropout(c.dropout)  # on the embeddings (+ positions), as GPT-2's embd_pdrop
        self.layers = nn.ModuleList(
            make_block(
                c.layout,
                VariantAttention(c),
                _feed_forward(c),
                lambda: make_norm(c.norm, c.dim, c.norm_eps),
                dropout=c.dropout,
            )
            for _ in range(c.n_layers)
        )
        self.norm = make_norm(c.norm, c.dim, c.norm_eps) if c.layout != "post" else nn.Identity()
        self.lm_head = nn.Linear(c.dim, c.vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def forward(
        self,
        input_ids: Tensor,
        *,
        attention_mask: Tensor | None = None,
        cache: KVCache | None = None,
        document_ids: Tensor | None = None,
    ) -> Tensor:
        """Logits for every position; ``attention_mask`` (B, past+T) is 1 for real tokens, 0 for padding.

        ``document_ids`` (B, T) marks packed training rows: positions restart per document and attention stays
        inside each document (it takes neither a cache nor an attention mask).
        """
        c = self.config
        if document_ids is not None and (cache is not None or attention_mask is not None):
            raise ConfigError("document_ids is for packed training rows: pass neither a cache nor an attention_mask")
        if cache is not None and (not c.causal or c.backend not in CACHE_BACKENDS):
            raise ConfigError(f"a KV cache needs a causal model on one of {CACHE_BACKENDS}; got backend {c.backend!r}")
        past = cache.length if cache is not None else 0
        if past + input_ids.shape[1] > c.max_seq_len and c.positions in ("learned", "sinusoidal"):
            raise ConfigError(f"{past + input_ids.shape[1]} positions exceed the table of {c.max_seq_len}")
        if document_ids is not None:
            positions, mask = document_masks(document_ids)
        else:
            positions, mask = decoder_masks(input_ids, past, None, attention_mask)
        x = self.embed(input_ids)  # (B, T, dim)
        if self.pos_embed is not None:
            x = x + self.pos_embed(positions)
        x = self.drop(x)
        rope = self.rope(positions, x.dtype) if self.rope is not None else None
        for i, layer in enumerate(self.layers):
            x = layer(x, rope=rope, mask=mask, causal=c.causal, cache=cache, layer=i)
        if cache is not None:
            cache.advance(input_ids.shape[1])
        return self.lm_head(self.norm(x))

    @property
    def aux(self) -> VariantAux:
        """The MoE auxiliary losses of the last forward call, summed over layers' routed tokens."""
        logits = [layer.ffn.router_logits for layer in self.layers if isinstance(layer.ffn, RoutedFFN)]
        if not logits:
            zero = torch.zeros(())
            return VariantAux(zero, zero)
        if any(lg is None for lg in logits):
            raise ConfigError("the MoE losses need a forward call first: they read that call's router logits")
        stacked = torch.cat(logits)  # (L·N, E)
        return VariantAux(load_balancing_loss(stacked, self.config.top_k), router_z_loss(stacked))
