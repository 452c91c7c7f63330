"""Checkpoints: the weights of a model and JSON metadata in one file, loaded safely.

``save_checkpoint`` writes ``{"state_dict": ..., "extra": json}`` with ``torch.save``;
``load_checkpoint`` reads it with ``torch.load(weights_only=True)``, so opening a file cannot
run code, and turns every way a file can be wrong (missing, corrupt, not a checkpoint, built
for another model) into a ``ValueError`` that names the file. Re-exported by
:mod:`mmtutor.train`.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Mapping
from os import PathLike

import torch
from torch import nn

from mmtutor.utils import get_device

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(model: nn.Module, path: str | PathLike, **extra: object) -> None:
    """Save the weights of ``model`` and JSON-able metadata (vocabulary, tag names, config).

    Args:
        model: the model whose ``state_dict`` to save (stored on the CPU).
        path: the file to write.
        **extra: metadata; must survive ``json.dumps`` (lists, dicts, strings, numbers).

    Raises:
        ValueError: if ``extra`` holds something JSON cannot store.
    """
    try:
        meta = json.dumps(extra)
    except TypeError as err:
        raise ValueError(f"extra metadata must be JSON-serialisable (lists, dicts, strings, "
                         f"numbers): {err}") from err
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "extra": meta}, path)


def load_checkpoint(
    path: str | PathLike,
    model: nn.Module | None = None,
    *,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module | dict[str, torch.Tensor], dict[str, object]]:
    """Load a file written by :func:`save_checkpoint`, safely (``weights_only=True``).

    ``weights_only=True`` lets ``torch.load`` read tensors and plain containers only, so a
    file cannot run code when it is opened (a full pickle can).

    Args:
        path: the file.
        model: a model of the same architecture to load the weights into; it is moved
            to ``device``. ``None`` returns the state dict instead.
        device: where to put the tensors.

    Returns:
        ``(model, extra)`` or, without ``model``, ``(state_dict, extra)``.

    Raises:
        ValueError: naming the file, if it does not exist, is corrupt or truncated, holds
            arbitrary Python objects, is not a checkpoint (no ``state_dict`` of tensors or no
            JSON ``extra`` metadata), or does not fit ``model``: a missing or unexpected
            parameter, or a shape mismatch (the parameter, its shape in the file and the shape
            the model wants).
    """
    device = get_device(device)
    saved = _read_checkpoint(path, device)
    if not isinstance(saved, dict) or set(saved) != {"state_dict", "extra"}:
        found = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        raise ValueError(f"{path} is not a file written by save_checkpoint: found {found}; "
                         "expected the keys 'extra' and 'state_dict'")
    state = saved["state_dict"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(f"{path}: 'state_dict' is not a mapping from parameter names to "
                         "tensors; expected a file written by save_checkpoint")
    try:
        extra = json.loads(saved["extra"])
    except (TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: the metadata 'extra' is not JSON text ({err}); expected a "
                         "file written by save_checkpoint") from None
    if model is None:
        return state, extra
    _check_fits(path, model, state)
    model.load_state_dict(state)
    return model.to(device), extra


def _read_checkpoint(path: str | PathLike, device: torch.device) -> object:
    """``torch.load(path, weights_only=True)`` with every failure as a ``ValueError``."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder; expected a checkpoint file") from None
    except pickle.UnpicklingError as err:
        if "global" in str(err):  # a class or function that weights_only refuses to import
            raise ValueError(f"{path} holds Python objects that weights_only=True refuses to "
                             "unpickle; only load files written by save_checkpoint") from err
        raise ValueError(f"{path} is corrupt: torch.load (weights_only=True) cannot read it; "
                         "expected a file written by save_checkpoint") from err
    except (RuntimeError, EOFError, KeyError, OSError, zipfile.BadZipFile) as err:
        # a truncated zip archive, an empty file, a text file...
        raise ValueError(f"{path} is corrupt or not a PyTorch file ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else 'no details'}); expected "
                         "a file written by save_checkpoint") from err


def _check_fits(path: str | PathLike, model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Raise a ``ValueError`` naming the first parameter of ``state`` that ``model`` lacks,
    misses or wants with another shape."""
    wanted = model.state_dict()
    missing = [k for k in wanted if k not in state]
    unexpected = [k for k in state if k not in wanted]
    if missing or unexpected:
        raise ValueError(f"{path} does not fit the model {type(model).__name__}: parameters "
                         f"missing from the file {missing[:5]}, in the file but not in the "
                         f"model {unexpected[:5]}; was it saved from another architecture?")
    for name, tensor in state.items():
        if tensor.shape != wanted[name].shape:
            raise ValueError(f"{path} does not fit the model {type(model).__name__}: parameter "
                             f"{name!r} has shape {tuple(tensor.shape)} in the file, but the "
                             f"model wants {tuple(wanted[name].shape)} (built with other "
                             "sizes, e.g. another vocabulary or dim?)")
