"""Training runs that ``tests/test_distributed.py`` does twice: in one process, and in two
processes under ``torchrun`` (gloo), where this file is the script.

Each case trains one of the book's models with :func:`mmtutor.train.fit` on generated data
and returns its final weights and history. The single-process run reads batches of ``B``
through a ``DistributedSampler`` with one replica (shuffled, seeded, re-shuffled per epoch by
``fit``); under ``torchrun``, ``fit`` rebuilds the ordinary shuffled loader over a
``DistributedSampler`` with two replicas and batches of ``B / 2``. Both use the same
permutation of the data each epoch, so every step sees the same global batch, and the weights
must agree up to floating-point rounding.

Run as ``torchrun --standalone --nproc_per_node 2 tests/ddp_cases.py OUT_DIR``: every rank
writes ``OUT_DIR/<case>.rank<r>.pt`` (weights, history, what it saw).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from mmtutor import distributed
from mmtutor.data import make_classification, make_mner
from mmtutor.models import build_classifier, build_tagger
from mmtutor.train import fit
from mmtutor.utils import seed_everything

BATCH = 16  # global batch size: 8 per process under torchrun
EPOCHS = 4


def loader(dataset, *, shuffle: bool, reference: bool, batch_size: int = BATCH) -> DataLoader:
    """The loader a user writes; in the single-process reference the sampler ``fit`` would use."""
    if reference and shuffle:  # the order a 2-process run sees, in one process
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=0)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=dataset.collate)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, collate_fn=dataset.collate)


def without_batchnorm(model: nn.Module) -> nn.Module:
    """Identity for every BatchNorm: with it, each process normalises with its own half batch
    (DDP's documented behaviour), so the two runs would differ by design, not by a bug."""
    for name, child in model.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(model, name, nn.Identity())
        else:
            without_batchnorm(child)
    return model


def classifier_case(reference: bool) -> dict:
    """Text + image, gated fusion, uncertainty-weighted auxiliary losses; accuracy on val."""
    data = make_classification(96, 40, 8, image_size=8, seed=3)
    train, val, _ = data.datasets()
    seed_everything(0)
    model = without_batchnorm(build_classifier(
        "gated", vocab_size=len(data.vocab), num_classes=4, dim=16, aux_weight=0.5,
        aux_weighting="uncertainty", image_kwargs={"channels": (8, 16)}))
    history = fit(model, loader(train, shuffle=True, reference=reference),
                  loader(val, shuffle=False, reference=reference, batch_size=12),
                  epochs=EPOCHS, lr=2e-2, seed=0, progress=False)
    return {"state": model.state_dict(), "history": history.to_dict("list")}


def tagger_case(reference: bool) -> dict:
    """Text-only CNN-BiLSTM-CRF; entity F1 (seqeval) over the gathered val predictions."""
    data = make_mner(128, 30, 4, seed=1)
    train, val, _ = data.datasets()
    seed_everything(0)
    model = build_tagger(vocab_size=len(data.vocab), num_tags=len(data.tag_map),
                         char_vocab_size=len(data.char_vocab), encoder="cnn-bilstm", dim=16)
    history = fit(model, loader(train, shuffle=True, reference=reference),
                  loader(val, shuffle=False, reference=reference, batch_size=7),
                  epochs=EPOCHS, lr=5e-2, seed=0, progress=False, metric="f1",
                  tag_names=list(data.tag_map.tags))
    return {"state": model.state_dict(), "history": history.to_dict("list")}


CASES = {"classifier": classifier_case, "tagger": tagger_case}


def main(out: Path) -> None:
    torch.set_num_threads(1)
    for name, case in CASES.items():
        result = case(reference=False)
        result.update(rank=distributed.rank(), world_size=distributed.world_size(),
                      main=distributed.is_main_process())
        torch.save(result, out / f"{name}.rank{distributed.rank()}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
