"""What the NER and the classification pipelines share, written once.

* :class:`TaskConfig`: a settings dataclass that goes to and comes back from JSON, with
  unknown keys and wrong types refused (the checkpoint and ``metrics.json`` store it; the
  command line builds its options from the fields and their ``metadata["help"]``);
* :func:`save_run` / :func:`load_run`: one checkpoint file (weights + validated metadata),
  read with ``torch.load(weights_only=True)``; nothing in a checkpoint is ever downloaded,
  imported or executed, and a corrupt or mismatched file is a ``ValueError`` naming it;
* the device: configs hold ``"auto"`` (or a name), checkpoints always store ``"auto"``, and
  :func:`run_device` resolves it only when a model runs, so a run trained on a GPU loads on
  a CPU;
* :class:`TrainedRun`: the fields every trained run records (history, sizes, seconds);
* :func:`encoder_param_groups`: optimiser groups with a learning rate per encoder;
* :func:`plain` / :func:`write_json`: run summaries (``metrics.json``).
"""

from __future__ import annotations

import json
import math
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mmtutor.train import load_checkpoint, save_checkpoint
from mmtutor.utils import get_device

__all__ = ["TaskConfig", "save_run", "load_run", "load_weights", "run_device", "TrainedRun",
           "vocab_table", "vocab_from_table", "encoder_param_groups", "plain", "frame_table",
           "write_json", "history_records"]



def _type_ok(value: object, hint: object) -> bool:
    """Whether a JSON value fits a field's type hint (int, float, str, bool, None, list, dict)."""
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return isinstance(value, (list, tuple)) and all(_type_ok(v, item) for v in value)
    if origin in (dict, Mapping):
        key, item = typing.get_args(hint) or (Any, Any)
        return isinstance(value, dict) and all(
            _type_ok(k, key) and _type_ok(v, item) for k, v in value.items())
    return isinstance(value, hint) if isinstance(hint, type) else False


def _type_name(hint: object) -> str:
    return str(hint).replace("typing.", "") if not isinstance(hint, type) else hint.__name__


class TaskConfig:
    """Mixin of the task config dataclasses: validation and a JSON round trip.

    Each field may carry ``metadata`` that states its rule once, for the Python API, the
    checkpoint reader and the command line (:mod:`mmtutor.cli` turns the fields into
    options, so they cannot drift): ``"help"``, ``"choices"``, ``"min"`` (``>=``),
    ``"above"`` (``>``), ``"below"`` (``<``); the type comes from the annotation.
    """

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            value, rule = getattr(self, f.name), f.metadata
            if not _type_ok(value, hints[f.name]):
                raise ValueError(f"{f.name} must be of type {_type_name(hints[f.name])}, got "
                                 f"{value!r:.80}")
            if value is None or isinstance(value, dict):
                continue
            if "choices" in rule and value not in rule["choices"]:
                raise ValueError(f"{f.name} must be one of {tuple(rule['choices'])}, got {value!r}")
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, (int, float)) and not (
                        math.isfinite(item) and item >= rule.get("min", -math.inf)
                        and item > rule.get("above", -math.inf)
                        and item < rule.get("below", math.inf)):
                    bounds = ", ".join(f"{k} {rule[k]}" for k in ("min", "above", "below")
                                       if k in rule)
                    raise ValueError(f"{f.name} must be a finite number ({bounds}), got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain, JSON-able dict (what checkpoints and ``metrics.json`` hold)."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, where: str = "config") -> Any:
        """Rebuild a config from :meth:`to_dict` output.

        Args:
            values: field name -> JSON value.
            where: names the source in error messages (e.g. the checkpoint file).

        Raises:
            ValueError: for a value that is not a dict, an unknown key (naming it and the
                known ones), a value of the wrong type, or a value out of range.
        """
        if not isinstance(values, Mapping):
            raise ValueError(f"{where}: expected a JSON object of {cls.__name__} fields, got "
                             f"{type(values).__name__}")
        hints = typing.get_type_hints(cls)
        known = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"{where}: unknown {cls.__name__} fields {unknown}; expected some "
                             f"of {known}")
        for name, value in values.items():
            if not _type_ok(value, hints[name]):
                raise ValueError(f"{where}: {cls.__name__}.{name} is {value!r:.80}, which is "
                                 f"not of type {_type_name(hints[name])}")
        try:
            return cls(**values)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None


