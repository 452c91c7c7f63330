"""DataLoaders for the three splits of a dataset, the training one seeded (and bucketed).

:func:`make_loaders` takes any dataset with a ``collate`` attribute
(:class:`~mmtutor.data.ClassificationDataset`, :class:`~mmtutor.data.TaggingDataset`...).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.utils.data import DataLoader, Dataset

from mmtutor.data.buckets import LengthBucketSampler

__all__ = ["Loaders", "make_loaders"]


class Loaders(NamedTuple):
    """The train, validation and test loaders (``val``/``test`` may be ``None``)."""

    train: DataLoader
    val: DataLoader | None
    test: DataLoader | None


def make_loaders(
    train: Dataset,
    val: Dataset | None = None,
    test: Dataset | None = None,
    *,
    batch_size: int = 64,
    eval_batch_size: int | None = None,
    seed: int = 0,
    num_workers: int = 0,
    bucket_by_length: bool = False,
) -> Loaders:
    """DataLoaders for the three splits: the training one shuffled with a seeded generator.

    Args:
        train, val, test: :class:`ClassificationDataset` or :class:`TaggingDataset` objects
            (the collate function comes from the dataset).
        batch_size: training batch size; eval_batch_size: for val/test (default: 2 x batch_size).
        seed: seeds the shuffling, so two runs see the batches in the same order.
        num_workers: loader worker processes (0: load in the main process).
        bucket_by_length: batch training samples of similar length together with a
            :class:`LengthBucketSampler` (the dataset needs a ``lengths`` attribute).

    Returns:
        ``Loaders(train, val, test)``; unpack as ``train_dl, val_dl, test_dl = make_loaders(...)``.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    eval_size = eval_batch_size or 2 * int(batch_size)

    def loader(ds: Dataset | None, shuffle: bool) -> DataLoader | None:
        if ds is None:
            return None
        collate = getattr(ds, "collate", None)
        if collate is None:
            raise ValueError(
                f"{type(ds).__name__} has no 'collate' attribute; expected a ClassificationDataset "
                "or TaggingDataset"
            )
        generator = torch.Generator().manual_seed(int(seed)) if shuffle else None
        sampler = None
        if shuffle and bucket_by_length:
            if not hasattr(ds, "lengths"):
                raise ValueError(f"bucket_by_length=True needs a dataset with 'lengths' (a "
                                 f"TaggingDataset), got {type(ds).__name__}")
            sampler = LengthBucketSampler(ds.lengths, int(batch_size), generator=generator)
        return DataLoader(
            ds,
            batch_size=int(batch_size) if shuffle else eval_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            generator=generator if sampler is None else None,
            collate_fn=collate,
            num_workers=num_workers,
        )

    train_loader = loader(train, True)
    return Loaders(train_loader, loader(val, False), loader(test, False))  # type: ignore[arg-type]
