"""Reading safetensors checkpoints (one file, or shards listed in model.safetensors.index.json) with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from tfdojo.errors import CheckpointError

SINGLE_FILE = "model.safetensors"
SHARD_INDEX = "model.safetensors.index.json"


def read_safetensors(path: str | Path, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """Every tensor in one .safetensors file (floating ones cast to ``dtype`` when given)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"safetensors file {path} does not exist; check the path or copy the complete folder")
    tensors: dict[str, Tensor] = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 - safe_open is not a Mapping
                tensors[name] = f.get_tensor(name)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"cannot read safetensors file {path}: {e}. The file is truncated or corrupt; "
            "download or copy it again from the model's release."
        ) from e
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    return tensors


def shard_files(folder: Path) -> list[Path]:
    """The safetensors files that hold a Hugging Face folder's weights, single-file or sharded."""
    single, index = folder / SINGLE_FILE, folder / SHARD_INDEX
    if single.is_file():
        return [single]
    if not index.is_file():
        raise CheckpointError(
            f"{folder} has neither {SINGLE_FILE} nor {SHARD_INDEX}; save the model with "
            "save_pretrained(..., safe_serialization=True) or point to the folder that holds its weights"
        )
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{index} is not a valid shard index ({e}); restore it from the model's release") from e
    return [folder / name for name in sorted(set(weight_map.values()))]


def read_safetensors_folder(folder: str | Path, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """All tensors of a Hugging Face folder: model.safetensors, or every shard its index lists."""
    tensors: dict[str, Tensor] = {}
    for shard in shard_files(Path(folder)):
        tensors.update(read_safetensors(shard, dtype))
    return tensors
