"""The grading cross-encoder: does an answer sentence state a key point, contradict it, or neither?

A bi-encoder embeds the point and the sentence apart, so "the KV cache stores the queries" lands next to "the cache
stores the keys and values". A cross-encoder reads them together, every token of one attending to every token of the
other (Nogueira & Cho, 2019, "Passage Re-ranking with BERT"; the NLI set-up of Devlin et al., 2019):

    [CLS] key point [SEP] answer sentence [SEP]      token types 0 ... 0 | 1 ... 1
      -> MiniLM's embeddings and lower ``frozen_layers`` layers, as shipped (shared with the grader's embedder)
      -> its top layers with LoRA updates (``lora.py``) on q, k, v, o and the FFN, and their LayerNorms retrained
      -> [h_CLS ; mean of h over real tokens] -> Linear -> tanh -> Linear -> logits (states, contradicts, neither)

Only the updates are shipped (``cross_encoder.safetensors``, fp16, under 1 MB), with a manifest
(``cross_encoder.json``: the configuration, the file's SHA-256, what it was trained on). They are trained by
``python -m tfdojo.practice.grading.train_cross`` on the pairs of ``pairs.py``; no held-out question is trained on.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor, nn

from tfdojo.errors import CheckpointError, ConfigError, MissingTensorError
from tfdojo.infer.encoder import Encoder, mean_pool
from tfdojo.nn.masks import key_padding_mask
from tfdojo.practice.grading.lora import LoRALinear
from tfdojo.weights.safetensors_io import read_safetensors

RELATIONS = ("states", "contradicts", "neither")
WEIGHTS = Path(__file__).with_name("cross_encoder.safetensors")
MANIFEST = WEIGHTS.with_suffix(".json")
ADAPTED = ("attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj", "ffn.fc", "ffn.proj")


@dataclass(frozen=True)
class CrossConfig:
    """Which layers are adapted, the LoRA rank and scale, the pair's token budget and the head's width."""

    frozen_layers: int = 3
    rank: int = 16
    alpha: float = 32.0
    point_tokens: int = 64
    sentence_tokens: int = 64
    head_hidden: int = 256
    base: str = "all-minilm-l6-v2"

    def __post_init__(self) -> None:
        if self.frozen_layers < 0 or self.rank <= 0 or min(self.point_tokens, self.sentence_tokens) <= 0:
            raise ConfigError(f"frozen_layers >= 0, rank > 0 and positive token budgets needed: {self}")


def _module(root: nn.Module, dotted: str) -> tuple[nn.Module, str]:
    """The parent of a dotted submodule name, and the last part of the name."""
    *path, name = dotted.split(".")
    for part in path:
        root = getattr(root, part)
    return root, name


class CrossEncoder(nn.Module):
    """MiniLM reading a (key point, sentence) pair -> logits over ``RELATIONS`` (see the module docstring).

    The base encoder is shared, not copied, and not a submodule: only the adapted top layers and the head are.
    """

    def __init__(self, encoder: Encoder, config: CrossConfig) -> None:
        super().__init__()
        bert = encoder.model
        if config.frozen_layers >= len(bert.layers):
            raise ConfigError(f"frozen_layers {config.frozen_layers} leaves none of {len(bert.layers)} layers to adapt")
        self.encoder, self.config = encoder, config
        self.top = nn.ModuleList(copy.deepcopy(layer) for layer in bert.layers[config.frozen_layers :])
        for layer in self.top:
            for p in layer.parameters():
                p.requires_grad_(False)
            for dotted in ADAPTED:
                parent, name = _module(layer, dotted)
                setattr(parent, name, LoRALinear(getattr(parent, name), config.rank, config.alpha))
            for norm in (layer.norm1, layer.norm2):
                for p in norm.parameters():
                    p.requires_grad_(True)
        dim = bert.config.dim
        self.head = nn.Sequential(nn.Linear(2 * dim, config.head_hidden), nn.Tanh(), nn.Linear(config.head_hidden, 3))

    def tokenize(self, points: Sequence[str], sentences: Sequence[str]) -> tuple[Tensor, Tensor, Tensor]:
        """ids, token types and attention mask (B, T) of "[CLS] point [SEP] sentence [SEP]", each side truncated."""
        backend, c = self.encoder.tokenizer.backend, self.config
        cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
        a = backend.encode_batch(list(points), add_special_tokens=False)
        b = backend.encode_batch(list(sentences), add_special_tokens=False)
        rows, types = [], []
        for x, y in zip(a, b, strict=True):
            left, right = x.ids[: c.point_tokens], y.ids[: c.sentence_tokens]
            rows.append(torch.tensor([cls_id, *left, sep_id, *right, sep_id]))
            types.append(torch.tensor([0] * (len(left) + 2) + [1] * (len(right) + 1)))
        pad = self.encoder.tokenizer.pad_token_id or 0
        ids = nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=pad)  # (B, T)
        type_ids = nn.utils.rnn.pad_sequence(types, batch_first=True)  # (B, T)
        lengths = torch.tensor([len(r) for r in rows])
        mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long()  # (B, T)
        return ids, type_ids, mask

    @torch.no_grad()
    def lower(self, ids: Tensor, type_ids: Tensor, mask: Tensor) -> Tensor:
        """The hidden states after the frozen layers (B, T, dim): the base model's own computation, unchanged."""
        bert = self.encoder.model
        x = bert.embeddings(ids, type_ids)  # (B, T, dim)
        keep = key_padding_mask(mask)  # (B, 1, 1, T)
        for layer in bert.layers[: self.config.frozen_layers]:
            x = layer(x, mask=keep, causal=False)
        return x

    def upper(self, hidden: Tensor, mask: Tensor) -> Tensor:
        """Logits (B, 3) from the frozen layers' output: the adapted layers, then the head."""
        keep = key_padding_mask(mask)  # (B, 1, 1, T)
        for layer in self.top:
            hidden = layer(hidden, mask=keep, causal=False)
        pooled = torch.cat([hidden[:, 0], mean_pool(hidden, mask)], dim=-1)  # (B, 2·dim)
        return self.head(pooled)

    def forward(self, ids: Tensor, type_ids: Tensor, mask: Tensor) -> Tensor:
        return self.upper(self.lower(ids, type_ids, mask), mask)

    @torch.inference_mode()
    def probabilities(self, points: Sequence[str], sentences: Sequence[str], *, batch_size: int = 32) -> Tensor:
        """P(states), P(contradicts), P(neither) for each (point, sentence) pair, (N, 3), in the order given."""
        if len(points) != len(sentences):
            raise ValueError(f"need as many points as sentences, got {len(points)} and {len(sentences)}")
        out = torch.empty(len(points), 3)
        order = sorted(range(len(points)), key=lambda i: len(points[i]) + len(sentences[i]))
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            ids, type_ids, mask = self.tokenize([points[i] for i in index], [sentences[i] for i in index])
            out[index] = self(ids, type_ids, mask).float().softmax(-1)
        return out

    def trained_state(self) -> dict[str, Tensor]:
        """What training changes and the weights file holds: LoRA factors, top-layer norms, head."""
        return {name: p.detach() for name, p in self.named_parameters() if p.requires_grad}

    def merge(self) -> CrossEncoder:
        """Fold every LoRA update into its linear layer (same outputs, no extra matmuls); for inference."""
        for layer in self.top:
            for dotted in ADAPTED:
                parent, name = _module(layer, dotted)
                lora = getattr(parent, name)
                if isinstance(lora, LoRALinear):
                    setattr(parent, name, lora.merged())
        return self.eval().requires_grad_(False)

    def save(self, path: Path = WEIGHTS, **facts: Any) -> str:
        """Write the trained tensors in fp16 and the manifest beside them; returns the file's SHA-256."""
        state = {k: v.to(torch.float16).contiguous() for k, v in self.trained_state().items()}
        save_file(state, str(path))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest = {"config": asdict(self.config), "sha256": digest, **facts}
        path.with_suffix(".json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        return digest

    @classmethod
    def load(cls, encoder: Encoder, path: Path = WEIGHTS) -> CrossEncoder:
        """The shipped (or given) cross-encoder over ``encoder``, merged for inference; CheckpointError when the file is
        missing, corrupt or does not match its manifest."""
        manifest_path = path.with_suffix(".json")
        if not path.is_file() or not manifest_path.is_file():
            raise CheckpointError(
                f"{path} or its manifest {manifest_path.name} is missing; train it with "
                "python -m tfdojo.practice.grading.train_cross"
            )
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != manifest.get("sha256"):
            raise CheckpointError(
                f"{path} is corrupt: its SHA-256 is {digest[:12]}…, the manifest says "
                f"{str(manifest.get('sha256'))[:12]}…; restore it (git checkout) or retrain it with "
                "python -m tfdojo.practice.grading.train_cross"
            )
        model = cls(encoder, CrossConfig(**manifest["config"]))
        state = read_safetensors(path, torch.float32)
        expected = model.trained_state()
        wrong = sorted(k for k in expected if k not in state or state[k].shape != expected[k].shape)
        if wrong or set(state) - set(expected):
            unexpected = sorted(set(state) - set(expected))[:3]
            raise MissingTensorError(
                f"{path} does not fit this cross-encoder: missing or misshapen {wrong[:3]}, unexpected {unexpected}; "
                "retrain it with python -m tfdojo.practice.grading.train_cross"
            )
        model.load_state_dict(state, strict=False)
        return model.merge()


@cache
def default_cross_encoder() -> CrossEncoder | None:
    """The shipped cross-encoder over the grader's MiniLM, loaded on first use; None when it is not built."""
    from tfdojo.practice.grading.embedder import default_embedder

    encoder = default_embedder()
    return CrossEncoder.load(encoder) if WEIGHTS.exists() and isinstance(encoder, Encoder) else None
