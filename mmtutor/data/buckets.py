"""Length bucketing: training batches of sentences of similar length.

A random batch of sentences is padded to its longest one; with real corpora (CoNLL-2003:
1 to 124 tokens) most of a batch is then padding, and the character CNN and the CRF's
loop over ``T`` work on it all the same. Sorting pools of samples by length before cutting
them into batches keeps the padding small while the pools keep the order random.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

__all__ = ["LengthBucketSampler"]


class LengthBucketSampler(Sampler[int]):
    """Shuffled sample order in which each run of ``batch_size`` indices has similar lengths.

    Every epoch the indices are shuffled, cut into pools of ``pool * batch_size``, each pool
    sorted by length and cut into batches, and the batches shuffled. A batch is then padded
    to about its own length, not to the longest sentence of a random draw, which saves the
    character CNN and the CRF's loop over ``T`` most of their work on padding; the pools
    keep the order random. Use it as a DataLoader's ``sampler`` with the same ``batch_size``.

    Args:
        lengths: the length of each sample.
        batch_size: the loader's batch size.
        generator: seeds the shuffles (the same seed gives the same batches).
        pool: batches per sorted pool.
    """

    shuffles = True  # under torchrun, fit shards it as a shuffled loader (without buckets)

    def __init__(self, lengths: Sequence[int], batch_size: int, *,
                 generator: torch.Generator | None = None, pool: int = 50) -> None:
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if int(pool) != pool or pool < 1:
            raise ValueError(f"pool must be a positive integer (batches per pool), got {pool!r}")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)  # (N,)
        self.batch_size, self.generator, self.pool = int(batch_size), generator, int(pool)

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(len(self.lengths), generator=self.generator)  # (N,)
        size = self.pool * self.batch_size
        batches = []
        for part in order.split(size):
            part = part[torch.argsort(self.lengths[part], stable=True)]  # sorted within the pool
            batches += list(part.split(self.batch_size))
        # the last, short batch keeps its place at the end: a loader's drop_last still drops it
        last = batches.pop() if batches and len(batches[-1]) < self.batch_size else None
        for k in torch.randperm(len(batches), generator=self.generator).tolist():
            yield from batches[k].tolist()
        if last is not None:
            yield from last.tolist()
