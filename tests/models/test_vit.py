"""ViT against HF transformers' ViTModel (last hidden state), through our HF folder loader."""

from __future__ import annotations

import pytest
import torch
from tiny_hf import perturbed
from transformers import ViTConfig as HFViTConfig
from transformers import ViTForImageClassification, ViTModel

from tfdojo.weights.hf import load_hf_folder

TOL = {"atol": 1e-5, "rtol": 1e-4}


def _hf_config(**overrides) -> HFViTConfig:
    fields = dict(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=28,
        patch_size=7,
        layer_norm_eps=1e-6,
    )
    return HFViTConfig(**(fields | overrides))


def _images(n: int = 2, side: int = 28) -> torch.Tensor:
    return torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("qkv_bias", [True, False])
def test_last_hidden_state_matches_vitmodel(tmp_path, qkv_bias):
    hf = perturbed(ViTModel(_hf_config(qkv_bias=qkv_bias)))
    hf.save_pretrained(tmp_path)
    encoder = load_hf_folder(tmp_path)
    assert encoder.config.qkv_bias == qkv_bias and encoder.config.pos_grid == 4
    images = _images()
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode(images), hf(images).last_hidden_state, **TOL)


def test_classifier_folder_loads_its_backbone(tmp_path):
    """A ViTForImageClassification folder stores the backbone under ``vit.``; we load that part."""
    hf = perturbed(ViTForImageClassification(_hf_config(num_labels=3)))
    hf.save_pretrained(tmp_path)
    images = _images()
    with torch.no_grad():
        expected = hf.vit(images).last_hidden_state
        torch.testing.assert_close(load_hf_folder(tmp_path).encode(images), expected, **TOL)


def test_larger_image_resizes_positions_like_hf(tmp_path):
    """42 px with 7 px patches is a 6 × 6 grid: positions resized bicubically from 4 × 4, as HF's interpolation."""
    hf = perturbed(ViTModel(_hf_config()))
    hf.save_pretrained(tmp_path)
    images = _images(side=42)
    with torch.no_grad():
        expected = hf(images, interpolate_pos_encoding=True).last_hidden_state
        torch.testing.assert_close(load_hf_folder(tmp_path).encode(images), expected, **TOL)
