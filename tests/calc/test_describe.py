"""One dispatch for every calculator: a preset name, a Preset, a typed config, an HF folder or its config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from typer.testing import CliRunner

from tfdojo.calc import flops_per_token, kv_cache_bytes, param_count, train_memory
from tfdojo.calc.cli import app
from tfdojo.calc.planner import propose_plan
from tfdojo.calc.roofline import roofline
from tfdojo.errors import UnknownModelError
from tfdojo.models.presets import PRESETS

CALCULATORS = {
    "param_count": param_count,
    "kv_cache_bytes": lambda m: kv_cache_bytes(m, 8192, 2, "bfloat16"),
    "flops_per_token": lambda m: flops_per_token(m, 2048, "train"),
    "train_memory": lambda m: train_memory(m, 1024, 1),
    "roofline": lambda m: roofline(m, 4096, 1, bandwidth=3.35e12, peak_flops=989.5e12),
    "plan": lambda m: propose_plan(m, 64, "h100-80gb").to_result(),
}


def _hf_llama_2_70b() -> transformers.LlamaConfig:
    """Llama 2 70B's published config.json fields (meta-llama/Llama-2-70b-hf)."""
    return transformers.LlamaConfig(
        vocab_size=32000, hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
        num_key_value_heads=8, max_position_embeddings=4096, rms_norm_eps=1e-5, tie_word_embeddings=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("llama-2-70b-hf")
    _hf_llama_2_70b().save_pretrained(folder)  # config.json only: the calculators read no weights
    return folder


@pytest.mark.parametrize("calculator", list(CALCULATORS))
def test_every_form_of_a_model_gives_the_same_answer(calculator: str, hf_folder: Path) -> None:
    fn = CALCULATORS[calculator]
    preset = PRESETS["llama-2-70b"]
    forms = {
        "name": "llama-2-70b",
        "upper-case name": "LLaMA-2-70B",
        "Preset": preset,
        "typed config": preset.config(),
        "HF folder": hf_folder,
        "HF folder as str": str(hf_folder),
        "config.json": hf_folder / "config.json",
    }
    values = {form: fn(model).value for form, model in forms.items()}
    assert len(set(values.values())) == 1, values


def test_the_hf_folder_count_is_hf_models_own(hf_folder: Path) -> None:
    with torch.device("meta"):
        hf_model = transformers.LlamaForCausalLM(_hf_llama_2_70b())
    assert param_count(hf_folder).value == sum(p.numel() for p in hf_model.parameters()) == 68_976_648_192


def test_tensor_names_decide_what_config_json_cannot(tmp_path: Path) -> None:
    """A BERT folder whose weights have no pooler is counted without one (the names come from the header)."""
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=24, max_position_embeddings=12)  # fmt: skip
    transformers.BertModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    hf_model = transformers.BertModel(config, add_pooling_layer=False)
    assert param_count(tmp_path).value == sum(p.numel() for p in hf_model.parameters())


def test_unknown_names_and_missing_paths_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="did you mean llama-2-70b"):
        param_count("llama-2-70")
    with pytest.raises(UnknownModelError, match="neither a preset nor an existing"):
        param_count(str(tmp_path / "nowhere" / "config.json"))


def test_cli_reads_an_hf_folder(hf_folder: Path) -> None:
    result = CliRunner().invoke(app, ["kv", "--model", str(hf_folder), "--seq-len", "8192", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["value"] == 2 * 80 * 8 * 128 * 2 * 8192  # K and V · layers · Hkv · D · bf16 · S
