"""Deterministic batches by number: micro-batch k of rank r is a pure function of (seed, k, r, world size).

So the data position of a run is just its step count, a resumed run sees exactly the batches the uninterrupted
run would have, and N processes together see the batches one process sees with an N-times larger micro-batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.train.config import DataConfig
from tfdojo.train.corpus import Corpus
from tfdojo.train.packing import (
    bucketed_batches,
    encode_documents,
    packed_row_count,
    packed_rows,
    packed_stream,
    padded_batch,
    split_samples,
)
from tfdojo.train.tokenizer import BpeTokenizer, CharTokenizer, TrainTokenizer

Batch = dict[str, Tensor]


def fit_tokenizer(data: DataConfig, corpus: Corpus) -> TrainTokenizer:
    """The tokenizer of a run, fitted on the training plays only."""
    texts = [d.text for d in corpus.train]
    if data.tokenizer == "char":
        return CharTokenizer.fit(texts + [d.text for d in corpus.val])  # a char vocabulary may see every letter
    return BpeTokenizer.fit(texts, data.bpe_vocab_size)


@dataclass
class PackedData:
    """Packed rows of one split; micro-batch k of rank r of ``world`` comes from one seeded permutation per epoch."""

    stream: Tensor
    doc: Tensor
    seq_len: int
    seed: int
    rows: int = field(init=False)
    _orders: dict[int, Tensor] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.rows = packed_row_count(len(self.stream), self.seq_len)
        if self.rows == 0:
            raise ConfigError(f"the text is shorter than one row of {self.seq_len} tokens; lower [data] seq_len")

    def _order(self, epoch: int) -> Tensor:
        if epoch not in self._orders:
            if len(self._orders) >= 4:  # keep a few epochs: a step never spans more than two
                self._orders.pop(min(self._orders))
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._orders[epoch] = torch.randperm(self.rows, generator=gen)
        return self._orders[epoch]

    def batch(self, k: int, size: int, rank: int = 0, world: int = 1) -> Batch:
        """Micro-batch ``k``: rows [k·size·world + rank·size, … + size) of the shuffled epochs, in order."""
        first = (k * world + rank) * size
        index = torch.arange(first, first + size)
        rows = torch.stack([self._order(int(i) // self.rows)[int(i) % self.rows] for i in index])
        return packed_rows(self.stream, self.doc, rows, self.seq_len)

    def fixed(self, count: int, size: int) -> list[Batch]:
        """The first ``count`` batches in stream order (validation: the same rows at every evaluation)."""
        total = min(count * size, self.rows)
        rows = torch.arange(total)
        return [packed_rows(self.stream, self.doc, r, self.seq_len) for r in rows.split(size)]


@dataclass
class BucketedData:
    """Unpacked samples (one document piece per row), batched by length within shuffled pools, right-padded."""

    samples: list[Tensor]
    pad_id: int
    seed: int
    _epochs: dict[tuple[int, int], list[Tensor]] = field(default_factory=dict, init=False, repr=False)

    def _epoch(self, epoch: int, size: int) -> list[Tensor]:
        if (epoch, size) not in self._epochs:
            if len(self._epochs) >= 4:
                self._epochs.pop(min(self._epochs))
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epochs[epoch, size] = bucketed_batches([len(s) for s in self.samples], size, gen)
        return self._epochs[epoch, size]

    def batch(self, k: int, size: int, rank: int = 0, world: int = 1) -> Batch:
        """Micro-batch ``k`` of rank ``rank``: one length bucket of the global batch of ``size · world`` samples."""
        per_epoch = len(self._epoch(0, size * world))
        indices = self._epoch(k // per_epoch, size * world)[k % per_epoch]
        return padded_batch([self.samples[i] for i in indices[rank * size : (rank + 1) * size]], self.pad_id)

    def fixed(self, count: int, size: int) -> list[Batch]:
        """The first ``count`` batches in sample order (validation)."""
        chosen = self.samples[: count * size]
        return [padded_batch(chosen[i : i + size], self.pad_id) for i in range(0, len(chosen), size)]


def make_split(data: DataConfig, texts: list[str], tokenizer: TrainTokenizer, seed: int) -> PackedData | BucketedData:
    """Training or validation data for a split, packed or bucketed as the config says."""
    docs = encode_documents(texts, tokenizer.encode, tokenizer.eos_id)
    if data.packing:
        stream, doc = packed_stream(docs)
        return PackedData(stream, doc, data.seq_len, seed)
    return BucketedData(split_samples(docs, data.seq_len + 1), tokenizer.eos_id, seed)
