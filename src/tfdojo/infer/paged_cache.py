"""Paged key/value cache (Kwon et al., 2023, "vLLM: Efficient Memory Management ... with PagedAttention").

Keys and values live in one pool of fixed-size blocks shared by every sequence. A sequence owns a *block table*,
the list of its blocks in order, so its cache grows a block at a time and never needs a contiguous region:

    pool slots   [ blk 0 | blk 1 | blk 2 | blk 3 | blk 4 | … | zero ]      block_size positions each
    seq A table  [3, 0]      positions 0-15 in block 3, 16-31 in block 0
    seq B table  [3, 4]      shares block 3 with A (the same 16-token prefix), then its own block 4

Prefix caching: a full block is keyed by the hash of its tokens and of the key of the block before it, so equal
keys mean equal prefixes. Blocks are reference-counted; a block whose count drops to zero keeps its contents and
its key on an LRU list, and is reused by a later request with the same prefix or evicted (oldest first) when the
free list is empty.

:class:`PagedKVCache` is the ``KVCache`` view of a batch of sequences for one or more forwards. Rows of
different lengths are right-aligned (like left padding), so the newest token of every row is the last column;
``key_mask`` and ``positions`` give the model the matching attention mask and positions.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from tfdojo.errors import TfdojoError
from tfdojo.infer.cache import CacheFactory, CacheGeometry, check_sizes


class OutOfBlocksError(TfdojoError):
    """The block pool has no free or evictable block left; build it with more blocks or run fewer sequences."""


class BlockPool:
    """Key/value blocks for every layer, a free list, reference counts, and the prefix-cache index."""

    def __init__(self, geometry: CacheGeometry, num_blocks: int, block_size: int) -> None:
        check_sizes(num_blocks=num_blocks, block_size=block_size)
        g = geometry
        slots = (num_blocks + 1) * block_size  # the last block stays zero: padding reads point at it
        self.k = torch.zeros(g.n_layers, slots, g.n_kv_heads, g.head_dim, dtype=g.dtype, device=g.device)
        self.v = torch.zeros_like(self.k)
        self.num_blocks, self.block_size = num_blocks, block_size
        self.zero_block = num_blocks
        self.free: deque[int] = deque(range(num_blocks))
        self.refs = [0] * num_blocks
        self.key_of: dict[int, int] = {}  # block -> prefix key of its contents
        self.block_of: dict[int, int] = {}  # prefix key -> block
        self.evictable: OrderedDict[int, None] = OrderedDict()  # cached blocks with no owner, oldest first

    @classmethod
    def for_model(cls, model: nn.Module, num_blocks: int, block_size: int = 16) -> BlockPool:
        """A pool whose blocks fit ``model``'s layers, heads, dtype and device."""
        return cls(CacheGeometry.of(model), num_blocks, block_size)

    @property
    def available(self) -> int:
        """Blocks that :meth:`allocate` can still hand out (free, or cached and unowned)."""
        return len(self.free) + len(self.evictable)

    @property
    def used(self) -> int:
        """Blocks owned by at least one sequence."""
        return self.num_blocks - self.available

    def allocate(self) -> int:
        """A block with reference count 1: from the free list, else the least recently used cached block."""
        if self.free:
            block = self.free.popleft()
        elif self.evictable:
            block, _ = self.evictable.popitem(last=False)
            del self.block_of[self.key_of.pop(block)]
        else:
            raise OutOfBlocksError(
                f"all {self.num_blocks} key/value blocks of {self.block_size} positions are in use; "
                "build the pool with more blocks or admit fewer sequences"
            )
        self.refs[block] = 1
        return block

    def release(self, block: int) -> None:
        """Drop one reference; at zero a cached block waits on the LRU list, any other returns to the free list."""
        self.refs[block] -= 1
        if self.refs[block] == 0:
            if block in self.key_of:
                self.evictable[block] = None
            else:
                self.free.append(block)

    def lookup(self, key: int) -> int | None:
        """The block cached under ``key`` with one more reference, or None."""
        block = self.block_of.get(key)
        if block is None:
            return None
        if self.refs[block] == 0:
            del self.evictable[block]
        self.refs[block] += 1
        return block

    def publish(self, block: int, key: int) -> None:
        """Make a full block findable under its prefix key (a key already cached elsewhere is left as it is)."""
        if key not in self.block_of and block not in self.key_of:
            self.block_of[key] = block
            self.key_of[block] = key


def block_key(parent: int | None, tokens: Sequence[int]) -> int:
    """The prefix key of a full block: a hash of the previous block's key and this block's tokens."""
    return hash((parent, tuple(tokens)))


