"""Controlled experiments: train several methods on several generated settings, over seeds.

:func:`run_grid` is the loop behind the book's comparison of fusion levels: for every
setting (a set of :func:`~mmtutor.data.make_classification` knobs) and every seed it draws
the data, trains every method on it, scores each on the test split (and on optional test
variants, e.g. with images missing) and returns one tidy row per run, next to the ceilings
of that test split.

A method is a small dict:

* ``{"modality": "text"}``: a unimodal baseline (:func:`~mmtutor.models.build_unimodal_classifier`);
* ``{"fusion": "concat", "hidden": 64}``: a fused model (:func:`~mmtutor.models.build_classifier`;
  the other keys are its arguments);
* ``{"fusion": "average", "experts": {"text": "text only", "image": "image only"}}``: late
  fusion of methods trained earlier in the same grid (no training of its own): their
  predicted distributions are combined by the decision-level fusion module, which drops the
  experts whose modality is missing.

Every trained method goes through :func:`mmtutor.tasks.train_classifier` (build after
seeding, fit, select on the validation split), the function the chapters and
``python -m mmtutor classify`` use. This module sits above :mod:`mmtutor.tasks`; nothing in
the package imports it. (:func:`encoder_param_groups` lives in :mod:`mmtutor.tasks`; it is
re-exported here.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from mmtutor.data import (
    MODES,
    ClassificationData,
    ClassificationDataset,
    ClassificationSplit,
    channel_stats,
    make_classification,
)
from mmtutor.fusion import FUSION_LEVELS, FUSIONS, Fusion, build_fusion
from mmtutor.tasks import ClassifyConfig, encoder_param_groups, train_classifier
from mmtutor.train import count_parameters
from mmtutor.utils import get_device

__all__ = ["run_grid", "encoder_param_groups", "split_loader", "fuse_probabilities"]

_RESERVED = ("modality", "fusion", "experts")


def split_loader(data: ClassificationData, split: ClassificationSplit,
                 batch_size: int = 128) -> DataLoader:
    """An unshuffled loader for ``split``, encoded like the training data of ``data``.

    Use it to predict on the training split in order (e.g. for stacking), or on a split
    drawn with other knobs (e.g. ``make_classification(..., missing_image=0.5).test``):
    the captions are encoded with ``data.vocab`` and the images normalised with the
    statistics of ``data.train``, exactly as ``data.loaders()`` does.

    Args:
        data: the data the models were trained on.
        split: any :class:`~mmtutor.data.ClassificationSplit` with the same image size.
        batch_size: samples per batch.

    Returns:
        A ``DataLoader`` of batch dicts in the order of ``split``.
    """
    mean, std = channel_stats(data.train.images, data.train.image_present)
    ds = ClassificationDataset(split.images, split.captions, split.labels, data.vocab,
                               split.image_present, split.text_present, mean=mean, std=std)
    return DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=ds.collate)


def _scores(probs: np.ndarray, split) -> dict[str, float]:
    """Accuracy overall, on the synergy samples and on the samples missing a modality."""
    right = probs.argmax(axis=1) == split.labels  # (N,)
    synergy = split.mode == MODES.index("synergy")
    missing = ~(split.image_present & split.text_present)
    return {
        "accuracy": float(right.mean()),
        "synergy_accuracy": float(right[synergy].mean()) if synergy.any() else float("nan"),
        "missing_accuracy": float(right[missing].mean()) if missing.any() else float("nan"),
    }


def fuse_probabilities(
    fusion: Fusion | str,
    probs: Mapping[str, np.ndarray],
    present: Mapping[str, np.ndarray] | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Combine per-modality class probabilities with a decision-level fusion module.

    The modules take logits; log-probabilities are valid logits, since
    ``softmax(log p) = p``. So this takes ``log p_m`` (clipped at ``1e-12``, so a
    probability of 0 stays finite), fuses them, and returns ``exp`` of the fused
    log-probabilities.

    Args:
        fusion: a decision-level module (``AverageFusion(...)``...) or a name of
            :data:`~mmtutor.fusion.FUSIONS` (then built with ``**kwargs``).
        probs: ``{m: (N, C)}`` probabilities per modality (NumPy arrays).
        present: optional ``{m: (N,)}`` bool; the module drops the modalities that are
            missing for a sample.

    Returns:
        ``(N, C)`` fused probabilities.
    """
    if isinstance(fusion, str):
        C = next(iter(probs.values())).shape[1]
        fusion = build_fusion(fusion, dict.fromkeys(probs, C), **kwargs)
    if getattr(fusion, "input_kind", None) != "logits":
        raise ValueError(f"fusion must be a decision-level fusion (input_kind 'logits'), got "
                         f"{type(fusion).__name__}")
    logits = {m: torch.from_numpy(np.log(np.clip(np.asarray(p, dtype=np.float64), 1e-12, 1.0)))
              for m, p in probs.items()}  # {m: (N, C)}
    flags = None if present is None else {m: torch.as_tensor(np.asarray(v, dtype=bool))
                                          for m, v in present.items()}
    with torch.no_grad():
        return fusion(logits, flags).exp().numpy()  # (N, C)


