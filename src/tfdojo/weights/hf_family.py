"""What a model family plugs into the Hugging Face folder loader: config translation, tensor renaming, wrapping.

A family is one ``HFFamily`` value in its own module (``weights/hf_<family>.py``) and one line in the registry
of ``weights/hf.py``. Its ``state_dict`` reads HF tensors through ``HFCheckpoint.take`` and returns them under
our parameter names; the loader then checks every name and shape against the model before copying.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from tfdojo.errors import ConfigError, MissingTensorError


class HFCheckpoint:
    """The tensors of a Hugging Face folder, handed out by their HF names with a useful error when one is absent."""

    def __init__(self, folder: Path, tensors: Mapping[str, Tensor]) -> None:
        self.folder, self.tensors = folder, tensors

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def base_prefix(self, probe: str, prefix: str) -> str:
        """``prefix`` if HF saved a task model (e.g. "transformer.wte.weight"), "" for a bare base model."""
        return prefix if prefix + probe in self.tensors else ""

    def take(self, name: str) -> Tensor:
        """The tensor stored under ``name``; MissingTensorError (naming it and the folder) when there is none."""
        try:
            return self.tensors[name]
        except KeyError:
            raise MissingTensorError(
                f"checkpoint in {self.folder} has no tensor {name!r} although its config.json needs it; "
                "the weights and config.json come from different models, or the file is incomplete"
            ) from None


_REQUIRED = object()


def hf_field(hf: Mapping[str, Any], key: str, default: Any = _REQUIRED) -> Any:
    """A config.json field, or ``default``; ConfigError when the field is absent and no default is given."""
    if hf.get(key) is not None:
        return hf[key]
    if default is _REQUIRED:
        raise ConfigError(f"config.json lacks {key!r}, which this model family needs; restore the model's config.json")
    return default


def refuse_unsupported(hf: Mapping[str, Any], unsupported: Mapping[str, Any]) -> None:
    """ConfigError if any config.json field in ``unsupported`` is set to a value other than the one we implement."""
    for key, supported in unsupported.items():
        if key in hf and hf[key] not in (supported, None):
            raise ConfigError(
                f"config.json sets {key}={hf[key]!r}; tfdojo implements only {key}={supported!r} for "
                f"model_type {hf.get('model_type')!r}. Use a checkpoint without this option."
            )


Wrapper = Callable[[Any, nn.Module, Any, Path], Any]


def decoder_wrapper(config: Any, model: nn.Module, tokenizer: Any, folder: Path) -> Any:
    """A ``LanguageModel`` (config, model, tokenizer) for a decoder-only family."""
    from tfdojo.infer.language_model import LanguageModel  # infer builds on weights' output, so import late

    return LanguageModel(config, model, tokenizer)


def encoder_wrapper(config: Any, model: nn.Module, tokenizer: Any, folder: Path) -> Any:
    """An ``Encoder``; its input length is sentence-transformers' ``max_seq_length`` when the folder sets one."""
    from tfdojo.infer.encoder import Encoder

    sentence_config = folder / "sentence_bert_config.json"
    max_length = None
    if sentence_config.is_file():
        try:
            max_length = json.loads(sentence_config.read_text(encoding="utf-8")).get("max_seq_length")
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{sentence_config} is not valid JSON ({e}); restore it or delete it") from e
    return Encoder(config, model, tokenizer, max_length=max_length)


@dataclass(frozen=True)
class HFFamily:
    """How one HF ``model_type`` becomes a tfdojo model.

    config:     config.json dict (+ the checkpoint, for choices its tensors decide) -> our typed config
    model:      our config -> an nn.Module with freshly initialised parameters
    state_dict: (checkpoint, our config) -> {our parameter name: tensor}, every parameter the model has
    wrap:       (config, model, tokenizer, folder) -> the object ``load_hf_folder`` returns
    """

    config: Callable[[Mapping[str, Any], HFCheckpoint], Any]
    model: Callable[[Any], nn.Module]
    state_dict: Callable[[HFCheckpoint, Any], dict[str, Tensor]]
    wrap: Wrapper = decoder_wrapper
