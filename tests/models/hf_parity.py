"""Shared checks for decoder families against Hugging Face transformers, through our real folder loader."""

from __future__ import annotations

from pathlib import Path

import torch
from tiny_hf import perturbed
from torch import nn

from tfdojo.weights.hf import load_hf_model

__all__ = ["TOL", "check_left_padded", "check_logits", "perturbed", "save_and_load"]

TOL = {"atol": 1e-5, "rtol": 1e-4}


def save_and_load(hf_model: nn.Module, folder: Path) -> nn.Module:
    """Write ``hf_model`` with save_pretrained and read it back with tfdojo's loader (eval mode, fp32)."""
    hf_model.save_pretrained(folder)
    return load_hf_model(folder)[1]


def check_logits(ours: nn.Module, hf_model: nn.Module, vocab_size: int, seed: int = 0) -> None:
    """Our logits equal HF's on a random (2, 9) batch."""
    ids = torch.randint(0, vocab_size, (2, 9), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf_model(ids).logits, **TOL)


def check_left_padded(ours: nn.Module, hf_model: nn.Module, vocab_size: int, seed: int = 1) -> None:
    """A left-padded batch gives, at every real token, HF's logits for that prompt run alone without padding."""
    gen = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(0, vocab_size, (n,), generator=gen) for n in (7, 3, 5)]
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)  # pad id 0: masked, so its value must not matter
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for row, p in enumerate(prompts):
        ids[row, width - len(p) :], mask[row, width - len(p) :] = p, 1
    with torch.no_grad():
        logits = ours(ids, attention_mask=mask)  # (B, T, V)
        for row, p in enumerate(prompts):
            alone = hf_model(p.unsqueeze(0)).logits[0]  # (len, V)
            torch.testing.assert_close(logits[row, width - len(p) :], alone, **TOL)
