"""DINOv2 from a Hugging Face ``dinov2`` folder against HF transformers' Dinov2Model (tiny random config)."""

from __future__ import annotations

import pytest
import torch
from hf_parity import TOL, perturbed
from transformers import Dinov2Config, Dinov2Model

from tfdojo.calc import param_count
from tfdojo.errors import ConfigError
from tfdojo.weights.hf import load_hf_folder
from tfdojo.weights.hf_vit import ImageEncoder


def tiny_hf_dinov2(**overrides) -> Dinov2Model:
    """2 layers, d=32, patch 4, positions learned for a 6 × 6 grid (24 px), layer scales perturbed from their init."""
    torch.manual_seed(0)
    fields = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, mlp_ratio=3, image_size=24,
                  patch_size=4, layerscale_value=0.5)  # fmt: skip
    return perturbed(Dinov2Model(Dinov2Config(**(fields | overrides))))


@pytest.mark.parametrize(
    ("height", "width"), [(24, 24), (32, 20)], ids=["trained-grid", "resized-non-square"]
)  # fmt: skip
def test_hidden_states_match_hf(tmp_path, height, width):
    hf = tiny_hf_dinov2()
    hf.save_pretrained(tmp_path)
    encoder = load_hf_folder(tmp_path)
    assert isinstance(encoder, ImageEncoder)
    assert (encoder.config.layer_scale, encoder.config.pos_grid, encoder.config.ffn_hidden) == (True, 6, 96)
    images = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(height))
    with torch.no_grad():
        expected = hf(pixel_values=images).last_hidden_state  # (2, 1 + N, 32)
    torch.testing.assert_close(encoder.encode(images), expected, **TOL)


def test_parameter_count_is_hf_models_less_the_mask_token(tmp_path):
    hf = tiny_hf_dinov2()
    hf.save_pretrained(tmp_path)
    hf_count = sum(p.numel() for name, p in hf.named_parameters() if name != "embeddings.mask_token")
    assert param_count(tmp_path).value == hf_count  # the calculators read the folder through the same config


def test_swiglu_dinov2_is_refused(tmp_path):
    tiny_hf_dinov2(use_swiglu_ffn=True).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="use_swiglu_ffn"):
        load_hf_folder(tmp_path)
