"""One training loop for every model of the book, plus evaluation and checkpoints.

Every model follows the same small protocol (see ``CONTRIBUTING.md``):

* ``loss(batch) -> Tensor`` (a scalar), used to train;
* ``predict(batch)`` -> class indices ``(B,)`` (classifiers) or one list of tag indices per
  sentence (taggers), used to score;
* optionally ``loss_and_predict(batch) -> (loss, prediction)``, both from one forward pass;
  evaluation uses it when the model has it (every model of :mod:`mmtutor.models` does), else
  calls ``loss`` and ``predict``;
* optionally ``predict_proba(batch) -> (B, C)`` probabilities (classifiers).

so :func:`fit` is plain empirical risk minimisation, ``min_θ 1/N Σ_i L(y_i, f(x_i; θ))``
(plus weight decay), written once.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from mmtutor import distributed
from mmtutor import metrics as mm
from mmtutor.checkpoints import load_checkpoint, save_checkpoint
from mmtutor.utils import get_device, seed_everything

with warnings.catch_warnings():
    # In Jupyter without ipywidgets, tqdm.auto warns on import and falls back to text bars;
    # the book's notebooks train with progress=False, so the warning only clutters each page.
    warnings.simplefilter("ignore")
    from tqdm.auto import tqdm

__all__ = [
    "move_batch",
    "fit",
    "evaluate",
    "predict",
    "predict_proba",
    "save_checkpoint",
    "load_checkpoint",
    "count_parameters",
]

Metric = str | Callable[[object, object], float]
IGNORE_INDEX = -100  # tag of padding (and of non-first sub-words); ignored by every score


def move_batch(batch: Mapping[str, object], device: torch.device | str) -> dict[str, object]:
    """Return a copy of ``batch`` with every tensor on ``device`` (other values unchanged)."""
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


@contextlib.contextmanager
def _restore_cudnn_flags() -> Iterator[None]:
    """Put cuDNN's process-wide ``deterministic`` / ``benchmark`` flags back on exit."""
    cudnn = torch.backends.cudnn
    saved = (cudnn.deterministic, cudnn.benchmark)
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved


