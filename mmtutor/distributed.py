"""Data-parallel training with PyTorch's own engine: ``torchrun`` + DDP, on CPU or GPU.

:func:`mmtutor.train.fit` calls these helpers, so a script that trains with ``fit`` runs
unchanged under ``torchrun --nproc_per_node N script.py`` (and ``mmtutor ner`` /
``mmtutor classify`` under ``torchrun --nproc_per_node N -m mmtutor ...``):

* :func:`setup` joins the process group that ``torchrun`` describes in the environment
  (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), over NCCL on
  CUDA and gloo on the CPU, and picks this process's GPU (``cuda:LOCAL_RANK``);
* :func:`shard_train_loader` gives each process ``1/N`` of every global batch through a
  :class:`~torch.utils.data.DistributedSampler`, so ``N`` processes with a loader of batch
  size ``B`` take the same optimisation steps as one process with batch size ``B``;
* :func:`wrap` puts the model in :class:`~torch.nn.parallel.DistributedDataParallel`, which
  averages the gradients across processes (an all-reduce) during ``backward``
  (Li et al., "PyTorch Distributed: Experiences on Accelerating Data Parallel Training",
  VLDB 2020);
* :func:`shard_eval_loader` and :func:`gather` split the validation set across processes
  and put the predictions back together, so every process computes the same metric;
* :func:`is_main_process` tells who prints and writes files (rank 0).

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every helper is a no-op.

BatchNorm layers normalise with the statistics of each process's part of the batch, as DDP
does by default; on CUDA, ``torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)`` before
training computes them over the global batch (PyTorch supports that on GPUs only).
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import (
    DataLoader,
    DistributedSampler,
    RandomSampler,
    SequentialSampler,
    Subset,
)

__all__ = ["world_size", "rank", "is_main_process", "launched", "setup", "shard_train_loader",
           "shard_eval_loader", "set_epoch", "wrap", "all_reduce_sum", "gather"]


def launched() -> bool:
    """True when this process is one of several started by ``torchrun`` (``WORLD_SIZE > 1``)."""
    return _env_int("WORLD_SIZE", 1) > 1


def world_size() -> int:
    """Number of training processes (1 without ``torchrun``)."""
    return dist.get_world_size() if dist.is_initialized() else _env_int("WORLD_SIZE", 1)


def rank() -> int:
    """This process's index among :func:`world_size` processes (0 without ``torchrun``)."""
    return dist.get_rank() if dist.is_initialized() else _env_int("RANK", 0)


def is_main_process() -> bool:
    """True in the process that prints and writes files: rank 0, or the only process."""
    return rank() == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r} must be an integer "
                         f"(torchrun sets it); unset it to train in one process") from None


def setup(device: torch.device) -> torch.device:
    """Join ``torchrun``'s process group once; return the device this process trains on.

    Args:
        device: the device asked for. Under ``torchrun`` a CUDA device without an index
            becomes ``cuda:LOCAL_RANK`` (one GPU per process).

    Returns:
        ``device``, with the local GPU index filled in under ``torchrun``.

    Raises:
        ValueError: if a CUDA run has more processes on this machine than GPUs.
    """
    if not launched():
        return device
    if device.type == "cuda":
        local = _env_int("LOCAL_RANK", 0)
        if local >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={local} but this machine has "
                             f"{torch.cuda.device_count()} GPU(s); start at most that many "
                             "processes per node (torchrun --nproc_per_node)")
        device = torch.device("cuda", local if device.index is None else device.index)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        atexit.register(_leave)
    return device


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def shard_train_loader(loader: Iterable, *, seed: int) -> Iterable:
    """Rebuild ``loader`` so this process reads its ``1/N`` share of every global batch.

    A loader of batch size ``B`` becomes one of batch size ``B / N`` over a
    :class:`~torch.utils.data.DistributedSampler` (shuffled with ``seed`` if ``loader``
    shuffles); its collate function, workers and other settings are kept. Without
    ``torchrun``, ``loader`` comes back as it is. The sampler pads the data with a few
    repeated samples when ``N`` does not divide its size, as DDP training usually does.

    Raises:
        ValueError: if ``loader`` is not a :class:`~torch.utils.data.DataLoader` with a
            ``batch_size`` and a sequential or random sampler, or ``N`` does not divide
            its batch size.
    """
    if world_size() == 1:
        return loader
    n = world_size()
    shuffle = _sampler_kind(loader, "train_loader") == "random"
    if loader.batch_size % n:
        raise ValueError(f"train_loader has batch_size={loader.batch_size}, which "
                         f"{n} processes cannot split evenly; use a multiple of {n} so "
                         "every global batch has the same size as in one process")
    sampler = DistributedSampler(loader.dataset, num_replicas=n, rank=rank(), shuffle=shuffle,
                                 seed=seed)
    return _rebuild(loader, loader.dataset, sampler=sampler, batch_size=loader.batch_size // n,
                    drop_last=loader.drop_last)


