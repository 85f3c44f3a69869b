"""CTranslate2 Whisper (``WhisperSpec``) variables -> our :class:`tfdojo.models.whisper.Whisper`.

The converter fuses projections; they are split back here:

    {encoder,decoder}/layer_i/self_attention/linear_0  (3d, d) = [W_q; W_k; W_v]    linear_1 = W_o
    decoder/layer_i/attention/linear_0  (d, d) = W_q (cross)    linear_1 (2d, d) = [W_k; W_v]    linear_2 = W_o
    …/ffn/linear_0, linear_1 = MLP fc, proj                     …/layer_norm/gamma, beta = LayerNorm weight, bias

The sizes come from the tensors' shapes and the rank-0 settings (``encoder/num_heads``); settings this model does
not implement (another activation, post-norm, ALiBi, scaled embeddings) are refused rather than ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch import Tensor, nn

from tfdojo.errors import CheckpointError, MissingTensorError, TokenizerError, UnsupportedModelError
from tfdojo.models.whisper import Whisper, WhisperConfig
from tfdojo.weights.ctranslate2 import Ct2Model, read_ct2

GELU = 3  # CTranslate2's ActivationType::GELU (the exact erf form)
EXPECTED_SETTINGS = {
    "decoder/activation": GELU,
    "decoder/pre_norm": 1,
    "decoder/alibi": 0,
    "decoder/scale_embeddings": 0,
}


def _count_layers(ct2: Ct2Model, stack: str) -> int:
    pattern = re.compile(rf"^{stack}/layer_(\d+)/")
    found = {int(m.group(1)) for name in ct2.variables if (m := pattern.match(name))}
    return max(found) + 1 if found else 0


def whisper_config(ct2: Ct2Model) -> WhisperConfig:
    """The WhisperConfig that ``ct2``'s shapes and settings describe; other specs raise UnsupportedModelError."""
    if ct2.spec != "WhisperSpec":
        raise UnsupportedModelError(f"{ct2.path} holds a CTranslate2 {ct2.spec}; tfdojo loads only WhisperSpec here")
    quantized = [n for n, t in ct2.variables.items() if n.endswith("/weight") and not t.dtype.is_floating_point]
    if quantized:
        raise UnsupportedModelError(
            f"{ct2.path}: {quantized[0]} is {ct2.variables[quantized[0]].dtype} (a quantized model); tfdojo reads "
            f"float16/bfloat16/float32 CTranslate2 models — convert with --quantization float16"
        )
    for name, want in EXPECTED_SETTINGS.items():
        if name in ct2.variables and ct2.scalar(name) != want:
            raise UnsupportedModelError(f"{ct2.path}: {name} = {ct2.scalar(name)}, tfdojo's Whisper implements {want}")
    vocab, dim = ct2.tensor("decoder/embeddings/weight").shape
    return WhisperConfig(
        vocab_size=vocab,
        n_mels=ct2.tensor("encoder/conv1/weight").shape[1],
        dim=dim,
        n_heads=ct2.scalar("encoder/num_heads"),
        n_encoder_layers=_count_layers(ct2, "encoder"),
        n_decoder_layers=_count_layers(ct2, "decoder"),
        ffn_hidden=ct2.tensor("encoder/layer_0/ffn/linear_0/weight").shape[0],
        n_audio_ctx=ct2.tensor("encoder/position_encodings/encodings").shape[0],
        n_text_ctx=ct2.tensor("decoder/position_encodings/encodings").shape[0],
    )


class _Copier:
    """Copies CTranslate2 variables into parameters, checking shapes, converting to ``dtype``."""

    def __init__(self, ct2: Ct2Model, dtype: torch.dtype) -> None:
        self.ct2, self.dtype = ct2, dtype

    def get(self, name: str) -> Tensor:
        return self.ct2.tensor(name)

    def put(self, target: Tensor, source: Tensor, name: str) -> None:
        if tuple(target.shape) != tuple(source.shape):
            raise MissingTensorError(
                f"{self.ct2.path}: {name} has shape {tuple(source.shape)}, the model needs {tuple(target.shape)}"
            )
        with torch.no_grad():
            target.copy_(source.to(self.dtype))

    def linear(self, layer: nn.Linear, name: str, rows: slice | None = None) -> None:
        weight, bias = self.get(f"{name}/weight"), self.get(f"{name}/bias")
        if rows is not None:
            weight, bias = weight[rows], bias[rows]
        self.put(layer.weight, weight, f"{name}/weight")
        self.put(layer.bias, bias, f"{name}/bias")

    def fused(self, layers: list[nn.Linear], name: str) -> None:
        """Split a fused projection (k·d, d) into ``layers`` in order: row block i goes to layers[i]."""
        d = layers[0].out_features
        for i, layer in enumerate(layers):
            self.linear(layer, name, slice(i * d, (i + 1) * d))

    def norm(self, norm: nn.Module, name: str) -> None:
        self.put(norm.weight, self.get(f"{name}/gamma"), f"{name}/gamma")
        self.put(norm.bias, self.get(f"{name}/beta"), f"{name}/beta")

    def mlp(self, mlp: nn.Module, name: str) -> None:
        self.linear(mlp.fc, f"{name}/linear_0")
        self.linear(mlp.proj, f"{name}/linear_1")


