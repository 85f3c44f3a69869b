"""Published model configurations, each with its source, buildable on the meta device (no memory, no weights).

A preset is data: the family, the config fields and where they were published. ``preset_config(name)`` gives the
family's typed config (for the calculators); ``build_preset(name)`` gives the ``nn.Module`` on the meta device,
whose parameter count is the number papers quote.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from tfdojo.errors import UnknownModelError

# family -> (module, config class, model class)
FAMILIES: dict[str, tuple[str, str, str]] = {
    "llama": ("tfdojo.models.llama", "LlamaConfig", "Llama"),
    "gpt2": ("tfdojo.models.gpt2", "GPT2Config", "GPT2"),
    "bert": ("tfdojo.models.bert", "BertConfig", "Bert"),
    "mixtral": ("tfdojo.models.mixtral", "MixtralConfig", "Mixtral"),
    "t5": ("tfdojo.models.t5", "T5Config", "T5"),
    "vit": ("tfdojo.models.vit", "ViTConfig", "ViT"),
}


@dataclass(frozen=True)
class Preset:
    """A published configuration: family, config fields, source, and the parameter count the source states."""

    name: str
    family: str
    fields: dict[str, Any]
    source: str
    published_params: int | None = None  # exact count where the source (or its released checkpoint) gives one
    notes: tuple[str, ...] = field(default=())

    def config(self) -> Any:
        """The family's typed config for this preset."""
        module, config_cls, _ = FAMILIES[self.family]
        return getattr(importlib.import_module(module), config_cls)(**self.fields)

    def build(self, device: str | torch.device = "meta") -> nn.Module:
        """The model on ``device`` (meta by default: shapes only, nothing allocated)."""
        module, _, model_cls = FAMILIES[self.family]
        with torch.device(device):
            return getattr(importlib.import_module(module), model_cls)(self.config())


def _llama(dim: int, layers: int, heads: int, kv_heads: int, ffn: int, vocab: int, **extra: Any) -> dict[str, Any]:
    return {
        "dim": dim,
        "n_layers": layers,
        "n_heads": heads,
        "n_kv_heads": kv_heads,
        "ffn_hidden": ffn,
        "vocab_size": vocab,
        **extra,
    }


LLAMA2 = "Touvron et al. (2023), Llama 2, Table 1; meta-llama/Llama-2-*-hf config.json"
LLAMA3 = "Llama Team (2024), The Llama 3 Herd of Models, Table 3; meta-llama/Meta-Llama-3-*/config.json"
SMOLLM2 = "Allal et al. (2025), SmolLM2; HuggingFaceTB/SmolLM2-* config.json"
GPT2 = "Radford et al. (2019), GPT-2, Table 2; openai-community/gpt2* config.json"
GPT3 = "Brown et al. (2020), Language Models are Few-Shot Learners, Table 2.1 (GPT-3 175B)"
BERT = "Devlin et al. (2019), BERT, section 3 (BERT-base); google-bert/bert-base-uncased config.json"


def _gpt2(dim: int, layers: int, heads: int, positions: int = 1024) -> dict[str, Any]:
    return {"dim": dim, "n_layers": layers, "n_heads": heads, "n_positions": positions, "vocab_size": 50257}


_PRESETS = (
    Preset(
        "llama-2-7b",
        "llama",
        _llama(4096, 32, 32, 32, 11008, 32000, max_seq_len=4096, tie_embeddings=False),
        LLAMA2,
        6_738_415_616,
    ),
    Preset(
        "llama-2-13b",
        "llama",
        _llama(5120, 40, 40, 40, 13824, 32000, max_seq_len=4096, tie_embeddings=False),
        LLAMA2,
        13_015_864_320,
    ),
    Preset(
        "llama-2-70b",
        "llama",
        _llama(8192, 80, 64, 8, 28672, 32000, max_seq_len=4096, tie_embeddings=False),
        LLAMA2,
        68_976_648_192,
        ("grouped-query attention: 8 key/value heads shared by 64 query heads",),
    ),
    Preset(
        "llama-3-8b",
        "llama",
        _llama(4096, 32, 32, 8, 14336, 128256, rope_theta=500000.0, max_seq_len=8192, tie_embeddings=False),
        LLAMA3,
        8_030_261_248,
    ),
    Preset(
        "llama-3-70b",
        "llama",
        _llama(8192, 80, 64, 8, 28672, 128256, rope_theta=500000.0, max_seq_len=8192, tie_embeddings=False),
        LLAMA3,
        70_553_706_496,
    ),
    Preset(
        "smollm2-135m",
        "llama",
        _llama(576, 30, 9, 3, 1536, 49152, rope_theta=100000.0, max_seq_len=8192, tie_embeddings=True),
        SMOLLM2,
        134_515_008,
    ),
    Preset(
        "smollm2-360m",
        "llama",
        _llama(960, 32, 15, 5, 2560, 49152, rope_theta=100000.0, max_seq_len=8192, tie_embeddings=True),
        SMOLLM2,
        361_821_120,
    ),
    Preset(
        "smollm2-1.7b",
        "llama",
        _llama(2048, 24, 32, 32, 8192, 49152, rope_theta=130000.0, max_seq_len=8192, tie_embeddings=True),
        SMOLLM2,
        1_711_376_384,
    ),
)

