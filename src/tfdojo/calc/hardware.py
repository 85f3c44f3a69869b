"""Accelerator presets: published peak dense FLOP/s, memory and bandwidth, each with its datasheet.

Peak numbers are the vendor's dense (no 2:4 sparsity) Tensor Core figures. Nobody reaches them: a well-tuned
training run gets 35–55 % of peak (the MFU), and memory-bound decoding is limited by HBM bandwidth instead.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from tfdojo.calc.result import Result, Step
from tfdojo.errors import ConfigError

GIB = 2**30

A100_SOURCE = "NVIDIA A100 Tensor Core GPU datasheet (2021), SXM column"
H100_SOURCE = "NVIDIA H100 Tensor Core GPU datasheet (2023)"
H200_SOURCE = "NVIDIA H200 Tensor Core GPU datasheet (2024), SXM column"


@dataclass(frozen=True)
class Accelerator:
    """One GPU model: memory, dense peak throughput per dtype, HBM and NVLink bandwidth, and where they come from."""

    name: str
    description: str
    memory_bytes: float
    peak_flops: dict[str, float]  # dense Tensor Core FLOP/s by dtype name
    hbm_bytes_per_s: float
    nvlink_bytes_per_s: float  # total bidirectional NVLink bandwidth per GPU
    source: str

    def __post_init__(self) -> None:
        if self.memory_bytes <= 0 or self.hbm_bytes_per_s <= 0 or self.nvlink_bytes_per_s <= 0:
            raise ConfigError(f"{self.name}: memory and bandwidths must be positive")
        if not self.peak_flops or min(self.peak_flops.values()) <= 0:
            raise ConfigError(f"{self.name}: give at least one positive peak FLOP/s")

    def flops(self, dtype: str = "bfloat16") -> float:
        """Dense peak FLOP/s for ``dtype``; a clear error lists the dtypes the datasheet gives."""
        if dtype not in self.peak_flops:
            raise ConfigError(
                f"{self.name} has no published peak for {dtype!r}; choose one of {sorted(self.peak_flops)}"
            )
        return self.peak_flops[dtype]


def _tflops(**by_dtype: float) -> dict[str, float]:
    return {dtype: tf * 1e12 for dtype, tf in by_dtype.items()}


HARDWARE: dict[str, Accelerator] = {
    a.name: a
    for a in (
        Accelerator(
            "a100-40gb",
            "A100 SXM 40 GB (HBM2)",
            40 * GIB,
            _tflops(float32=19.5, tf32=156, bfloat16=312, float16=312, int8=624),
            1555e9,
            600e9,
            A100_SOURCE,
        ),
        Accelerator(
            "a100-80gb",
            "A100 SXM 80 GB (HBM2e)",
            80 * GIB,
            _tflops(float32=19.5, tf32=156, bfloat16=312, float16=312, int8=624),
            2039e9,
            600e9,
            A100_SOURCE,
        ),
        Accelerator(
            "h100-80gb",
            "H100 SXM 80 GB (HBM3)",
            80 * GIB,
            _tflops(float32=67, tf32=494.5, bfloat16=989.5, float16=989.5, float8=1979, int8=1979),
            3.35e12,
            900e9,
            H100_SOURCE + ", SXM column",
        ),
        Accelerator(
            "h100-pcie",
            "H100 PCIe 80 GB (HBM2e)",
            80 * GIB,
            _tflops(float32=51, tf32=378, bfloat16=756.5, float16=756.5, float8=1513, int8=1513),
            2.0e12,
            600e9,
            H100_SOURCE + ", PCIe column (NVLink through a bridge)",
        ),
        Accelerator(
            "h200",
            "H200 SXM 141 GB (HBM3e)",
            141e9,
            _tflops(float32=67, tf32=494.5, bfloat16=989.5, float16=989.5, float8=1979, int8=1979),
            4.8e12,
            900e9,
            H200_SOURCE,
        ),
    )
}

ALIASES = {"a100": "a100-80gb", "h100": "h100-80gb", "h100-sxm": "h100-80gb", "h200-141gb": "h200"}


def get_accelerator(name: str) -> Accelerator:
    """The accelerator preset called ``name`` (case-insensitive; short aliases like ``h100`` allowed)."""
    key = ALIASES.get(name.lower(), name.lower())
    if key in HARDWARE:
        return HARDWARE[key]
    names = sorted([*HARDWARE, *ALIASES])
    close = difflib.get_close_matches(name.lower(), names, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise ConfigError(f"unknown accelerator {name!r}; {hint}known: {', '.join(sorted(HARDWARE))}")


def ridge_point(name: str, dtype: str = "bfloat16") -> Result:
    """Arithmetic intensity (FLOP/byte) above which a kernel is compute-bound on this GPU (Williams et al., 2009)."""
    acc = get_accelerator(name)
    peak = acc.flops(dtype)
    value = peak / acc.hbm_bytes_per_s
    return Result(
        name=f"ridge point of {acc.name} ({dtype})",
        value=value,
        unit="FLOP/byte",
        steps=(
            Step(
                "ridge point",
                "peak FLOP/s ÷ HBM bytes/s",
                f"{peak:.4g} ÷ {acc.hbm_bytes_per_s:.4g}",
                value,
                "FLOP/byte",
            ),
        ),
        assumptions=(f"dense peak from {acc.source}", "a kernel below this intensity is memory-bound"),
    )


def peak_ratio(numerator: str, denominator: str, quantity: str = "bfloat16") -> Result:
    """How many times one GPU's peak (a dtype's FLOP/s, or ``hbm`` bandwidth, or ``memory``) exceeds another's."""
    a, b = get_accelerator(numerator), get_accelerator(denominator)

    def pick(acc: Accelerator) -> float:
        if quantity == "hbm":
            return acc.hbm_bytes_per_s
        if quantity == "memory":
            return acc.memory_bytes
        return acc.flops(quantity)

    value = pick(a) / pick(b)
    return Result(
        name=f"{a.name} ÷ {b.name} ({quantity})",
        value=value,
        unit="×",
        steps=(Step(f"{quantity} ratio", f"{a.name} ÷ {b.name}", f"{pick(a):.4g} ÷ {pick(b):.4g}", value, "×"),),
        assumptions=(f"{a.name}: {a.source}", f"{b.name}: {b.source}"),
    )
