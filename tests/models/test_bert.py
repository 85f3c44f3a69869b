"""BERT against HF transformers' BertModel (tiny random config) loaded through our HF folder loader."""

from __future__ import annotations

import pytest
import torch
from hf_parity import TOL, perturbed
from transformers import BertConfig as HFBertConfig
from transformers import BertForMaskedLM, BertModel

from tfdojo.errors import ConfigError, ContextLengthError
from tfdojo.models.bert import Bert, BertConfig
from tfdojo.weights.hf import load_hf_model

VOCAB = 96


def tiny_hf_bert_config(**overrides) -> HFBertConfig:
    """A 2-layer, 4-head BERT of width 32 with 3 token types."""
    fields = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=40,
        type_vocab_size=3,
    )
    return HFBertConfig(**(fields | overrides))


def padded_batch() -> dict[str, torch.Tensor]:
    """Right-padded ids with token types and an attention mask (rows of 10, 6 and 8 real tokens)."""
    gen = torch.Generator().manual_seed(2)
    ids = torch.randint(1, VOCAB, (3, 10), generator=gen)
    mask = (torch.arange(10) < torch.tensor([10, 6, 8]).unsqueeze(1)).long()  # (B, T)
    types = (torch.arange(10) >= 4).long().expand(3, 10) * mask  # segment B from token 4 on, as in a sentence pair
    return {"input_ids": ids * mask, "token_type_ids": types, "attention_mask": mask}


@pytest.fixture(scope="module")
def bert_pair(tmp_path_factory):
    """(HF BertModel, our Bert loaded from its save_pretrained folder)."""
    torch.manual_seed(0)
    hf = perturbed(BertModel(tiny_hf_bert_config()))
    folder = tmp_path_factory.mktemp("bert")
    hf.save_pretrained(folder)
    return hf, load_hf_model(folder)[1]


def test_hidden_states_match_hf_with_padding_and_token_types(bert_pair):
    hf, ours = bert_pair
    batch = padded_batch()
    with torch.no_grad():
        expected = hf(**batch).last_hidden_state
        got = ours(**batch)
    real = batch["attention_mask"].bool()  # padded positions are never read downstream; compare the real ones
    torch.testing.assert_close(got[real], expected[real], **TOL)


def test_pooler_matches_hf(bert_pair):
    hf, ours = bert_pair
    batch = padded_batch()
    with torch.no_grad():
        torch.testing.assert_close(ours.pool(ours(**batch)), hf(**batch).pooler_output, **TOL)


def test_task_model_folder_loads_its_bert_base(tmp_path):
    torch.manual_seed(0)
    hf = perturbed(BertForMaskedLM(tiny_hf_bert_config(hidden_act="gelu_new")))
    hf.save_pretrained(tmp_path)
    config, ours = load_hf_model(tmp_path)
    assert (config.pooler, config.activation) == (False, "gelu_tanh")  # BertForMaskedLM has no pooler
    batch = padded_batch()
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        expected = hf.bert(**batch).last_hidden_state
        torch.testing.assert_close(ours(**batch)[real], expected[real], **TOL)
    with pytest.raises(ConfigError, match="no pooler"):
        ours.pool(expected)


def test_relative_positions_are_refused(tmp_path):
    BertModel(tiny_hf_bert_config(position_embedding_type="relative_key")).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="position_embedding_type"):
        load_hf_model(tmp_path)


def test_input_longer_than_positions_raises():
    model = Bert(BertConfig(vocab_size=VOCAB, max_positions=8, dim=16, n_layers=1, n_heads=2, ffn_hidden=32))
    with pytest.raises(ContextLengthError, match="8 learned positions"):
        model(torch.zeros(1, 9, dtype=torch.long))


def test_config_validation():
    with pytest.raises(ConfigError, match="divisible"):
        BertConfig(dim=30, n_heads=4)
    with pytest.raises(ConfigError, match="positive"):
        BertConfig(n_layers=0)