_PRESETS += (
    Preset("gpt2", "gpt2", _gpt2(768, 12, 12), GPT2, 124_439_808, ("the paper's Table 2 says 117M",)),
    Preset("gpt2-medium", "gpt2", _gpt2(1024, 24, 16), GPT2, 354_823_168, ("the paper's Table 2 says 345M",)),
    Preset("gpt2-large", "gpt2", _gpt2(1280, 36, 20), GPT2, 774_030_080, ("the paper's Table 2 says 762M",)),
    Preset("gpt2-xl", "gpt2", _gpt2(1600, 48, 25), GPT2, 1_557_611_200, ("the paper's Table 2 says 1542M",)),
    Preset(
        "gpt-3-175b",
        "gpt2",
        _gpt2(12288, 96, 96, positions=2048),
        GPT3,
        None,
        (
            "the paper quotes 175.0B; its alternating locally banded sparse attention changes no parameter",
            "GPT-2-shaped: learned positions, pre-LayerNorm, 4·d GELU MLP, tied embeddings",
        ),
    ),
    Preset(
        "bert-base",
        "bert",
        {},
        BERT,
        109_482_240,
        ("uncased WordPiece vocabulary of 30,522; count includes the pooler",),
    ),
)

MISTRAL = "Jiang et al. (2023), Mistral 7B, Table 1; mistralai/Mistral-7B-v0.1 config.json"
MIXTRAL = "Jiang et al. (2024), Mixtral of Experts, Table 1; mistralai/Mixtral-8x7B-v0.1 config.json"
T5 = "Raffel et al. (2020), T5, section 3.7 (small, base); google-t5/t5-small and t5-base config.json"
VIT = "Dosovitskiy et al. (2021), An Image is Worth 16x16 Words, Table 1 (ViT-Base); google/vit-base-patch16-224"

_PRESETS += (
    Preset(
        "mistral-7b",
        "llama",
        _llama(4096, 32, 32, 8, 14336, 32000, max_seq_len=32768, tie_embeddings=False, sliding_window=4096),
        MISTRAL,
        7_241_732_096,
        ("sliding-window attention over the last 4,096 keys; a Llama otherwise",),
    ),
    Preset(
        "mixtral-8x7b",
        "mixtral",
        _llama(4096, 32, 32, 8, 14336, 32000, rope_theta=1e6, max_seq_len=32768, tie_embeddings=False)
        | {"n_experts": 8, "top_k": 2},
        MIXTRAL,
        46_702_792_704,
        ("8 SwiGLU experts per layer, 2 active per token: about 12.9B parameters used per token",),
    ),
    Preset("t5-small", "t5", {}, T5, 60_506_624, ("the paper rounds to 60M; tied embedding counted once",)),
    Preset(
        "t5-base",
        "t5",
        {"dim": 768, "ffn_hidden": 3072, "n_layers": 12, "n_heads": 12},
        T5,
        222_903_552,
        ("the paper rounds to 220M",),
    ),
    Preset(
        "vit-b-16",
        "vit",
        {},
        VIT,
        85_798_656,
        ("the paper rounds to 86M; no classifier head or pooler, 224 px (196 patches + [CLS])",),
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESETS}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` (case-insensitive); an unknown name raises with the closest known names."""
    key = name.lower()
    if key in PRESETS:
        return PRESETS[key]
    close = difflib.get_close_matches(key, list(PRESETS), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UnknownModelError(f"unknown model preset {name!r}; {hint}known presets: {', '.join(PRESETS)}")


def preset_config(name: str) -> Any:
    """The typed config of the preset called ``name``."""
    return get_preset(name).config()


def build_preset(name: str, device: str | torch.device = "meta") -> nn.Module:
    """The model of the preset called ``name`` on ``device`` (meta by default)."""
    return get_preset(name).build(device)
