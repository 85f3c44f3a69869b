"""A family-agnostic view of a model config: the numbers every calculator needs, and nothing family-specific.

Each config class gets one adapter (registered with :func:`register_adapter`) that reads its own fields; the
calculators then work on :class:`Arch` alone. Nothing is guessed from names: a config class without an adapter
is an error that says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from tfdojo.errors import ConfigError
from tfdojo.models.bert import BertConfig
from tfdojo.models.gpt2 import GPT2Config
from tfdojo.models.llama import LlamaConfig

FFNKind = Literal["gated", "mlp"]
NormKind = Literal["rms", "layer"]


@dataclass(frozen=True)
class Arch:
    """The shape of a Transformer as the calculators see it (one decoder or encoder stack plus embeddings/head).

    ``extra_norms`` counts norms outside the blocks (a final norm, or BERT's embedding norm); ``n_positions``
    is the size of a learned position table (0 with rotary positions); ``n_experts`` = 0 means a dense FFN.
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
    extra_norms: int = 1
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

    def __post_init__(self) -> None:
        sizes = {
            "n_layers": self.n_layers,
            "dim": self.dim,
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
            "head_dim": self.head_dim,
            "ffn_hidden": self.ffn_hidden,
            "vocab_size": self.vocab_size,
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
        if self.sliding_window is not None and self.sliding_window <= 0:
            raise ConfigError(f"sliding_window must be positive or None, got {self.sliding_window}")

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


def describe(config: Any) -> Arch:
    """The :class:`Arch` of a family config (an ``Arch`` is returned unchanged)."""
    if isinstance(config, Arch):
        return config
    for cls in type(config).__mro__:
        if cls in _ADAPTERS:
            return _ADAPTERS[cls](config)
    known = ", ".join(sorted(c.__name__ for c in _ADAPTERS))
    raise ConfigError(
        f"the calculators cannot read a {type(config).__name__}; pass one of {known}, or a tfdojo.calc.describe.Arch"
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
    )


@register_adapter(GPT2Config)
def _gpt2(c: GPT2Config) -> Arch:
    return Arch(
        family="gpt2",
        n_layers=c.n_layers,
        dim=c.dim,
        n_heads=c.n_heads,
        n_kv_heads=c.n_heads,
        head_dim=c.dim // c.n_heads,
        ffn_kind="mlp",
        ffn_hidden=c.ffn_hidden or 4 * c.dim,
        vocab_size=c.vocab_size,
        tied_embeddings=c.tie_embeddings,
        norm="layer",
        n_positions=c.n_positions,
        qkv_bias=True,
        out_bias=True,
        ffn_bias=True,
    )


@register_adapter(BertConfig)
def _bert(c: BertConfig) -> Arch:
    return Arch(
        family="bert",
        n_layers=c.n_layers,
        dim=c.dim,
        n_heads=c.n_heads,
        n_kv_heads=c.n_heads,
        head_dim=c.dim // c.n_heads,
        ffn_kind="mlp",
        ffn_hidden=c.ffn_hidden,
        vocab_size=c.vocab_size,
        tied_embeddings=False,
        norm="layer",
        extra_norms=1,  # the LayerNorm over the summed embeddings
        n_positions=c.max_positions,
        n_token_types=c.type_vocab_size,
        qkv_bias=True,
        out_bias=True,
        ffn_bias=True,
        has_lm_head=False,
        pooler=c.pooler,
    )
