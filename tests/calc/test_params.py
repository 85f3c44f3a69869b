"""param_count against models instantiated on the meta device, and against published counts."""

from __future__ import annotations

import pytest
import torch

from tfdojo.calc import param_count
from tfdojo.calc.describe import Arch, describe
from tfdojo.errors import ConfigError
from tfdojo.models.bert import Bert, BertConfig
from tfdojo.models.gpt2 import GPT2, GPT2Config
from tfdojo.models.llama import Llama, LlamaConfig
from tfdojo.models.mixtral import Mixtral, MixtralConfig
from tfdojo.models.presets import PRESETS, build_preset
from tfdojo.models.t5 import T5, T5Config
from tfdojo.models.vit import ViT, ViTConfig

LLAMAS = {
    "tied-gqa": LlamaConfig(vocab_size=301, dim=96, n_layers=3, n_heads=6, n_kv_heads=2, ffn_hidden=160),
    "untied-mha": LlamaConfig(vocab_size=128, dim=64, n_layers=2, n_heads=4, n_kv_heads=4, ffn_hidden=172,
                              tie_embeddings=False),
    "mqa-explicit-head-dim": LlamaConfig(vocab_size=50, dim=40, n_layers=1, n_heads=4, n_kv_heads=1, ffn_hidden=64,
                                         head_dim=12),
}  # fmt: skip


def _measured(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # parameters() yields a tied matrix once


FAMILY_CONFIGS = {
    **{f"llama-{k}": (Llama, c) for k, c in LLAMAS.items()},
    "gpt2-tied": (GPT2, GPT2Config(vocab_size=211, n_positions=40, dim=48, n_layers=2, n_heads=3)),
    "gpt2-untied-wide-ffn": (
        GPT2,
        GPT2Config(vocab_size=90, n_positions=16, dim=32, n_layers=3, n_heads=4, ffn_hidden=100, tie_embeddings=False),
    ),
    "bert-pooler": (Bert, BertConfig(vocab_size=120, max_positions=24, dim=48, n_layers=2, n_heads=4, ffn_hidden=96)),
    "bert-no-pooler": (
        Bert,
        BertConfig(vocab_size=77, max_positions=8, type_vocab_size=3, dim=32, n_layers=1, n_heads=2, ffn_hidden=40,
                   pooler=False),
    ),
    "qwen2-style-qkv-bias": (Llama, LlamaConfig(vocab_size=64, dim=32, n_layers=2, n_heads=4, n_kv_heads=2,
                                                ffn_hidden=48, qkv_bias=True)),
    "mixtral": (Mixtral, MixtralConfig(vocab_size=64, dim=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_hidden=48,
                                       n_experts=4, top_k=2, tie_embeddings=False)),
    "t5-gated-asymmetric": (T5, T5Config(vocab_size=100, dim=32, head_dim=8, ffn_hidden=40, n_layers=2,
                                         n_decoder_layers=3, n_heads=4, gated_ffn=True, activation="gelu_tanh",
                                         tie_embeddings=False)),
    "t5-relu-tied": (T5, T5Config(vocab_size=90, dim=24, head_dim=6, ffn_hidden=30, n_layers=1, n_heads=2)),
    "vit": (ViT, ViTConfig(image_size=32, patch_size=8, dim=48, n_layers=2, n_heads=4, ffn_hidden=96)),
    "vit-layer-scale-no-qkv-bias": (ViT, ViTConfig(image_size=28, patch_size=14, channels=1, dim=32, n_layers=1,
                                                   n_heads=2, ffn_hidden=40, qkv_bias=False, layer_scale=True)),
}  # fmt: skip


@pytest.mark.parametrize("name", FAMILY_CONFIGS)
def test_every_family_matches_its_meta_model(name: str) -> None:
    model_cls, config = FAMILY_CONFIGS[name]
    with torch.device("meta"):
        model = model_cls(config)
    result = param_count(config)
    assert result.value == _measured(model)
    assert sum(result.parts.values()) == result.value


def test_parts_match_the_modules_they_name() -> None:
    config = LLAMAS["untied-mha"]
    with torch.device("meta"):
        model = Llama(config)
    parts = param_count(config).parts
    assert parts["attention"] == sum(_measured(layer.attn) for layer in model.layers)
    assert parts["ffn"] == sum(_measured(layer.ffn) for layer in model.layers)
    assert parts["embeddings"] == _measured(model.embed)
    assert parts["head"] == _measured(model.lm_head)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_matches_its_meta_model_and_the_published_count(name: str) -> None:
    value = param_count(PRESETS[name].config()).value
    assert value == _measured(build_preset(name))
    if PRESETS[name].published_params is not None:
        assert value == PRESETS[name].published_params


def test_mixtral_total_and_active_match_the_release() -> None:
    # Mixtral 8x7B (Jiang et al., 2024; mistralai/Mixtral-8x7B-v0.1 config.json): 32 layers, d=4096, 32 heads,
    # 8 KV heads, F=14336, 8 experts with 2 active, vocab 32000, untied. The released checkpoint holds
    # 46,702,792,704 parameters; the paper quotes 13B (12.9B) active per token.
    mixtral = Arch(family="mixtral", n_layers=32, dim=4096, n_heads=32, n_kv_heads=8, head_dim=128,
                   ffn_kind="gated", ffn_hidden=14336, vocab_size=32000, tied_embeddings=False,
                   n_experts=8, experts_per_token=2)  # fmt: skip
    result = param_count(mixtral)
    assert result.value == 46_702_792_704
    active = next(s for s in result.steps if s.what == "active per token").value
    assert active == pytest.approx(12.9e9, rel=0.01)


def test_unknown_config_class_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot read a dict"):
        param_count({"dim": 64})


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"n_layers": 0}, "positive"),
        ({"n_kv_heads": 4}, "multiple"),
        ({"n_experts": 4, "experts_per_token": 0}, "experts_per_token"),
        ({"n_experts": 2, "experts_per_token": 3}, "experts_per_token"),
        ({"layout": "middle"}, "unknown layout"),
        ({"positions": "rotary"}, "unknown positions"),
        ({"n_experts": 4, "experts_per_token": 2, "capacity_factor": 0.0}, "capacity_factor"),
    ],
)
def test_bad_arch_is_a_config_error(change: dict, match: str) -> None:
    fields = {**vars(describe(LLAMAS["tied-gqa"])), **change}
    with pytest.raises(ConfigError, match=match):
        Arch(**fields)