def whisper_from_ct2(ct2: Ct2Model, *, dtype: torch.dtype = torch.float32) -> tuple[WhisperConfig, Whisper]:
    """Build our Whisper from a parsed model.bin; eval mode, frozen weights, in ``dtype``."""
    config = whisper_config(ct2)
    with torch.device("meta"):
        model = Whisper(config)
    model = model.to_empty(device="cpu").to(dtype)
    cp = _Copier(ct2, dtype)
    enc, dec = model.encoder, model.decoder
    cp.linear(enc.conv1, "encoder/conv1")
    cp.linear(enc.conv2, "encoder/conv2")
    cp.put(enc.positions, cp.get("encoder/position_encodings/encodings"), "encoder/position_encodings/encodings")
    for i, block in enumerate(enc.layers):
        p = f"encoder/layer_{i}"
        a = block.attn
        cp.norm(block.norm1, f"{p}/self_attention/layer_norm")
        cp.fused([a.q_proj, a.k_proj, a.v_proj], f"{p}/self_attention/linear_0")
        cp.linear(a.o_proj, f"{p}/self_attention/linear_1")
        cp.norm(block.norm2, f"{p}/ffn/layer_norm")
        cp.mlp(block.ffn, f"{p}/ffn")
    cp.norm(enc.norm, "encoder/layer_norm")
    cp.put(dec.embed.weight, cp.get("decoder/embeddings/weight"), "decoder/embeddings/weight")
    cp.put(dec.positions, cp.get("decoder/position_encodings/encodings"), "decoder/position_encodings/encodings")
    for i, layer in enumerate(dec.layers):
        p = f"decoder/layer_{i}"
        s, x = layer.self_attn, layer.cross_attn
        cp.norm(layer.norm1, f"{p}/self_attention/layer_norm")
        cp.fused([s.q_proj, s.k_proj, s.v_proj], f"{p}/self_attention/linear_0")
        cp.linear(s.o_proj, f"{p}/self_attention/linear_1")
        cp.norm(layer.norm2, f"{p}/attention/layer_norm")
        cp.linear(x.q_proj, f"{p}/attention/linear_0")
        cp.fused([x.k_proj, x.v_proj], f"{p}/attention/linear_1")
        cp.linear(x.o_proj, f"{p}/attention/linear_2")
        cp.norm(layer.norm3, f"{p}/ffn/layer_norm")
        cp.mlp(layer.mlp, f"{p}/ffn")
    cp.norm(dec.norm, "decoder/layer_norm")
    return config, model.eval().requires_grad_(False)


@dataclass
class WhisperFolder:
    """A CTranslate2 Whisper folder, read: the model, its tokenizer and the decoding settings in config.json."""

    config: WhisperConfig
    model: Whisper
    tokenizer: Tokenizer
    suppress_ids: list[int]  # never generated (non-speech symbols)
    suppress_begin_ids: list[int]  # not generated first (blank, end of text)


def _settings(path: Path) -> dict:
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {path}: {e}; a CTranslate2 Whisper folder has a JSON config.json") from None
    for key in ("suppress_ids", "suppress_ids_begin"):
        ids = settings[key] = settings.get(key) or []  # null when the converter had no generation config
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise CheckpointError(f"{path}: {key!r} should be a list of token ids, got {ids!r}")
    return settings


def load_whisper_folder(folder: str | Path, *, dtype: torch.dtype = torch.float32) -> WhisperFolder:
    """Read model.bin (our CTranslate2 reader), config.json and tokenizer.json from ``folder``."""
    folder = Path(folder)
    settings = _settings(folder / "config.json")
    try:
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as e:  # tokenizers raises plain Exceptions for missing or malformed files
        raise TokenizerError(f"cannot read {folder / 'tokenizer.json'}: {e}") from None
    config, model = whisper_from_ct2(read_ct2(folder / "model.bin"), dtype=dtype)
    if tokenizer.get_vocab_size() > config.vocab_size:
        raise CheckpointError(
            f"{folder}: tokenizer.json has {tokenizer.get_vocab_size()} tokens, the model only {config.vocab_size}"
        )
    return WhisperFolder(config, model, tokenizer, settings["suppress_ids"], settings["suppress_ids_begin"])