def run_device(device: str | torch.device | None) -> torch.device:
    """Resolve a config's device now (``"auto"``: CUDA, then MPS, then CPU; ``None``: ``$MMTUTOR_DEVICE``)."""
    return get_device(device)


def save_run(path: str | os.PathLike[str], model: nn.Module, *, kind: str,
             config: TaskConfig, **meta: Any) -> Path:
    """Write weights and metadata to one file; the config's device is stored as ``"auto"``.

    Args:
        path: the file (its folder is created).
        model: the trained model.
        kind: the checkpoint format, e.g. ``"mmtutor-classify/1"``.
        config: the run's settings.
        **meta: other JSON-able metadata (vocabularies, class names, image statistics...).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {**config.to_dict(), "device": "auto"}  # never the machine's resolved device
    save_checkpoint(model, path, format=kind, config=settings, **{k: plain(v) for k, v in meta.items()})
    return path


def load_run(path: str | os.PathLike[str], *, kind: str, config_cls: type,
             meta: Mapping[str, object]) -> tuple[dict[str, torch.Tensor], Any, dict[str, Any]]:
    """Read a :func:`save_run` file and validate every piece of its metadata.

    Args:
        path: the file.
        kind: the expected format.
        config_cls: the config dataclass (a :class:`TaskConfig`).
        meta: the other metadata keys and their type hints, e.g. ``{"classes": list}``;
            a missing or extra key, or a wrong type, is an error.

    Returns:
        ``(state_dict, config, metadata)``, the tensors on the CPU.

    Raises:
        ValueError: naming the file, for a file that is not a checkpoint of this kind,
            holds pickled objects, is corrupt or has metadata that does not validate.
    """
    try:
        state, extra = load_checkpoint(path, device="cpu")
    except ValueError as err:
        raise ValueError(str(err) if str(path) in str(err) else f"{path}: {err}") from None
    except Exception as err:  # corrupt zip, truncated file, bad JSON...: one clear message
        raise ValueError(f"{path}: not a readable checkpoint ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''})") from None
    if not isinstance(extra, dict) or extra.get("format") != kind:
        found = extra.get("format") if isinstance(extra, dict) else None
        raise ValueError(f"{path}: not a {kind!r} checkpoint (its format is {found!r})")
    wanted = {"format", "config", *meta}
    if set(extra) != wanted:
        raise ValueError(f"{path}: checkpoint metadata has keys {sorted(extra)}; expected "
                         f"exactly {sorted(wanted)}")
    for name, hint in meta.items():
        if not _type_ok(extra[name], hint):
            raise ValueError(f"{path}: metadata {name!r} is {extra[name]!r:.80}, not a {hint}")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: the weights are not a dict of tensors")
    config = config_cls.from_dict(extra["config"], where=f"{path}: config")
    return state, config, {k: extra[k] for k in meta}


def load_weights(path: str | os.PathLike[str], model: nn.Module,
                 state: Mapping[str, torch.Tensor]) -> None:
    """``model.load_state_dict(state)``, with a mismatch reported as a ``ValueError`` naming ``path``."""
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path}: the weights do not fit the model its config describes "
                         f"({str(err).splitlines()[0]} ...)") from None


@dataclass(eq=False, kw_only=True)
class TrainedRun:
    """What every trained run records about its training, whatever the task.

    :class:`~mmtutor.tasks.NERRun` and :class:`~mmtutor.tasks.ClassifierRun` add their model,
    config, tables and scores; these fields are keyword-only, after theirs.

    Attributes:
        history: one row per epoch from :func:`mmtutor.train.fit` (``None`` once loaded).
        sizes: number of examples per split.
        train_seconds: wall time of training.
        word_vector_coverage: with ``config.word_vectors``, the share of the vocabulary the
            pretrained vectors cover, the dev and test words added by
            :func:`~mmtutor.tasks._fitted.word_vocab`
            included (``None`` otherwise, and once loaded).
    """

    history: pd.DataFrame | None = None
    sizes: dict[str, int] = field(default_factory=dict)
    train_seconds: float = 0.0
    word_vector_coverage: float | None = None

    @property
    def device(self) -> torch.device:
        """Where the model runs (``config.device`` resolved on this machine)."""
        return run_device(self.config.device)  # type: ignore[attr-defined]


def vocab_table(vocab: Any) -> dict[str, Any] | None:
    """A :class:`~mmtutor.data.Vocab` / ``CharVocab`` as checkpoint metadata (``None`` stays ``None``)."""
    return None if vocab is None else {"symbols": vocab.symbols, "lowercase": vocab.lowercase}


def vocab_from_table(path: str | os.PathLike[str], kind: type, saved: Any) -> Any:
    """Rebuild a vocabulary of class ``kind`` from :func:`vocab_table` output, checking it.

    Raises:
        ValueError: naming ``path``, if ``saved`` is not ``{"symbols": [str], "lowercase": bool}``
            with the ``<pad>``/``<unk>`` symbols first.
    """
    if saved is None:
        return None
    symbols = saved.get("symbols") if isinstance(saved, dict) else None
    if (not isinstance(saved, dict) or set(saved) != {"symbols", "lowercase"}
            or not isinstance(saved["lowercase"], bool) or not isinstance(symbols, list)
            or not all(isinstance(t, str) for t in symbols) or len(symbols) < 2):
        raise ValueError(f"{path}: a saved vocabulary must be {{'symbols': [str, ...], "
                         f"'lowercase': bool}}, got {saved!r:.80}")
    return kind(symbols[2:], lowercase=saved["lowercase"])


def encoder_param_groups(model: nn.Module, lr: float,
                         encoder_lr: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """Optimiser parameter groups that give some modalities' encoders their own learning rate.

    An embedding table learns slowly under Adam at a learning rate that suits a CNN: each
    row moves only when its word is in the batch, and a bag of words dilutes it. A larger
    learning rate for the text encoder lets both modalities learn in the same few epochs.

    Args:
        model: a :class:`~mmtutor.models.MultimodalClassifier` (``model.encoders``), a
            :class:`~mmtutor.models.UnimodalClassifier` (``model.encoder``, ``model.modality``)
            or a :class:`~mmtutor.models.MultimodalTagger` (``text_encoder``, ``image_encoder``).
        lr: the learning rate of every other parameter.
        encoder_lr: ``{modality: learning rate}`` (modalities without an encoder are
            skipped); ``None`` or ``{}``: one group.

    Returns:
        A list of ``{"params": [...], "lr": ...}`` dicts for ``torch.optim.AdamW``.

    Examples:
        >>> from mmtutor.models import build_classifier
        >>> model = build_classifier("concat", vocab_size=50, num_classes=3, dim=8)
        >>> [g["lr"] for g in encoder_param_groups(model, 0.01, {"text": 0.05})]
        [0.05, 0.01]
    """
    encoders = getattr(model, "encoders", None)
    if encoders is None and hasattr(model, "encoder"):
        encoders = {model.modality: model.encoder}
    if encoders is None and hasattr(model, "text_encoder"):  # a MultimodalTagger
        encoders = {"text": model.text_encoder, "image": model.image_encoder}
    if encoder_lr and encoders is None:
        raise ValueError(f"encoder_lr={dict(encoder_lr)} needs a model with 'encoders' or "
                         f"'encoder', got a {type(model).__name__}")
    groups, taken = [], set()
    for modality, rate in (encoder_lr or {}).items():
        if modality not in encoders or encoders[modality] is None:  # ModuleDict: no .get
            continue
        params = [p for p in encoders[modality].parameters() if p.requires_grad]
        taken |= {id(p) for p in params}
        groups.append({"params": params, "lr": float(rate)})
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in taken]
    return [*groups, {"params": rest, "lr": float(lr)}] if rest else groups


def plain(value: object) -> object:
    """A JSON-able copy: NumPy scalars and arrays to Python numbers and lists, NaN to ``None``."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def frame_table(frame: pd.DataFrame) -> dict[str, dict[str, object]]:
    """A report frame as ``{row: {column: value}}`` plain JSON."""
    return {str(row): {str(c): plain(v) for c, v in values.items()}
            for row, values in frame.to_dict(orient="index").items()}


def history_records(history: pd.DataFrame | None) -> list[dict[str, object]] | None:
    """``fit``'s history (one row per epoch) as JSON records."""
    return None if history is None else [plain(r) for r in history.to_dict(orient="records")]


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> Path:
    """Write a run summary (e.g. ``metrics.json``), UTF-8, indented; NaN becomes ``null``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(plain(data), f, indent=2, allow_nan=False)
    return path
