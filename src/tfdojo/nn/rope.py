"""Rotary position embedding (Su et al., 2021, "RoFormer"), with the context-extension scalings.

Each pair of channels (i, i + D/2) of a query or key at position p is rotated by the angle p·θ_i with
θ_i = base^(-2i/D), so that q_m · k_n depends on m - n only. We use the "rotate half" pairing of HF
transformers; llama.cpp's interleaved pairing is undone when its weights are loaded.

A model trained on L positions can be stretched to longer contexts by changing the θ_i (``RopeScaling``):

    linear   θ_i / s for every i                     (Chen et al., 2023, "position interpolation")
    dynamic  base' = base·(s·T/L - (s-1))^(D/(D-2))  once the sequence T exceeds L   ("dynamic NTK", bloc97/emozilla)
    yarn     low frequencies interpolated (θ/s), high ones kept, a linear ramp between, and cos/sin
             multiplied by 0.1·ln(s) + 1                                          (Peng et al., 2023, "YaRN")
    llama3   like yarn's split but by wavelength bands, no attention factor       (Meta, Llama 3.1, 2024)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError

RopeKind = Literal["linear", "dynamic", "yarn", "llama3"]


@dataclass
class RopeScaling:
    """How to stretch RoPE beyond the trained context; field names follow HF's ``rope_scaling``/``rope_parameters``.

    ``original_max_position_embeddings`` is the context the model was trained on (HF's ``max_position_embeddings``
    for "dynamic"). YaRN's cos/sin factor is ``attention_factor`` if given, else derived from ``factor`` (and from
    ``mscale``/``mscale_all_dim`` when both are set, as DeepSeek does).
    """

    kind: RopeKind
    factor: float
    original_max_position_embeddings: int | None = None
    low_freq_factor: float = 1.0  # llama3
    high_freq_factor: float = 4.0  # llama3
    beta_fast: float = 32.0  # yarn: rotations above which a channel is extrapolated (kept)
    beta_slow: float = 1.0  # yarn: rotations below which a channel is interpolated (θ/s)
    attention_factor: float | None = None  # yarn
    mscale: float | None = None  # yarn
    mscale_all_dim: float | None = None  # yarn
    truncate: bool = True  # yarn: round the ramp's ends to whole channels

    def __post_init__(self) -> None:
        if self.kind not in ("linear", "dynamic", "yarn", "llama3"):
            raise ConfigError(f"unknown RoPE scaling kind {self.kind!r}; use linear, dynamic, yarn or llama3")
        if self.factor <= 0:
            raise ConfigError(f"RoPE scaling factor must be positive, got {self.factor}")
        if self.kind != "linear" and (self.original_max_position_embeddings or 0) <= 0:
            raise ConfigError(f"RoPE scaling {self.kind!r} needs original_max_position_embeddings (trained context)")
        if self.kind == "llama3" and self.high_freq_factor <= self.low_freq_factor:
            raise ConfigError(
                f"llama3 RoPE needs high_freq_factor > low_freq_factor, got {self.high_freq_factor} "
                f"<= {self.low_freq_factor}"
            )

    @classmethod
    def from_hf(cls, params: Mapping[str, Any] | None, max_position_embeddings: int) -> RopeScaling | None:
        """Parse HF's ``rope_parameters`` / ``rope_scaling`` dict (None or "default" -> None, unscaled RoPE).

        ``max_position_embeddings`` is the config's own field: HF's dynamic NTK measures length against it, and
        it stands in for a missing ``original_max_position_embeddings``.
        """
        kind = (params or {}).get("rope_type") or (params or {}).get("type") or "default"
        if kind == "default":
            return None
        if kind not in ("linear", "dynamic", "yarn", "llama3"):
            raise ConfigError(f"RoPE type {kind!r} is not supported; tfdojo has linear, dynamic, yarn and llama3")
        original = max_position_embeddings
        if kind != "dynamic":
            original = params.get("original_max_position_embeddings") or max_position_embeddings
        if params.get("factor") is None:
            raise ConfigError(f"RoPE scaling {kind!r} in the config has no 'factor'; add the one it was trained with")
        known = ("low_freq_factor", "high_freq_factor", "beta_fast", "beta_slow", "attention_factor", "mscale",
                 "mscale_all_dim", "truncate")  # fmt: skip
        extra = {key: params[key] for key in known if params.get(key) is not None}
        return cls(kind, float(params["factor"]), original, **extra)


def inverse_frequencies(head_dim: int, base: float) -> Tensor:
    """θ_i = base^(-2i/D) for i in [0, D/2), in fp32."""
    return 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))


def _yarn_mscale(scale: float, mscale: float = 1.0) -> float:
    """YaRN's attention temperature √(1/t) = 0.1·mscale·ln(s) + 1 (Peng et al., 2023, eq. 22); 1 when s ≤ 1."""
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def _yarn(head_dim: int, base: float, s: RopeScaling) -> tuple[Tensor, float]:
    """YaRN "NTK-by-parts": channel i is kept if it turns > β_fast times over L, interpolated if < β_slow."""
    L = s.original_max_position_embeddings

    def channel_for(rotations: float) -> float:  # the i at which L·θ_i / 2π equals ``rotations``
        return head_dim * math.log(L / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = channel_for(s.beta_fast), channel_for(s.beta_slow)
    if s.truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_dim - 1)
    if low == high:
        high += 0.001  # a one-channel ramp would divide by zero
    ramp = ((torch.arange(head_dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)  # 0 keep, 1 interp
    inv = inverse_frequencies(head_dim, base)
    inv = inv * (1 - ramp) + (inv / s.factor) * ramp
    if s.attention_factor is not None:
        return inv, s.attention_factor
    if s.mscale and s.mscale_all_dim:
        return inv, _yarn_mscale(s.factor, s.mscale) / _yarn_mscale(s.factor, s.mscale_all_dim)
    return inv, _yarn_mscale(s.factor)


def _llama3(head_dim: int, base: float, s: RopeScaling) -> Tensor:
    """Wavelengths above L/low_freq_factor are divided by s, below L/high_freq_factor kept, smoothed between."""
    L = s.original_max_position_embeddings
    inv = inverse_frequencies(head_dim, base)
    wavelength = 2 * math.pi / inv
    smooth = (L / wavelength - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor)  # 0 at low, 1 at high
    blended = (1 - smooth) * inv / s.factor + smooth * inv
    out = torch.where(wavelength > L / s.low_freq_factor, inv / s.factor, inv)
    medium = (wavelength >= L / s.high_freq_factor) & (wavelength <= L / s.low_freq_factor)
    return torch.where(medium, blended, out)


def scaled_inverse_frequencies(head_dim: int, base: float, scaling: RopeScaling | None) -> tuple[Tensor, float]:
    """(θ_i, cos/sin multiplier) for a scaling that does not depend on the sequence ("dynamic" gives its base θ)."""
    if scaling is None or scaling.kind == "dynamic":
        return inverse_frequencies(head_dim, base), 1.0
    if scaling.kind == "linear":
        return inverse_frequencies(head_dim, base) / scaling.factor, 1.0
    if scaling.kind == "yarn":
        return _yarn(head_dim, base, scaling)
    return _llama3(head_dim, base, scaling), 1.0


def dynamic_ntk_inverse_frequencies(head_dim: int, base: float, scaling: RopeScaling, seq_len: Tensor) -> Tensor:
    """θ_i for a sequence of ``seq_len`` (0-D tensor) positions: base grows once seq_len passes the trained L."""
    L = scaling.original_max_position_embeddings
    seq_len = seq_len.float().clamp(min=L)  # at or below L this is the unscaled base
    new_base = base * ((scaling.factor * seq_len / L) - (scaling.factor - 1)) ** (head_dim / (head_dim - 2))
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device=seq_len.device).float() / head_dim
    return 1.0 / (new_base**exponents)


def rotate_half(x: Tensor) -> Tensor:
    """(x₁, x₂) -> (-x₂, x₁) on the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (B, H, T, D) by per-position angles; cos/sin are (B|1, T, D)."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B|1, 1, T, D): shared by every head
    return x * cos + rotate_half(x) * sin


class RotaryEmbedding(nn.Module):
    """Computes cos/sin tables for the given positions: positions (B|1, T) -> two (B|1, T, D) tensors.

    With ``RopeScaling(kind="dynamic")`` the frequencies follow the longest position in the call (max + 1), like
    HF; keys already in a cache keep the rotation they were stored with.
    """

    def __init__(self, head_dim: int, base: float = 10000.0, scaling: RopeScaling | None = None) -> None:
        super().__init__()
        if head_dim % 2:
            raise ConfigError(f"RoPE rotates channel pairs and needs an even head_dim, got {head_dim}")
        self.head_dim, self.base, self.scaling = head_dim, base, scaling
        inv_freq, self.attention_scaling = scaled_inverse_frequencies(head_dim, base, scaling)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def frequencies(self, positions: Tensor) -> Tensor:
        """The θ_i used for these positions (D/2,): fixed, or for "dynamic" recomputed from max(positions) + 1."""
        if self.scaling is None or self.scaling.kind != "dynamic":
            return self.inv_freq
        return dynamic_ntk_inverse_frequencies(self.head_dim, self.base, self.scaling, positions.max() + 1)

    def forward(self, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        work = torch.float64 if dtype == torch.float64 else torch.float32  # fp32 like HF unless fp64 is asked for
        angles = positions.to(work).unsqueeze(-1) * self.frequencies(positions).to(work)  # (B|1, T, D/2)
        angles = torch.cat((angles, angles), dim=-1)  # (B|1, T, D)
        cos, sin = angles.cos(), angles.sin()
        if self.attention_scaling != 1.0:
            cos, sin = cos * self.attention_scaling, sin * self.attention_scaling
        return cos.to(dtype), sin.to(dtype)
