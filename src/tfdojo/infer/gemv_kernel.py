"""Our own AVX2 one-row products (``gemv_avx2.c``) and whole decode step (``decode_step_avx2.c``) for batch-1
decode: built with the C compiler at first use.

torch's ``_weight_int4pack_mm_for_cpu`` unpacks int4 codes at ~3 GB/s on CPUs without bf16 arithmetic (AVX2
only), slower per byte than an fp32 product. ``gemv_avx2.c`` is ggml's Q4_1 dot product in plain C (its block
layout, nibbles widened in registers), with x rounded to int16 per block of 32 rather than ggml's int8, which
keeps the error at bf16's (``_mm256_madd_epi16``, fp32 scales). It is compiled the first time a quantized model
is built (never at import) into ``$XDG_CACHE_HOME/tfdojo/kernels/<hash>.so`` (``~/.cache`` by default; written
to a temporary name and renamed, keyed by the source, flags and compiler) and called through ctypes, or as the
operators ``tfdojo::q4_gemv`` / ``tfdojo::q8_gemv`` inside ``torch.compile`` (opaque to inductor, no graph
break). Where it cannot be built (not x86-64 with AVX2, FMA and F16C; no compiler; ``TFDOJO_NO_KERNELS=1``) one
notice line says so and torch's kernels carry on.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import Tensor

# the products and attention; the whole decode step built on them (``native_step``)
SOURCES = tuple(Path(__file__).with_name(name) for name in ("gemv_avx2.c", "decode_step_avx2.c", "decode_workers.c"))
HEADERS = (Path(__file__).with_name("bf16.h"),)  # included by the sources: part of the library's cache key
FLAGS = ("-O3", "-mavx2", "-mfma", "-mf16c", "-shared", "-fPIC", "-pthread")
LIBS = ("-lm",)
BLOCK = 32  # the kernels' block of input columns (the int4 group, the activations' rounding block)
DISABLE_ENV = "TFDOJO_NO_KERNELS"

_state: dict[str, ctypes.CDLL | None] = {}


def cpu_supported() -> bool:
    """x86-64 with AVX2, FMA and F16C (/proc/cpuinfo): what the kernels are compiled for."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return all(f in flags for f in ("avx2", "fma", "f16c"))


def _cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "tfdojo" / "kernels"


def _build() -> ctypes.CDLL:
    """Compile ``SOURCES`` into one library in the cache (once per sources, flags and compiler) and load it."""
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C compiler {compiler!r}")
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    source = b"".join(path.read_bytes() for path in SOURCES + HEADERS)
    key = hashlib.sha256(source + " ".join(FLAGS + LIBS).encode() + version.encode()).hexdigest()[:16]
    target = _cache_dir() / f"gemv_avx2-{key}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(fd)
        try:
            subprocess.run(
                [compiler, *FLAGS, "-o", tmp, *map(str, SOURCES), *LIBS], capture_output=True, text=True, check=True
            )
            os.replace(tmp, target)  # atomic: a concurrent build finds a whole file or none
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    lib = ctypes.CDLL(str(target))
    p, i = ctypes.c_void_p, ctypes.c_int
    lib.tfd_q4_gemv.argtypes = [p, p, p, i, i, i, p, p]
    lib.tfd_q8_gemv.argtypes = [p, p, i, i, i, p, p]
    lib.tfd_attend_one.argtypes = [p, p, p, ctypes.c_long, i, p, p, i, i, i, ctypes.c_float, p]
    lib.tfd_argmax_bf16.argtypes, lib.tfd_argmax_bf16.restype = [p, ctypes.c_long], ctypes.c_long
    lib.tfd_decode_step.argtypes = [p, ctypes.c_long, i, p, p, ctypes.c_long, ctypes.c_long, i, p]
    return lib


def library() -> ctypes.CDLL | None:
    """The compiled kernels, built on the first call; None (after one notice line) where they cannot be."""
    if "lib" not in _state:
        reason = None
        if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
            reason = f"{DISABLE_ENV} is set"
        elif not cpu_supported():
            reason = "this CPU is not x86-64 with AVX2, FMA and F16C"
        lib = None
        if reason is None:
            try:
                lib = _build()
            except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
                detail = getattr(e, "stderr", "") or str(e)
                reason = f"building gemv_avx2.c failed: {detail.strip().splitlines()[0] if detail.strip() else e}"
        if reason is not None:
            print(f"tfdojo: AVX2 decode kernels off ({reason}); using torch's int kernels", file=sys.stderr)
        _state["lib"] = lib
    return _state["lib"]


