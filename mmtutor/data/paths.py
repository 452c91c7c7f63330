"""Where real data lives: the ``MMTUTOR_DATA`` environment variable convention.

The book runs offline on generated data. A reader who has a real data set puts it under
``$MMTUTOR_DATA/<name>/`` in the layout below; chapters then call :func:`find_real_data`
and fall back to the generated data when it returns ``None``::

    $MMTUTOR_DATA/conll2003/{train,valid,test}.txt
    $MMTUTOR_DATA/twitter2015/{train,valid,test}.txt  and  images/<id>.jpg
    $MMTUTOR_DATA/twitter2017/{train,valid,test}.txt  and  images/<id>.jpg
    $MMTUTOR_DATA/manifest/{train,val,test}.jsonl     and  images/...

Nothing is ever downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DATA_ENV", "REAL_DATA_LAYOUTS", "data_home", "find_real_data"]

DATA_ENV = "MMTUTOR_DATA"

_SPLITS = {"train": "train.txt", "val": "valid.txt", "test": "test.txt"}
REAL_DATA_LAYOUTS: dict[str, dict[str, str]] = {
    "conll2003": dict(_SPLITS),
    "twitter2015": {**_SPLITS, "images": "images"},
    "twitter2017": {**_SPLITS, "images": "images"},
    "manifest": {
        "train": "train.jsonl",
        "val": "val.jsonl",
        "test": "test.jsonl",
        "images": "images",
    },
}
"""Known data sets: key -> path relative to ``$MMTUTOR_DATA/<name>/``."""


def data_home() -> Path | None:
    """The folder named by ``$MMTUTOR_DATA``, or ``None`` if unset or not a folder."""
    value = os.environ.get(DATA_ENV, "").strip()
    if not value:
        return None
    home = Path(value).expanduser()
    return home if home.is_dir() else None


def find_real_data(name: str, files: Mapping[str, str] | None = None) -> dict[str, Path] | None:
    """Paths of a real data set under ``$MMTUTOR_DATA/<name>/``, or ``None`` if incomplete.

    Args:
        name: a folder name, e.g. ``"twitter2015"``.
        files: key -> relative path of every file or folder that must exist. Default: the
            layout in :data:`REAL_DATA_LAYOUTS` for a known ``name``.

    Returns:
        ``{key: absolute path}`` if ``$MMTUTOR_DATA`` is set and every path exists, else ``None``.

    Raises:
        ValueError: for a name that is not a plain folder name, or an unknown name
            without ``files``.

    Examples:
        >>> paths = find_real_data("twitter2015")
        >>> if paths:  # doctest: +SKIP
        ...     corpus = read_twitter_mner(paths["train"], paths["images"])
    """
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"name must be a plain folder name such as 'conll2003', got {name!r}")
    if files is None:
        if name not in REAL_DATA_LAYOUTS:
            raise ValueError(
                f"name {name!r} has no known layout; pass files={{key: relative path}} or use one "
                f"of {sorted(REAL_DATA_LAYOUTS)}"
            )
        files = REAL_DATA_LAYOUTS[name]
    home = data_home()
    if home is None:
        return None
    root = home / name
    found = {key: (root / rel).resolve() for key, rel in files.items()}
    return found if all(p.exists() for p in found.values()) else None
