"""The Hugging Face folder loader: sharded checkpoints, dtype, and a named error for every kind of broken folder."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM

from tfdojo.errors import CheckpointError, ConfigError, MissingTensorError
from tfdojo.weights.hf import load_hf_folder, load_hf_model

VOCAB = 64


@pytest.fixture(scope="module")
def hf_llama() -> LlamaForCausalLM:
    """A tiny random Llama (the reference for the loaded copies)."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture
def folder(tmp_path, hf_llama):
    """A fresh single-file save of ``hf_llama`` that a test may damage."""
    hf_llama.save_pretrained(tmp_path)
    return tmp_path


def test_sharded_checkpoint_loads_like_the_single_file(tmp_path, hf_llama):
    hf_llama.save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file() and not (tmp_path / "model.safetensors").exists()
    _, ours = load_hf_model(tmp_path)
    ids = torch.arange(12).reshape(2, 6)
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf_llama(ids).logits, atol=1e-5, rtol=1e-4)


def test_missing_shard_is_a_checkpoint_error(tmp_path, hf_llama):
    hf_llama.save_pretrained(tmp_path, max_shard_size="20KB")
    shard = sorted(tmp_path.glob("model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(CheckpointError, match=shard.name):
        load_hf_model(tmp_path)


def test_dtype_is_applied(folder, hf_llama):
    _, ours = load_hf_model(folder, dtype=torch.bfloat16)
    assert {p.dtype for p in ours.parameters()} == {torch.bfloat16}
    expected = hf_llama.model.embed_tokens.weight.to(torch.bfloat16)
    torch.testing.assert_close(ours.embed.weight, expected, atol=0, rtol=0)


def test_truncated_file_is_a_checkpoint_error_naming_it(folder):
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*truncated or corrupt"):
        load_hf_model(folder)


def test_corrupt_header_is_a_checkpoint_error(folder):
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[8:16] = b"not json"  # the JSON header starts after the 8-byte length
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="header"):
        load_hf_model(folder)


def test_missing_tensor_is_named(folder):
    path = folder / "model.safetensors"
    tensors = load_file(path)
    del tensors["model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, path, metadata={"format": "pt"})
    with pytest.raises(MissingTensorError, match=r"model\.layers\.1\.mlp\.up_proj\.weight"):
        load_hf_model(folder)


def test_tensor_of_wrong_shape_is_named(folder):
    config = json.loads((folder / "config.json").read_text())
    config["intermediate_size"] = 40  # the stored MLP weights are 48 wide
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(MissingTensorError, match=r"layers\.0\.ffn\.(gate|up|down)\.weight shape"):
        load_hf_model(folder)


def test_unknown_model_type_lists_the_supported_ones(folder):
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "rwkv"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"'rwkv'.*supported model types: .*bert.*gpt2.*llama"):
        load_hf_folder(folder)


def test_folder_without_weights_or_config(tmp_path, folder):
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="neither model.safetensors nor"):
        load_hf_model(folder)
    with pytest.raises(CheckpointError, match="no config.json"):
        load_hf_model(tmp_path / "empty")