def pack_int4(codes: Tensor) -> Tensor:
    """Codes (out, in) uint8 0..15 -> (out, in / 2) bytes, per group of 32: column j low nibble, j + 16 high."""
    out, cols = codes.shape
    q = codes.to(torch.uint8).view(out, cols // BLOCK, 2, BLOCK // 2)  # (out, groups, halves, 16)
    return (q[:, :, 0] | (q[:, :, 1] << 4)).reshape(out, cols // 2).contiguous()


def _check_layer(weights: Tensor, layer: int, matrix_dims: int = 2) -> None:
    """``layer`` must pick a matrix of stacked weights (L, ...) — the kernels offset their pointers by it."""
    if layer and (weights.dim() != matrix_dims + 1 or not 0 <= layer < weights.shape[0]):
        raise IndexError(f"layer {layer} of weights shaped {tuple(weights.shape)}: a layer index needs a stack")


def q4_gemv(x: Tensor, packed: Tensor, scale: Tensor, low: Tensor, layer: int = 0) -> Tensor:
    """y = x · Wᵀ for one row x (in,) bf16; W int4 (``pack_int4``, fp16 scale and low per row and group) -> (out,).

    The weights may be stacked (L, out, ...) with ``layer`` choosing one (``tfdojo.infer.layer_stack``).
    """
    lib = library()
    assert lib is not None, "q4_gemv called without the compiled kernels"
    _check_layer(packed, layer)
    x = x.contiguous()
    y = torch.empty(packed.shape[-2], dtype=torch.bfloat16)
    status = lib.tfd_q4_gemv(packed.data_ptr(), scale.data_ptr(), low.data_ptr(), layer, packed.shape[-2],
                             x.shape[-1], x.data_ptr(), y.data_ptr())  # fmt: skip
    if status:
        raise MemoryError(f"q4_gemv could not allocate its activation buffer ({x.shape[-1]} columns)")
    return y


def q8_gemv(x: Tensor, codes: Tensor, scale: Tensor, layer: int = 0) -> Tensor:
    """y = x · Wᵀ for one row x (in,) bf16; W int8 (out, in) with an fp32 scale per row -> (out,) bf16; stacked
    (L, out, in) weights with ``layer`` as ``q4_gemv``."""
    lib = library()
    assert lib is not None, "q8_gemv called without the compiled kernels"
    _check_layer(codes, layer)
    x = x.contiguous()
    y = torch.empty(codes.shape[-2], dtype=torch.bfloat16)
    status = lib.tfd_q8_gemv(codes.data_ptr(), scale.data_ptr(), layer, codes.shape[-2], codes.shape[-1],
                             x.data_ptr(), y.data_ptr())  # fmt: skip
    if status:
        raise MemoryError(f"q8_gemv could not allocate its activation buffer ({codes.shape[-1]} columns)")
    return y


def attend_one(q: Tensor, k_cache: Tensor, v_cache: Tensor, k_new: Tensor, v_new: Tensor, layer: int, n: int) -> Tensor:
    """One query's attention, fp32 inside, bf16 in and out: q (1, Hq, 1, D) over layer ``layer``'s first n cached
    keys and values (caches (L, 1, Hkv, S, D)) and the new ones (1, Hkv, 1, D) -> (1, Hq, 1, D); scale 1/√D, GQA
    query head j reading kv head j // (Hq / Hkv). The cache is read in place: nothing is converted or copied."""
    lib = library()
    assert lib is not None, "attend_one called without the compiled kernels"
    _, hq, _, d = q.shape
    if not q.dtype == k_cache.dtype == v_cache.dtype == k_new.dtype == v_new.dtype == torch.bfloat16:
        raise TypeError(f"attend_one reads bf16 queries and caches, got {q.dtype} and a {k_cache.dtype} cache")
    q, k_new, v_new = q.contiguous(), k_new.contiguous(), v_new.contiguous()
    out = torch.empty_like(q)
    _check_layer(k_cache, layer, matrix_dims=4)
    k_at, v_at = (c.data_ptr() + layer * c.stride(0) * c.element_size() for c in (k_cache, v_cache))
    status = lib.tfd_attend_one(q.data_ptr(), k_at, v_at, k_cache.stride(2), n, k_new.data_ptr(), v_new.data_ptr(),
                                hq, k_cache.shape[2], d, d**-0.5, out.data_ptr())  # fmt: skip
    if status:
        raise MemoryError(f"attend_one could not allocate its scratch for {n + 1} positions")
    return out


def argmax_row(logits: Tensor) -> int | None:
    """The index of the largest of one contiguous bf16 row (V,) by our one-threaded C loop (torch.argmax's rules:
    first on a tie, a NaN wins), or None where our kernels are not loaded (never builds them: only a quantized
    model, which decodes natively, needs this)."""
    lib = _state.get("lib")
    if lib is None:
        return None
    return int(lib.tfd_argmax_bf16(logits.data_ptr(), logits.numel()))


# The same functions as operators, for torch.compile (an opaque call in the graph). A plain Library.impl costs
# ~4 µs a call; torch.library.custom_op's wrapper cost 15-35 µs, as much as a small product itself.
_ops = torch.library.Library("tfdojo", "DEF")
_ops.define("q4_gemv(Tensor x, Tensor packed, Tensor scale, Tensor low, int layer=0) -> Tensor")
_ops.define("q8_gemv(Tensor x, Tensor codes, Tensor scale, int layer=0) -> Tensor")
_ops.define(
    "attend_one(Tensor q, Tensor k_cache, Tensor v_cache, Tensor k_new, Tensor v_new, int layer, SymInt n) -> Tensor"
)
_ops.impl("q4_gemv", q4_gemv, "CPU")
_ops.impl("attend_one", attend_one, "CPU")
_ops.impl("q8_gemv", q8_gemv, "CPU")


@torch.library.register_fake("tfdojo::q4_gemv")
def _(x: Tensor, packed: Tensor, scale: Tensor, low: Tensor, layer: int = 0) -> Tensor:
    return x.new_empty(packed.shape[-2])


@torch.library.register_fake("tfdojo::q8_gemv")
def _(x: Tensor, codes: Tensor, scale: Tensor, layer: int = 0) -> Tensor:
    return x.new_empty(codes.shape[-2])


@torch.library.register_fake("tfdojo::attend_one")
def _(q: Tensor, k_cache: Tensor, v_cache: Tensor, k_new: Tensor, v_new: Tensor, layer: int, n: int) -> Tensor:
    return torch.empty_like(q)