def _check_methods(methods: Mapping[str, Mapping[str, Any]]) -> None:
    seen: list[str] = []
    for name, spec in methods.items():
        kinds = [k for k in _RESERVED[:2] if k in spec]
        if len(kinds) != 1:
            raise ValueError(f"methods[{name!r}] must have exactly one of 'modality' or "
                             f"'fusion', got {dict(spec)}")
        if "fusion" in spec and spec["fusion"] not in FUSIONS:
            raise ValueError(f"methods[{name!r}]['fusion'] must be one of {sorted(FUSIONS)}, "
                             f"got {spec['fusion']!r}")
        experts = spec.get("experts")
        if experts is not None:
            if FUSIONS[spec["fusion"]].input_kind != "logits":
                raise ValueError(f"methods[{name!r}] has 'experts', so its fusion must be a "
                                 f"decision-level one, got {spec['fusion']!r}")
            unknown = [e for e in experts.values() if e not in seen]
            if unknown:
                raise ValueError(f"methods[{name!r}]['experts'] names {unknown}; list those "
                                 f"methods before it (known so far: {seen})")
        seen.append(name)


def _config(name: str, options: Mapping[str, Any], modality: str | None, fusion: str | None,
            **training: Any) -> ClassifyConfig:
    """A method's :class:`~mmtutor.tasks.ClassifyConfig`: its options that are config fields
    go there (``dim``, ``hidden``, ``aux_weight``...), ``image_kwargs={"channels": ...}``
    becomes ``image_channels``, and the rest are the fusion's own arguments."""
    known = {f for f in ClassifyConfig.__dataclass_fields__}
    options = dict(options)
    image = dict(options.pop("image_kwargs", None) or {})
    if set(image) - {"channels"}:
        raise ValueError(f"methods[{name!r}]: image_kwargs may only set 'channels', got {image}")
    if "channels" in image:
        options["image_channels"] = list(image["channels"])
    fields = {k: v for k, v in options.items() if k in known}
    extra = {k: v for k, v in options.items() if k not in known}
    device = training.pop("device")
    return ClassifyConfig(**fields, modality=modality or "both", fusion=fusion or "concat",
                          fusion_kwargs=extra, encoder_lr=dict(training.pop("encoder_lr") or {}),
                          weight_decay=0.01,  # torch.optim.AdamW's default, as the grid always used
                          device=str(device), **training)