@_restore_cudnn_flags()  # fit seeds with deterministic cuDNN; the caller's flags come back
def fit(
    model: nn.Module,
    train_loader: Iterable[Mapping[str, torch.Tensor]],
    val_loader: Iterable[Mapping[str, torch.Tensor]] | None = None,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    weight_decay: float = 0.0,
    schedule: str = "cosine",
    metric: Metric = "accuracy",
    patience: int | None = None,
    clip_grad_norm: float | None = 1.0,
    amp: bool = False,
    device: str | torch.device | None = None,
    seed: int = 0,
    progress: bool = True,
    tag_names: list[str] | None = None,
) -> pd.DataFrame:
    """Train ``model`` with AdamW on ``model.loss``; score it on ``val_loader`` each epoch.

    With a ``val_loader`` the model ends with the weights of its best epoch (highest
    validation metric), and ``patience`` stops training after that many epochs without
    improvement (early stopping). Runs are repeatable: the same ``seed``, data and initial
    weights give the same history (build the model after ``seed_everything`` to fix those).

    Args:
        model: follows the protocol ``loss(batch)`` / ``predict(batch)``.
        train_loader: yields batches (dicts of tensors, see ``CONTRIBUTING.md``).
        val_loader: batches to score after each epoch, or ``None``.
        epochs: number of passes over ``train_loader``.
        lr: learning rate of the default AdamW optimiser.
        optimizer: an optimiser over ``model``'s parameters, instead of AdamW; ``lr`` and
            ``weight_decay`` are then unused (set them in its parameter groups), and the
            schedule anneals each group from its own learning rate.
        weight_decay: AdamW's decoupled weight decay ``λ``: each step also shrinks every
            weight, ``w <- w - lr λ w`` (Loshchilov & Hutter, ICLR 2019); with Adam this is
            not the same as adding ``λ‖w‖²`` to the loss.
        schedule: ``"cosine"`` anneals the learning rate from ``lr`` to 0 over all steps
            (Loshchilov & Hutter, ICLR 2017), which also lets BatchNorm's running statistics
            settle before the last epochs; ``"constant"`` keeps ``lr``.
        metric: ``"accuracy"``, ``"f1"`` (macro F1 for classifiers; entity F1 via
            seqeval for taggers, which needs ``tag_names``) or a callable
            ``metric(y_true, y_pred) -> float``; higher must be better.
        patience: stop after this many epochs without a better validation metric.
        clip_grad_norm: clip the gradients' global norm to this (``None``: no clipping).
        amp: mixed precision (``torch.autocast`` + ``GradScaler``) on CUDA; ignored with
            a warning elsewhere.
        device: where to train (default: :func:`mmtutor.utils.get_device`).
        seed: seeds Python, NumPy and PyTorch (data order, dropout) at the start.
        progress: show a tqdm progress bar over the epochs.
        tag_names: tag strings by index, for ``metric="f1"`` on a tagger.

    Returns:
        One row per epoch: ``epoch``, ``train_loss``, then (with ``val_loader``)
        ``val_loss`` and ``val_<metric>``, and ``seconds``.

    Under ``torchrun --nproc_per_node N`` the same call trains data-parallel (see
    :mod:`mmtutor.distributed`): each process reads ``1/N`` of every batch of
    ``train_loader``, DDP averages the gradients, the validation metric is computed over
    all processes' predictions, and only rank 0 shows progress. The result matches one
    process with the same loader, up to floating-point rounding (and BatchNorm statistics).

    Note:
        Training switches cuDNN to deterministic kernels (``seed_everything``); the previous
        ``torch.backends.cudnn.deterministic`` and ``benchmark`` settings are restored when
        ``fit`` returns or raises, so code run after it keeps its own settings.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if schedule not in {"cosine", "constant"}:
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    if patience is not None and (patience < 1 or val_loader is None):
        raise ValueError(f"patience must be None or a positive integer with a val_loader, "
                         f"got patience={patience!r}, val_loader={val_loader!r}")
    seed_everything(seed)
    device = distributed.setup(get_device(device))  # cuda:LOCAL_RANK under torchrun
    amp = _check_amp(amp, device)
    model.to(device)
    net = distributed.wrap(model, device)  # net(batch) is model.loss(batch); DDP under torchrun
    train_loader = distributed.shard_train_loader(train_loader, seed=seed)  # 1/N of each batch
    if val_loader is not None:
        val_loader = distributed.shard_eval_loader(val_loader)  # every N-th sample
    params = [p for p in model.parameters() if p.requires_grad]  # frozen encoders stay put
    optimizer = optimizer or torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)  # scales fp16 losses against underflow
    if schedule == "cosine" and not hasattr(train_loader, "__len__"):
        raise ValueError("schedule='cosine' needs a train_loader with a length (a DataLoader or "
                         "a list); use schedule='constant' for an endless iterator")
    steps = epochs * len(train_loader) if schedule == "cosine" else 0  # type: ignore[arg-type]
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1)) if steps else None
    name = _metric_name(metric)
    history, best_score, best_state, stale = [], -math.inf, None, 0
    bar = tqdm(range(1, epochs + 1), desc="epochs",
               disable=not progress or not distributed.is_main_process())
    for epoch in bar:
        start, total, seen = time.perf_counter(), 0.0, 0
        distributed.set_epoch(train_loader, epoch)  # a new shuffle per epoch under torchrun
        model.train()
        for batch in train_loader:
            batch = move_batch(batch, device)
            with torch.autocast(device.type, enabled=amp):
                loss = net(batch)  # scalar: model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if clip_grad_norm is not None:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                nn.utils.clip_grad_norm_(params, clip_grad_norm)
            scale = scaler.get_scale()
            scaler.step(optimizer)  # skipped when fp16 gradients overflowed
            scaler.update()  # ...and then the scale drops
            if scheduler is not None and scaler.get_scale() >= scale:
                scheduler.step()  # advance the schedule only after a real optimizer step
            n = _batch_size(batch)
            total, seen = total + loss.item() * n, seen + n
        total, seen = distributed.all_reduce_sum(total, seen, device=device)  # all processes
        row = {"epoch": epoch, "train_loss": total / max(seen, 1)}
        if val_loader is not None:
            scores = _validate(model, val_loader, device, metric, tag_names)
            row.update({"val_loss": scores["loss"], f"val_{name}": scores[name]})
            if scores[name] > best_score:  # keep the best weights (higher is better)
                best_score, best_state, stale = scores[name], _copy_state(model), 0
            else:
                stale += 1
        history.append({**row, "seconds": time.perf_counter() - start})
        bar.set_postfix({k: round(v, 4) for k, v in row.items() if k != "epoch"})
        if patience is not None and stale >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return pd.DataFrame(history)


def _check_amp(amp: bool, device: torch.device) -> bool:
    if amp and device.type != "cuda":
        warnings.warn(f"amp=True needs a CUDA device; training on {device} in full precision",
                      stacklevel=4)  # _check_amp, fit, the decorator's wrapper, the caller
        return False
    return bool(amp)


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the weights that later training steps do not change."""
    return copy.deepcopy(model.state_dict())


