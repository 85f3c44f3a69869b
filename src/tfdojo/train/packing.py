"""Rows for next-token training: packed rows with document ids, or single samples bucketed by length.

Packing concatenates the documents (each ending in the end token) into one stream and cuts it into rows of
T inputs and T targets (row r covers stream[r·T : r·T + T + 1]). A target that belongs to another document than
its input is ignored, and ``document_ids`` lets the model keep attention inside each document and restart its
positions, so a packed row trains exactly as its documents would one by one::

    stream   a a a <e> b b <e> c c c ...      document  0 0 0 0 1 1 1 2 2 2
    inputs   a a a <e> b b <e> c              targets   a a <e> ✗ b <e> ✗ c   (✗ = ignored, -100)

Bucketing (for unpacked samples) sorts samples by length inside shuffled pools of several batches, so each
batch pads little while the order stays random between pools.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

IGNORE = -100  # targets with this value add nothing to the loss (torch's cross_entropy default)


def encode_documents(texts: Sequence[str], encode, eos_id: int) -> list[Tensor]:
    """Each text as a LongTensor of its ids followed by the end token."""
    return [torch.tensor([*encode(text), eos_id], dtype=torch.long) for text in texts]


def packed_stream(documents: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """All documents in one stream (N,) and the document number of every token (N,)."""
    stream = torch.cat(list(documents))
    doc = torch.repeat_interleave(torch.arange(len(documents)), torch.tensor([len(d) for d in documents]))
    return stream, doc


def packed_row_count(stream_len: int, seq_len: int) -> int:
    """Rows of ``seq_len`` inputs (plus the one token of look-ahead for the last target) in a stream."""
    return max(0, (stream_len - 1) // seq_len)


def packed_rows(stream: Tensor, doc: Tensor, rows: Tensor, seq_len: int) -> dict[str, Tensor]:
    """Input ids, targets (document-crossing ones ignored) and document ids (B, T) of the given row numbers."""
    starts = rows * seq_len  # (B,)
    index = starts.unsqueeze(1) + torch.arange(seq_len + 1)  # (B, T + 1)
    tokens, docs = stream[index], doc[index]  # (B, T + 1)
    targets = tokens[:, 1:].masked_fill(docs[:, 1:] != docs[:, :-1], IGNORE)  # (B, T)
    return {"input_ids": tokens[:, :-1], "labels": targets, "document_ids": docs[:, :-1]}


def split_samples(documents: Sequence[Tensor], max_len: int) -> list[Tensor]:
    """Documents cut into samples of at most ``max_len`` tokens (each becomes one unpacked row)."""
    return [piece for d in documents for piece in d.split(max_len) if len(piece) >= 2]


def padded_batch(samples: Sequence[Tensor], pad_id: int) -> dict[str, Tensor]:
    """Right-padded inputs, targets and attention mask (B, T) of samples of different lengths."""
    width = max(len(s) for s in samples) - 1
    ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(samples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros(len(samples), width, dtype=torch.long)
    for row, s in enumerate(samples):
        n = len(s) - 1
        ids[row, :n], labels[row, :n], mask[row, :n] = s[:-1], s[1:], 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def bucketed_batches(lengths: Sequence[int], batch: int, generator: torch.Generator, pool: int = 16) -> list[Tensor]:
    """One epoch of sample-index batches: shuffle, sort by length inside pools of ``pool`` batches, shuffle batches."""
    order = torch.randperm(len(lengths), generator=generator)
    length = torch.tensor(lengths)
    batches = []
    for start in range(0, len(order), batch * pool):
        chunk = order[start : start + batch * pool]
        chunk = chunk[torch.argsort(length[chunk], stable=True)]
        batches += [b for b in chunk.split(batch) if len(b) == batch]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator)]


def padding_fraction(batches: Sequence[Tensor], lengths: Sequence[int]) -> float:
    """Share of padded positions over all rows of the given batches (what bucketing drives down)."""
    length = torch.tensor(lengths)
    padded = sum(int(length[b].max()) * len(b) for b in batches)
    return 1 - sum(int(length[b].sum()) for b in batches) / padded