def shard_eval_loader(loader: Iterable) -> Iterable:
    """Rebuild ``loader`` over every ``N``-th sample, starting at this process's rank.

    Unlike a :class:`~torch.utils.data.DistributedSampler`, nothing is repeated, so the
    metrics of the :func:`gather`-ed predictions are those of the whole set. A loader that
    is not a shardable :class:`~torch.utils.data.DataLoader` is evaluated whole by every
    process (same result, more work).
    """
    if world_size() == 1 or not isinstance(loader, DataLoader) or loader.batch_size is None:
        return loader
    part = Subset(loader.dataset, range(rank(), len(loader.dataset), world_size()))
    return _rebuild(loader, part, sampler=SequentialSampler(part), batch_size=loader.batch_size,
                    drop_last=False)


def _sampler_kind(loader: object, name: str) -> str:
    if not isinstance(loader, DataLoader) or loader.batch_size is None:
        raise ValueError(f"under torchrun, {name} must be a torch DataLoader with a batch_size "
                         f"(fit splits each batch across the processes), got "
                         f"{type(loader).__name__}")
    if isinstance(loader.sampler, RandomSampler) or getattr(loader.sampler, "shuffles", False):
        return "random"  # a shuffling sampler (length buckets) becomes a shuffled shard
    if isinstance(loader.sampler, SequentialSampler):
        return "sequential"
    raise ValueError(f"under torchrun, {name} must shuffle or read in order (shuffle=True or "
                     f"False); fit cannot split its {type(loader.sampler).__name__} across "
                     "processes")


def _rebuild(loader: DataLoader, dataset: Any, **changes: Any) -> DataLoader:
    workers = loader.num_workers
    return DataLoader(dataset, collate_fn=loader.collate_fn, num_workers=workers,
                      pin_memory=loader.pin_memory, timeout=loader.timeout,
                      worker_init_fn=loader.worker_init_fn,
                      persistent_workers=loader.persistent_workers if workers else False,
                      **changes)


class _LossForward(nn.Module):
    """Makes ``model.loss(batch)`` the ``forward`` that DDP instruments."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        return self.model.loss(batch)  # scalar


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """A module whose ``forward(batch)`` is ``model.loss(batch)``, in DDP under ``torchrun``.

    DDP hooks the gradient all-reduce into ``forward``/``backward``, and the book's models
    train through ``loss``, not ``forward``; the wrapper makes the two the same. The weights
    stay ``model``'s own (nothing is copied), and DDP starts every process from rank 0's.
    """
    wrapped = _LossForward(model)
    if world_size() == 1:
        return wrapped
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(wrapped, device_ids=ids)


def all_reduce_sum(*values: float, device: torch.device) -> list[float]:
    """Each value summed over all processes (the values themselves without ``torchrun``)."""
    if world_size() == 1:
        return list(values)
    # NCCL reduces CUDA tensors only; gloo reduces CPU tensors
    total = torch.tensor(values, dtype=torch.float64,
                         device=device if device.type == "cuda" else "cpu")  # (len(values),)
    dist.all_reduce(total)
    return total.tolist()


def gather(value: Any) -> list[Any]:
    """``value`` of every process, by rank (``[value]`` without ``torchrun``); any picklable."""
    if world_size() == 1:
        return [value]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, value)
    return out


def set_epoch(loader: Iterable, epoch: int) -> None:
    """Tell a :func:`shard_train_loader` loader's sampler the epoch: a new shuffle each epoch."""
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