def _batch_size(batch: Mapping[str, object]) -> int:
    for value in batch.values():
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            return value.shape[0]
    raise ValueError(f"batch must hold at least one tensor with a batch dimension, "
                     f"got keys {list(batch)}")


def _metric_name(metric: Metric) -> str:
    if callable(metric):
        name = getattr(metric, "__name__", "metric")
        return "metric" if name == "<lambda>" else name
    if metric not in ("accuracy", "f1"):
        raise ValueError(f"metric must be 'accuracy', 'f1' or a callable, got {metric!r}")
    return metric


# ---------------------------------------------------------------------------- evaluation
def _unpadded(tags: torch.Tensor, predicted: list[list[int]]) -> tuple[list, list]:
    """Gold and predicted tags of each sentence, without positions tagged ``-100``.

    Args:
        tags: gold tag indices, shape ``(B, T)``, ``-100`` at padding and at sub-words
            that carry no label.
        predicted: one list of tag indices per sentence (its true length).
    """
    gold, pred = [], []
    for row, guess in zip(tags.tolist(), predicted, strict=True):
        keep = [i for i, t in enumerate(row[: len(guess)]) if t != IGNORE_INDEX]
        gold.append([row[i] for i in keep])
        pred.append([guess[i] for i in keep])
    return gold, pred


@torch.no_grad()
def _collect(model: nn.Module, loader: Iterable, device: torch.device):
    """Summed loss, sample count, gold labels and predictions over ``loader``, in eval mode.

    Gold labels and predictions are arrays ``(N,)`` for classifiers, lists of tag lists for
    taggers (one per sentence, without padding).
    """
    model.eval()
    total, seen, gold, pred, tagger = 0.0, 0, [], [], False
    one_pass = getattr(model, "loss_and_predict", None)
    for batch in loader:
        batch = move_batch(batch, device)
        n = _batch_size(batch)
        if one_pass is not None:  # one forward pass gives both
            loss, guess = one_pass(batch)
        else:
            loss, guess = model.loss(batch), model.predict(batch)
        total, seen = total + loss.item() * n, seen + n
        tagger = not isinstance(guess, torch.Tensor)
        if tagger:  # lists of tag indices per sentence
            g, p = _unpadded(batch["tags"], guess)
            gold.extend(g)  # in place: linear in the number of sentences
            pred.extend(p)
        else:
            gold.append(batch["label"].cpu())
            pred.append(guess.cpu())
    if gold and not tagger:
        gold, pred = torch.cat(gold).numpy(), torch.cat(pred).numpy()
    return total, seen, gold, pred


def _mean_loss(total: float, seen: int) -> float:
    if seen == 0:
        raise ValueError("loader yielded no batches; cannot evaluate on an empty data set")
    return total / seen