@dataclass
class PagedSequence:
    """One sequence's block table, the positions it has stored, and the prefix keys of its published blocks."""

    blocks: list[int] = field(default_factory=list)
    length: int = 0
    keys: list[int] = field(default_factory=list)

    def reserve(self, pool: BlockPool, length: int) -> None:
        """Own enough blocks for ``length`` positions (OutOfBlocksError, with nothing changed, if the pool is short)."""
        need = -(-length // pool.block_size) - len(self.blocks)
        if need > pool.available:
            raise OutOfBlocksError(f"{need} more blocks are needed but {pool.available} are available")
        self.blocks += [pool.allocate() for _ in range(need)]

    def slots(self, pool: BlockPool, length: int) -> Tensor:
        """(length,) pool slots of positions 0 … length-1 (their blocks must be reserved)."""
        position = torch.arange(length)
        return torch.tensor(self.blocks, dtype=torch.long)[position // pool.block_size] * pool.block_size + (
            position % pool.block_size
        )

    def adopt_prefix(self, pool: BlockPool, tokens: Sequence[int]) -> int:
        """Take the cached blocks that hold a prefix of ``tokens`` (at least one token is left to compute).

        Returns how many positions are now stored. Call on an empty sequence.
        """
        bs = pool.block_size
        for i in range((len(tokens) - 1) // bs):
            key = block_key(self.keys[-1] if self.keys else None, tokens[i * bs : (i + 1) * bs])
            block = pool.lookup(key)
            if block is None:
                break
            self.blocks.append(block)
            self.keys.append(key)
        self.length = len(self.keys) * bs
        return self.length

    def publish_full_blocks(self, pool: BlockPool, tokens: Sequence[int]) -> None:
        """Key every full block not yet keyed; ``tokens`` are the ids stored so far (at least ``length`` of them)."""
        bs = pool.block_size
        for i in range(len(self.keys), self.length // bs):
            key = block_key(self.keys[-1] if self.keys else None, tokens[i * bs : (i + 1) * bs])
            pool.publish(self.blocks[i], key)
            self.keys.append(key)

    def free(self, pool: BlockPool) -> None:
        """Give every block back (cached ones stay findable until evicted)."""
        for block in reversed(self.blocks):  # the tail first, so that LRU eviction takes suffixes before prefixes
            pool.release(block)
        self.blocks, self.keys, self.length = [], [], 0


class PagedKVCache:
    """The ``KVCache`` view of a batch of paged sequences: writes go to their blocks, reads gather them.

    Every row is right-aligned in a (B, Hkv, S, D) view, S = the longest row + the new tokens; the columns left
    of a shorter row read the pool's zero block and must be masked (``key_mask``).
    """

    def __init__(self, pool: BlockPool, sequences: Sequence[PagedSequence]) -> None:
        self.pool = pool
        self.sequences = list(sequences)
        self._slots: tuple[Tensor, Tensor] | None = None  # (read (B, S), write (B, T)) for the current forward

    @classmethod
    def factory(cls, num_blocks: int | None = None, block_size: int = 16) -> CacheFactory:
        """A ``generate(..., cache=...)`` factory; the pool just fits the batch unless ``num_blocks`` is given."""

        def build(model: nn.Module, batch: int, max_len: int) -> PagedKVCache:
            blocks = num_blocks if num_blocks is not None else batch * -(-max_len // block_size)
            pool = BlockPool.for_model(model, blocks, block_size)
            return cls(pool, [PagedSequence() for _ in range(batch)])

        return build

    @property
    def length(self) -> int:
        """Stored positions of the longest row (the view's width before the new tokens)."""
        return max(s.length for s in self.sequences)

    def lengths(self) -> Tensor:
        """(B,) stored positions of every row."""
        return torch.tensor([s.length for s in self.sequences])

    def positions(self, t: int) -> Tensor:
        """(B, T) positions of the next t tokens of every row."""
        return self.lengths()[:, None] + torch.arange(t)

    def key_mask(self, t: int) -> Tensor:
        """(B, length + t) 1 where a column holds a real key of that row, 0 on the left padding."""
        width = self.length + t
        return (torch.arange(width) >= width - t - self.lengths()[:, None]).long()

    def _slot_index(self, t: int) -> tuple[Tensor, Tensor]:
        """Pool slots to read (B·S,) and to write (B·T,), flat; reserves blocks for the new tokens first."""
        bs, zero = self.pool.block_size, self.pool.zero_block
        for s in self.sequences:
            s.reserve(self.pool, s.length + t)
        width = self.length + t
        lengths = self.lengths()
        position = torch.arange(width) - (width - t - lengths)[:, None]  # (B, S): row position of each column
        blocks = max(len(s.blocks) for s in self.sequences)
        table = torch.tensor([s.blocks + [zero] * (blocks - len(s.blocks)) for s in self.sequences])  # (B, blocks)
        clamped = position.clamp(min=0)
        slots = table.gather(1, clamped // bs) * bs + clamped % bs  # (B, S)
        read = torch.where(position >= 0, slots, zero * bs)
        device = self.pool.k.device
        return read.flatten().to(device), read[:, -t:].flatten().to(device)

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write k, v (B, Hkv, T, D) into each row's blocks; return the right-aligned views (B, Hkv, S, D)."""
        b, h, t, d = k.shape
        if self._slots is None:
            self._slots = self._slot_index(t)
        read, write = self._slots
        # one index_copy_ and one index_select per tensor: far cheaper than advanced indexing with (B, S) indices
        self.pool.k[layer].index_copy_(0, write, k.transpose(1, 2).reshape(b * t, h, d))  # (B·T, Hkv, D)
        self.pool.v[layer].index_copy_(0, write, v.transpose(1, 2).reshape(b * t, h, d))
        keys = self.pool.k[layer].index_select(0, read).view(b, -1, h, d)  # (B, S, Hkv, D)
        values = self.pool.v[layer].index_select(0, read).view(b, -1, h, d)
        return keys.transpose(1, 2), values.transpose(1, 2)  # (B, Hkv, S, D)

    def advance(self, t: int) -> None:
        """Commit the t positions every row has just written."""
        for s in self.sequences:
            s.length += t
        self._slots = None