def run_grid(
    settings: Mapping[str, Mapping[str, Any]],
    methods: Mapping[str, Mapping[str, Any]],
    seeds: Sequence[int] = (0, 1, 2),
    *,
    data: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
    epochs: int = 6,
    lr: float = 1e-2,
    encoder_lr: Mapping[str, float] | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> pd.DataFrame:
    """Train and score every method on every setting for every seed.

    Args:
        settings: ``{name: knobs}``: arguments of :func:`~mmtutor.data.make_classification`
            (``synergy``, ``text_noise``, ``missing_image``...). The reserved key ``"tests"``
            maps names to knob overrides for extra test splits drawn with the same seed
            (e.g. ``{"image missing": {"missing_image": 0.5}}``), scored with the models
            trained on the setting's own data.
        methods: ``{name: spec}`` (see the module docstring), in training order.
        seeds: one run of every setting and method per seed (data, initial weights, batches).
        data: knobs shared by every setting (``n_train``, ``image_size``...); a setting's own
            knobs win.
        model: builder arguments shared by every method (``dim``, ``hidden``...); a
            method's own win.
        epochs, lr, batch_size: passed to :func:`~mmtutor.train.fit` / the loaders.
        encoder_lr: per-modality encoder learning rates, see :func:`encoder_param_groups`.
        device: where to train (default :func:`~mmtutor.utils.get_device`).

    Returns:
        One row per (setting, test, seed, method): ``setting``, ``test`` (``"standard"``
        for the setting's own test split), ``seed``, ``method``, ``level`` (``"unimodal"``,
        ``"feature"``, ``"model"`` or ``"decision"``), ``accuracy``, ``synergy_accuracy``
        (on the synergy-mode samples), ``missing_accuracy`` (on the samples missing a
        modality), the ceilings ``ceiling_text``, ``ceiling_image``, ``ceiling_joint`` and
        ``chance`` of that test split, ``params`` and training ``seconds`` (for late fusion
        of experts: the sums over its experts).

    Examples:
        >>> frame = run_grid({"redundant": {"redundancy": 1.0, "synergy": 0.0}},
        ...                  {"text only": {"modality": "text"}}, seeds=[0],
        ...                  data={"n_train": 64, "n_val": 16, "n_test": 32, "image_size": 8},
        ...                  model={"dim": 8}, epochs=1, device="cpu")
        >>> frame[["setting", "test", "method", "level"]].values.tolist()
        [['redundant', 'standard', 'text only', 'unimodal']]
    """
    _check_methods(methods)
    if not settings or not seeds:
        raise ValueError(f"settings and seeds must be non-empty, got {len(settings)} settings "
                         f"and seeds={list(seeds)}")
    device = get_device(device)
    rows = []
    for setting, knobs in settings.items():
        knobs = {**(data or {}), **knobs}
        tests = knobs.pop("tests", {})
        for seed in seeds:
            ds = make_classification(**knobs, seed=seed)
            splits = {"standard": (ds.test, ds.ceilings)}
            for test, overrides in tests.items():
                variant = make_classification(**{**knobs, **overrides}, seed=seed)
                splits[test] = (variant.test, variant.ceilings)
            probs: dict[str, dict[str, np.ndarray]] = {}  # method -> test -> (N, C)
            cost: dict[str, tuple[int, float]] = {}  # method -> (parameters, seconds)
            for name, spec in methods.items():
                kwargs = {k: v for k, v in spec.items() if k not in _RESERVED}
                experts = spec.get("experts")
                if experts is not None:  # late fusion of trained experts: no training
                    level = FUSION_LEVELS[spec["fusion"]]
                    parts = [cost[e] for e in experts.values()]
                    cost[name] = (sum(p for p, _ in parts), sum(t for _, t in parts))
                    probs[name] = {
                        t: fuse_probabilities(
                            spec["fusion"], {m: probs[e][t] for m, e in experts.items()},
                            {m: getattr(split, f"{m}_present") for m in experts}, **kwargs)
                        for t, (split, _) in splits.items()
                    }
                    rows += _rows(setting, seed, name, level, splits, probs[name], cost[name])
                    continue
                config = _config(name, {**(model or {}), **kwargs}, spec.get("modality"),
                                 spec.get("fusion"), seed=seed, epochs=epochs, lr=lr,
                                 encoder_lr=encoder_lr, batch_size=batch_size, device=device)
                level = "unimodal" if "modality" in spec else FUSION_LEVELS[spec["fusion"]]
                run = train_classifier(ds.train, ds.val if len(ds.val) else None, config=config,
                                       class_names=ds.class_names)
                cost[name] = (count_parameters(run.model), float(run.history["seconds"].sum()))
                probs[name] = {t: run.predict_proba(split) for t, (split, _) in splits.items()}
                rows += _rows(setting, seed, name, level, splits, probs[name], cost[name])
    return pd.DataFrame(rows)


def _rows(setting, seed, method, level, splits, probs, cost) -> list[dict[str, Any]]:
    """One result row per test split of one trained (or combined) method."""
    return [
        {
            "setting": setting, "test": test, "seed": seed, "method": method, "level": level,
            **_scores(probs[test], split),
            **{f"ceiling_{k}": ceilings[k] for k in ("text", "image", "joint")},
            "chance": ceilings["chance"], "params": cost[0], "seconds": cost[1],
        }
        for test, (split, ceilings) in splits.items()
    ]