def _validate(model: nn.Module, loader: Iterable, device: torch.device, metric: Metric,
              tag_names: list[str] | None) -> dict[str, float]:
    """:func:`evaluate` inside :func:`fit`: under ``torchrun`` each process scores its shard
    and the metric is computed once over all processes' predictions (the same everywhere)."""
    parts = distributed.gather(_collect(model, loader, device))  # one (total, seen, ...) per rank
    total, seen = sum(p[0] for p in parts), sum(p[1] for p in parts)
    gold = [g for p in parts for g in p[2]]  # sentences, or labels, of every shard
    pred = [g for p in parts for g in p[3]]
    if any(not isinstance(p[2], list) for p in parts):  # classifiers: back to arrays (N,)
        gold, pred = np.asarray(gold), np.asarray(pred)
    return {"loss": _mean_loss(total, seen), _metric_name(metric): _score(metric, gold, pred, tag_names)}


def _score(metric: Metric, gold, pred, tag_names: list[str] | None) -> float:
    if callable(metric):
        return float(metric(gold, pred))
    tagger = isinstance(gold, list)
    if metric == "accuracy":
        if tagger:  # token accuracy over real tokens
            gold, pred = _flat(gold), _flat(pred)
        return mm.accuracy(gold, pred)
    if not tagger:
        return mm.macro_f1(gold, pred)
    if tag_names is None:
        raise ValueError("metric='f1' on a tagger needs tag_names (tag strings by index, "
                         "e.g. ['O', 'B-PER', 'I-PER', ...]) for the entity-level F1")
    to_names = lambda sents: [[tag_names[t] for t in s] for s in sents]  # noqa: E731
    return mm.entity_f1(to_names(gold), to_names(pred))


def _flat(sentences: list[list[int]]) -> list[int]:
    """All tags of all sentences in one list (linear time, unlike ``sum(lists, [])``)."""
    return list(itertools.chain.from_iterable(sentences))


def evaluate(
    model: nn.Module,
    loader: Iterable[Mapping[str, torch.Tensor]],
    *,
    device: str | torch.device | None = None,
    metric: Metric = "accuracy",
    tag_names: list[str] | None = None,
) -> dict[str, float]:
    """Mean loss and a metric of ``model`` over ``loader`` (labelled batches).

    Args:
        model: follows the model protocol; it is moved to ``device``.
        loader: batches with ``label`` (classifiers) or ``tags`` (taggers).
        device: where to compute (default: :func:`mmtutor.utils.get_device`).
        metric: as in :func:`fit`.
        tag_names: as in :func:`fit`.

    Returns:
        ``{"loss": mean loss per sample, <metric name>: score}``.
    """
    device = get_device(device)
    model.to(device)
    total, seen, gold, pred = _collect(model, loader, device)
    return {"loss": _mean_loss(total, seen), _metric_name(metric): _score(metric, gold, pred, tag_names)}


@torch.no_grad()
def predict(
    model: nn.Module,
    loader: Iterable[Mapping[str, torch.Tensor]],
    *,
    device: str | torch.device | None = None,
) -> np.ndarray | list[list[int]]:
    """Predictions of ``model`` over ``loader`` (labels are not needed).

    Returns:
        Class indices, shape ``(N,)``, for classifiers; one list of tag indices per
        sentence (its true length) for taggers.
    """
    device = get_device(device)
    model.to(device).eval()
    outputs = [model.predict(move_batch(batch, device)) for batch in loader]
    if outputs and isinstance(outputs[0], torch.Tensor):
        return torch.cat(outputs).cpu().numpy()
    return [sentence for batch in outputs for sentence in batch]


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    loader: Iterable[Mapping[str, torch.Tensor]],
    *,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Class probabilities of a classifier over ``loader``: shape ``(N, C)``.

    Uses ``model.predict_proba(batch)`` when the model has it (late fusion returns
    log-probabilities, so it knows to take ``exp``), else ``softmax(model(batch))``.
    """
    device = get_device(device)
    model.to(device).eval()
    probs = []
    for batch in loader:
        batch = move_batch(batch, device)
        if hasattr(model, "predict_proba"):
            probs.append(model.predict_proba(batch))  # (B, C)
        else:
            probs.append(torch.softmax(model(batch), dim=-1))  # (B, C)
    return torch.cat(probs).float().cpu().numpy()


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``model`` (only those with ``requires_grad`` if asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
