"""Load a Hugging Face model folder (config.json + safetensors [+ tokenizer.json]) into a tfdojo model.

The folder's ``model_type`` picks a family from ``HF_FAMILIES``; to add one, write ``weights/hf_<family>.py``
exposing an ``HFFamily`` and add its line below.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from tfdojo.errors import CheckpointError, ConfigError, MissingTensorError
from tfdojo.tokenize.tokenizer import Tokenizer
from tfdojo.weights.hf_bert import BERT_FAMILY
from tfdojo.weights.hf_dinov2 import DINOV2_FAMILY
from tfdojo.weights.hf_family import HFCheckpoint, HFFamily
from tfdojo.weights.hf_gpt2 import GPT2_FAMILY
from tfdojo.weights.hf_llama import LLAMA_FAMILY
from tfdojo.weights.hf_mistral import MISTRAL_FAMILY
from tfdojo.weights.hf_mixtral import MIXTRAL_FAMILY
from tfdojo.weights.hf_qwen2 import QWEN2_FAMILY
from tfdojo.weights.hf_t5 import T5_FAMILY
from tfdojo.weights.hf_vit import VIT_FAMILY
from tfdojo.weights.safetensors_io import read_safetensors_folder, shard_files

HF_FAMILIES: dict[str, HFFamily] = {
    "gpt2": GPT2_FAMILY,
    "llama": LLAMA_FAMILY,
    "bert": BERT_FAMILY,
    "mistral": MISTRAL_FAMILY,
    "qwen2": QWEN2_FAMILY,
    "mixtral": MIXTRAL_FAMILY,
    "t5": T5_FAMILY,
    "vit": VIT_FAMILY,
    "dinov2": DINOV2_FAMILY,
}


def read_hf_config(folder: Path) -> dict[str, Any]:
    """config.json of a Hugging Face folder, as a dict."""
    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"{folder} has no config.json; point to a folder written by save_pretrained")
    return _read_config_json(path)


def _read_config_json(path: Path) -> dict[str, Any]:
    """A config.json file as a dict; CheckpointError when it is not a JSON object."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}); restore it from the model's release") from e
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} holds a {type(config).__name__}, not a JSON object; restore it")
    return config


def family_for(config: dict[str, Any]) -> HFFamily:
    """The registered family for config.json's ``model_type``."""
    model_type = config.get("model_type")
    try:
        return HF_FAMILIES[model_type]
    except (KeyError, TypeError):
        raise ConfigError(
            f"config.json has model_type {model_type!r}, which tfdojo cannot load; "
            f"supported model types: {', '.join(sorted(HF_FAMILIES))}"
        ) from None


def _tensor_names(folder: Path) -> dict[str, None]:
    """Names of the folder's tensors, read from the safetensors headers only (none when it holds no weights)."""
    try:
        shards = shard_files(folder)
    except CheckpointError:
        return {}
    names: dict[str, None] = {}
    for shard in shards:
        try:
            with safe_open(str(shard), framework="pt") as f:
                names |= dict.fromkeys(f.keys())
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"cannot read the safetensors header of {shard}: {e}; copy the file again") from e
    return names


def hf_typed_config(path: str | Path) -> Any:
    """Our typed config for an HF folder or its config.json, reading no weights (for the calculators).

    Choices that the tensors decide (an untied T5 head, a BERT pooler) are read from the tensor names in the
    safetensors headers next to config.json; with no weights there, from config.json alone.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    hf_config = read_hf_config(folder) if path.is_dir() else _read_config_json(path)
    return family_for(hf_config).config(hf_config, HFCheckpoint(folder, _tensor_names(folder)))  # type: ignore[arg-type]


def load_state_strict(model: nn.Module, state: dict[str, Tensor], folder: Path) -> None:
    """Copy ``state`` into every parameter and persistent buffer of ``model``, checking names and shapes."""
    targets = dict(model.named_parameters()) | {
        name: buf for name, buf in model.named_buffers() if name in model.state_dict()
    }
    missing = sorted(set(targets) - set(state))
    if missing:
        raise MissingTensorError(
            f"loading {folder}: no tensor was mapped to {', '.join(missing)}; the converter is incomplete"
        )
    extra = sorted(set(state) - set(targets))
    if extra:
        raise ConfigError(f"loading {folder}: the converter produced names the model lacks: {', '.join(extra)}")
    for name, target in targets.items():
        if state[name].shape != target.shape:
            raise MissingTensorError(
                f"checkpoint in {folder} gives {name} shape {tuple(state[name].shape)}, but config.json implies "
                f"{tuple(target.shape)}; the weights and config.json come from different models"
            )
    with torch.no_grad():
        for name, target in targets.items():
            target.copy_(state[name])


def _build(folder: Path, dtype: torch.dtype) -> tuple[HFFamily, Any, nn.Module]:
    """(family, our config, our model with the folder's weights, in eval mode and ``dtype``)."""
    hf_config = read_hf_config(folder)
    family = family_for(hf_config)
    checkpoint = HFCheckpoint(folder, read_safetensors_folder(folder))
    config = family.config(hf_config, checkpoint)
    model = family.model(config)
    load_state_strict(model, family.state_dict(checkpoint, config), folder)
    return family, config, model.to(dtype).eval()


def load_hf_model(folder: str | Path, *, dtype: torch.dtype = torch.float32) -> tuple[Any, nn.Module]:
    """(our config, our model) for a Hugging Face folder, without a tokenizer or wrapper."""
    _, config, model = _build(Path(folder), dtype)
    return config, model


def load_hf_folder(folder: str | Path, *, dtype: torch.dtype = torch.float32) -> Any:
    """A ``LanguageModel`` (decoder families) or ``Encoder`` (BERT) for a Hugging Face folder, weights frozen."""
    folder = Path(folder)
    family, config, model = _build(folder, dtype)
    model.requires_grad_(False)  # an inference object; train from load_hf_model's trainable copy instead
    tokenizer = Tokenizer.from_file(folder / "tokenizer.json") if (folder / "tokenizer.json").is_file() else None
    return family.wrap(config, model, tokenizer, folder)
