"""Small helpers shared by the whole package: device choice, seeding, input checks.

Validation lives here, in one place (as in ``sklearn.utils.validation``), so every
module raises the same kind of clear ``ValueError`` for bad input.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

__all__ = ["get_device", "seed_everything", "check_tensor", "check_modalities", "format_table",
           "glue"]

_DEVICE_ENV = "MMTUTOR_DEVICE"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def get_device(preferred: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on.

    Args:
        preferred: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, a
            ``torch.device``, or ``None``. ``None`` reads the ``MMTUTOR_DEVICE``
            environment variable and falls back to ``"auto"``. ``"auto"`` picks CUDA,
            then Apple's MPS, then the CPU.

    Returns:
        The chosen ``torch.device``.

    Raises:
        ValueError: if a device is asked for by name but is not available here, or the
            name is not a device.

    Examples:
        >>> get_device("cpu")
        device(type='cpu')
    """
    if preferred is None:
        preferred = os.environ.get(_DEVICE_ENV, "auto") or "auto"
    if isinstance(preferred, torch.device):
        name = str(preferred)
    else:
        name = str(preferred).strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(
            f"device={preferred!r} is not a device name; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={preferred!r} was asked for, but PyTorch sees no CUDA GPU on this machine "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}); use 'cpu' or 'auto'"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={preferred!r} was asked for, but only {torch.cuda.device_count()} CUDA "
                "device(s) are visible"
            )
    elif device.type == "mps" and not _mps_available():
        raise ValueError(f"device={preferred!r} was asked for, but Apple's MPS backend is not available")
    elif device.type not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"device={preferred!r} is not supported; use 'auto', 'cpu', 'cuda' or 'mps'")
    return device


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU) for repeatable runs.

    Args:
        seed: the seed, a non-negative integer.
        deterministic: also switch cuDNN to deterministic kernels and turn off its
            autotuner (slower, but the same result on every run).

    Raises:
        ValueError: if ``seed`` is not a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA device too
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def check_tensor(
    name: str,
    value: object,
    shape: Sequence[int | str | None],
    *,
    dtype: str | None = None,
) -> torch.Tensor:
    """Check that ``value`` is a tensor with the expected shape; return it.

    Args:
        name: the argument's name, used in the error message.
        value: what the caller passed.
        shape: the expected shape, one entry per dimension: an ``int`` must match
            exactly; a ``str`` is a symbol (``"B"``, ``"T"``) used in the message;
            ``None`` matches anything. A leading ``"..."`` allows any leading dims.
        dtype: ``"float"``, ``"int"`` or ``"bool"`` to also check the kind of dtype.

    Raises:
        ValueError: naming the argument, the shape it got and the shape it wanted.
    """
    wanted = "(" + ", ".join("..." if s == "..." else str(s) for s in shape) + ")"
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor of shape {wanted}, got {type(value).__name__}")
    dims = list(shape)
    leading = bool(dims) and dims[0] == "..."
    if leading:
        dims = dims[1:]
    ok = value.dim() >= len(dims) if leading else value.dim() == len(dims)
    if ok:
        tail = value.shape[value.dim() - len(dims):]
        ok = all(not isinstance(s, int) or s == t for s, t in zip(dims, tail, strict=True))
    if not ok:
        raise ValueError(f"{name} must have shape {wanted}, got {tuple(value.shape)}")
    if dtype == "float" and not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if dtype == "int" and (value.is_floating_point() or value.dtype == torch.bool):
        raise ValueError(f"{name} must be an integer tensor, got dtype {value.dtype}")
    if dtype == "bool" and value.dtype != torch.bool:
        raise ValueError(f"{name} must be a boolean tensor, got dtype {value.dtype}")
    return value


def check_modalities(name: str, given: Mapping[str, object], expected: Sequence[str]) -> None:
    """Check that a mapping holds exactly the expected modality names.

    Raises:
        ValueError: naming the missing and the unexpected keys.
    """
    if not isinstance(given, Mapping):
        raise ValueError(f"{name} must be a mapping from modality name to tensor, got {type(given).__name__}")
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{name} must have the modalities {sorted(expected)}; missing {missing}, unexpected {extra}"
        )


def format_table(frame: pd.DataFrame, decimals: int = 3, missing: str = "—") -> pd.DataFrame:
    """A table as readers should see it: every float with the same decimals, a dash for gaps.

    ``display(frame.round(3))`` shows ``NaN`` where a value does not exist (a text-only model
    has no fusion gain) and drops trailing zeros unevenly (``0.96`` beside ``0.983``). This
    returns a copy of text cells instead: floats as ``f"{v:.{decimals}f}"``, integers and
    strings unchanged, and ``missing`` for ``NaN`` / ``None``.

    Args:
        frame: any table; its index and columns are kept.
        decimals: digits after the decimal point of every float.
        missing: what an absent value shows.

    Raises:
        ValueError: for a negative ``decimals``.
    """
    if isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0:
        raise ValueError(f"decimals must be an integer >= 0, got {decimals!r}")

    def cell(value: object) -> object:
        if value is None or (np.ndim(value) == 0 and pd.isna(value)):
            return missing
        if isinstance(value, (float, np.floating)):
            return f"{value:.{decimals}f}"
        return value  # integers, strings, booleans: as they are

    return frame.map(cell)


def glue(name: str, value: object) -> None:
    """Record a value that a chapter's prose cites, and print it under the same name.

    The book shows ``value`` where the prose says ``{glue:text}`name:.2f```: myst-nb's
    :func:`myst_nb.glue` records it (not displayed) when myst-nb is installed and the code
    runs in a Jupyter kernel. JupyterLab (jupyterlab-myst) cannot show glued values and
    prints ``name:.2f`` in the prose instead, so this also prints ``name = value``: the
    reader finds the number under the name the prose shows. ``tools/check_glue.py`` checks
    that every glued text is printed above the paragraph that cites it.

    Args:
        name: the key the prose cites.
        value: a number, a string or an ``IPython.display.Markdown``. Floats print in
            full (``repr``), so every format the prose uses (``.2f``, ``.0%``, ``,``) reads
            the same number off the printed line, also at a rounding tie (``0.86125`` to
            four decimals).

    Returns nothing, so that a cell ending in ``glue(...)`` shows no extra result (which
    myst-nb would wrap in the cell's figure a second time).
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"glue name must be an identifier such as 'test_f1', got {name!r}")
    if isinstance(value, (bool, np.bool_)):
        text = str(bool(value))
    elif isinstance(value, (int, np.integer)):
        text = str(int(value))
    elif isinstance(value, (float, np.floating)):
        text = repr(float(value))  # every digit: re-rounding to the prose's format is exact
    else:
        text = str(getattr(value, "data", value))  # Markdown keeps its text in .data
    try:
        from IPython import get_ipython
        from myst_nb import glue as myst_glue
    except ImportError:  # mmtutor alone (no book extra): printing is all a reader needs
        pass
    else:
        if get_ipython() is not None:
            myst_glue(name, value, display=False)
    print(f"{name} = {text}")
