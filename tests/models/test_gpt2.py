"""GPT-2 against HF transformers' GPT2LMHeadModel (tiny random config) loaded through our HF folder loader."""

from __future__ import annotations

import pytest
import torch
from hf_parity import check_left_padded, check_logits, perturbed, save_and_load
from transformers import GPT2Config as HFGPT2Config
from transformers import GPT2LMHeadModel

from tfdojo.errors import ConfigError, ContextLengthError
from tfdojo.models.gpt2 import GPT2, GPT2Config
from tfdojo.weights.hf import load_hf_folder

VOCAB = 96


def tiny_hf_gpt2(**overrides) -> GPT2LMHeadModel:
    """A 2-layer GPT-2 with every parameter (LayerNorm and biases too) perturbed away from its init."""
    torch.manual_seed(0)
    config = HFGPT2Config(**(dict(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=4) | overrides))
    return perturbed(GPT2LMHeadModel(config))


@pytest.mark.parametrize("tied", [True, False])
def test_logits_match_hf(tmp_path, tied):
    hf = tiny_hf_gpt2(tie_word_embeddings=tied)
    ours = save_and_load(hf, tmp_path)
    assert ours.config.tie_embeddings is tied
    assert (ours.lm_head.weight is ours.embed.weight) is tied
    check_logits(ours, hf, VOCAB)


def test_left_padded_batch_matches_each_prompt_alone(tmp_path):
    hf = tiny_hf_gpt2()
    check_left_padded(save_and_load(hf, tmp_path), hf, VOCAB)


def test_inner_width_and_activation_follow_config_json(tmp_path):
    hf = tiny_hf_gpt2(n_inner=48, activation_function="relu")
    ours = save_and_load(hf, tmp_path)
    assert (ours.config.ffn_hidden, ours.config.activation) == (48, "relu")
    check_logits(ours, hf, VOCAB)


def test_scale_attn_by_inverse_layer_idx_matches_hf(tmp_path):
    """Layer i divides its scores by i + 1 as well: 3 layers so two of them differ from the plain scale."""
    hf = tiny_hf_gpt2(scale_attn_by_inverse_layer_idx=True, n_layer=3)
    ours = save_and_load(hf, tmp_path)
    assert [layer.attn.scale for layer in ours.layers] == [8**-0.5, 8**-0.5 / 2, 8**-0.5 / 3]  # head_dim 32/4
    check_logits(ours, hf, VOCAB)
    check_left_padded(ours, hf, VOCAB)
    plain = tiny_hf_gpt2(n_layer=3)  # the same weights without the option: the option must matter
    with torch.no_grad():
        ids = torch.randint(0, VOCAB, (1, 9), generator=torch.Generator().manual_seed(0))
        assert (plain(ids).logits - hf(ids).logits).abs().amax() > 1e-2


def test_config_validation():
    assert GPT2Config(dim=64, n_heads=4).ffn_hidden == 256
    with pytest.raises(ConfigError, match="divisible"):
        GPT2Config(dim=30, n_heads=4)
    with pytest.raises(ConfigError, match="activation"):
        GPT2Config(activation="swish")


def test_prompt_longer_than_positions_raises():
    model = GPT2(GPT2Config(vocab_size=VOCAB, n_positions=8, dim=16, n_layers=1, n_heads=2))
    with pytest.raises(ContextLengthError, match="8 learned positions"):
        model(torch.zeros(1, 9, dtype=torch.long))


def word_level_tokenizer(folder) -> None:
    """Write a tokenizer.json whose words t0 … t95 are the ids 0 … 95, split on whitespace."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({f"t{i}": i for i in range(VOCAB)}, unk_token="t0"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.save(str(folder / "tokenizer.json"))


def test_folder_with_tokenizer_generates_hf_greedy_tokens(tmp_path):
    hf = tiny_hf_gpt2()
    hf.save_pretrained(tmp_path)
    word_level_tokenizer(tmp_path)
    lm = load_hf_folder(tmp_path)  # a LanguageModel: generation runs through our KV cache and learned positions
    assert not any(p.requires_grad for p in lm.model.parameters())
    out = lm.generate("t5 t17 t3 t90", max_new_tokens=8, ignore_eos=True)
    prompt = torch.tensor([[5, 17, 3, 90]])
    expected = hf.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=0, eos_token_id=None)
    assert list(out.token_ids) == expected[0, 4:].tolist()
    assert out.text.split() == [f"t{i}" for i in expected[0, 4:].tolist()]
