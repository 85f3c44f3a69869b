"""Mixtral against HF transformers' MixtralForCausalLM: logits and the router's auxiliary loss, via our loader."""

from __future__ import annotations

import pytest
import torch
from hf_parity import TOL, check_logits, save_and_load
from safetensors.torch import save_file
from tiny_hf import DECODER_FIELDS, tiny_hf_decoder
from transformers import MixtralConfig as HFMixtralConfig
from transformers import MixtralForCausalLM

from tfdojo.errors import ConfigError
from tfdojo.models.mixtral import Mixtral, MixtralConfig
from tfdojo.weights.hf import load_hf_model

VOCAB = DECODER_FIELDS["vocab_size"]


def tiny_hf_mixtral(**overrides) -> MixtralForCausalLM:
    """2 layers of 4 experts, top-2, a sliding window of 6."""
    fields = dict(num_local_experts=4, num_experts_per_tok=2, sliding_window=6)
    return tiny_hf_decoder(MixtralForCausalLM, HFMixtralConfig, **(fields | overrides))


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    hf = tiny_hf_mixtral()
    return hf, save_and_load(hf, tmp_path_factory.mktemp("mixtral"))


def test_logits_match_hf(pair):
    hf, ours = pair
    assert isinstance(ours, Mixtral) and (ours.config.n_experts, ours.config.top_k) == (4, 2)
    check_logits(ours, hf, VOCAB)


def test_aux_loss_matches_hf_output_router_logits(pair):
    hf, ours = pair
    ids = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = hf(ids, output_router_logits=True)
        torch.testing.assert_close(ours(ids), expected.logits, **TOL)
    torch.testing.assert_close(ours.load_balancing_loss(), expected.aux_loss, **TOL)


def test_aux_loss_skips_padding_like_hf(pair):
    hf, ours = pair
    ids = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(4))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding in the second row
    with torch.no_grad():
        expected = hf(ids, attention_mask=mask, output_router_logits=True).aux_loss
        ours(ids, attention_mask=mask)
    torch.testing.assert_close(ours.load_balancing_loss(mask), expected, **TOL)


def test_aux_loss_before_any_forward_is_an_error():
    model = Mixtral(MixtralConfig(vocab_size=16, dim=16, n_layers=1, n_heads=2, n_kv_heads=1, ffn_hidden=8))
    with pytest.raises(ConfigError, match="forward call first"):
        model.load_balancing_loss()


def test_fused_expert_layout_loads_too(tmp_path):
    """transformers 5 holds experts fused (``mlp.experts.gate_up_proj``); a file written from that state loads."""
    hf = tiny_hf_mixtral()
    hf.save_pretrained(tmp_path)
    state = {name: t.contiguous() for name, t in hf.state_dict().items()}
    assert "model.layers.0.mlp.experts.gate_up_proj" in state
    save_file(state, tmp_path / "model.safetensors")
    check_logits(load_hf_model(tmp_path)[1], hf, VOCAB)
