"""Packed rows with document masks train exactly as their documents would one by one; bucketing pads less."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tfdojo.models.variants import VariantConfig, VariantLM
from tfdojo.train.packing import (
    IGNORE,
    bucketed_batches,
    packed_row_count,
    packed_rows,
    packed_stream,
    padded_batch,
    padding_fraction,
)


def _documents(lengths: list[int], vocab: int = 50, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (n,), generator=gen) for n in lengths]


@pytest.mark.parametrize(
    ("positions", "backend"), [("rope", "sdpa"), ("rope", "eager"), ("learned", "sdpa"), ("alibi", "eager")]
)
def test_packed_loss_equals_the_documents_one_by_one(positions: str, backend: str) -> None:
    torch.manual_seed(0)
    model = VariantLM(
        VariantConfig(vocab_size=50, dim=32, n_layers=2, n_heads=4, ffn_hidden=64, max_seq_len=64,
                      positions=positions, backend=backend)
    ).eval()  # fmt: skip
    docs = _documents([7, 13, 5, 20, 9, 11])
    stream, doc = packed_stream(docs)
    seq_len = 16
    rows = packed_rows(stream, doc, torch.arange(packed_row_count(len(stream), seq_len)), seq_len)
    with torch.no_grad():
        logits = model(rows["input_ids"], document_ids=rows["document_ids"])  # (B, T, V)
        packed = F.cross_entropy(logits.flatten(0, 1), rows["labels"].flatten(), ignore_index=IGNORE, reduction="none")
    # the oracle: each row cut at its document boundaries, every piece run alone from position 0
    expected = []
    for r in range(rows["input_ids"].shape[0]):
        ids, labels, owner = rows["input_ids"][r], rows["labels"][r], rows["document_ids"][r]
        for d in owner.unique_consecutive():
            piece = owner == d
            with torch.no_grad():
                alone = model(ids[piece].unsqueeze(0))[0]  # (n, V)
            expected.append(F.cross_entropy(alone, labels[piece], ignore_index=IGNORE, reduction="none"))
    torch.testing.assert_close(packed, torch.cat(expected), atol=1e-5, rtol=1e-5)


def test_targets_never_cross_a_document_boundary() -> None:
    docs = _documents([4, 6, 3])
    stream, doc = packed_stream(docs)
    rows = packed_rows(stream, doc, torch.arange(packed_row_count(len(stream), 4)), 4)
    flat_doc = rows["document_ids"].flatten()
    flat_labels = rows["labels"].flatten()
    starts = torch.cumsum(torch.tensor([0, 4, 6]), 0)  # stream index of each document's first token
    ignored = (flat_labels == IGNORE).nonzero().flatten().tolist()
    # the last token of documents 0 and 1 would predict the next document's first token: both ignored
    assert sorted(ignored) == [int(starts[1]) - 1, int(starts[2]) - 1]
    assert flat_doc.tolist() == doc[: len(flat_doc)].tolist()


def test_positions_restart_per_document() -> None:
    from tfdojo.models.decoding import document_masks

    positions, keep = document_masks(torch.tensor([[5, 5, 5, 8, 8, 2]]))
    assert positions.tolist() == [[0, 1, 2, 0, 1, 0]]
    assert keep[0, 0, 3].tolist() == [False, False, False, True, True, False]


def test_bucketing_pads_less_than_random_batches_and_is_deterministic() -> None:
    lengths = torch.randint(2, 200, (2000,), generator=torch.Generator().manual_seed(0)).tolist()
    bucketed = bucketed_batches(lengths, 16, torch.Generator().manual_seed(1))
    random_batches = list(torch.randperm(2000, generator=torch.Generator().manual_seed(1)).split(16))[:-1]
    assert padding_fraction(bucketed, lengths) < 0.1 < 0.4 < padding_fraction(random_batches, lengths)
    again = bucketed_batches(lengths, 16, torch.Generator().manual_seed(1))
    assert all(torch.equal(a, b) for a, b in zip(bucketed, again, strict=True))
    assert sorted(torch.cat(bucketed).tolist()) == sorted(set(torch.cat(bucketed).tolist()))  # no sample twice


def test_padded_batch_masks_padding_and_its_targets() -> None:
    batch = padded_batch([torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6])], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [5, 0, 0]]
    assert batch["labels"].tolist() == [[2, 3, 4], [6, IGNORE, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
