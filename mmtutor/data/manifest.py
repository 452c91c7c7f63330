"""Write a generated classification data set to disk: image files plus JSONL manifests.

:func:`write_manifest` turns the splits of :func:`~mmtutor.data.make_classification` into the
files a reader would bring: one image file per sample (JPEG by default, PNG on request) and
one manifest per split, ``{"text": ..., "image": "images/train/00000.jpg", "label": ...}``
per line, which :func:`~mmtutor.data.read_manifest` and ``python -m mmtutor classify`` read.
A missing modality is written as an absent key: no ``"image"`` key (and no file) for a
missing image, no ``"text"`` key for a missing caption.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mmtutor.data.classification import ClassificationData, ClassificationSplit

__all__ = ["IMAGE_FORMATS", "write_manifest"]

IMAGE_FORMATS = {"jpeg": ".jpg", "png": ".png"}
"""Image file formats :func:`write_manifest` writes, and their file suffixes."""


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` floats in ``[0, 1]`` -> ``(H, W, 3)`` uint8 pixels."""
    pixels = np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255)  # (3, H, W)
    return pixels.astype(np.uint8).transpose(1, 2, 0)  # (H, W, 3)


def write_manifest(
    data: ClassificationData | Mapping[str, ClassificationSplit],
    root: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
    image_format: str = "jpeg",
    quality: int = 95,
) -> dict[str, Path]:
    """Write every split as image files and a ``<split>.jsonl`` manifest under ``root``.

    Layout: ``root/<split>.jsonl`` and ``root/images/<split>/<index>.jpg`` (``.png``), with
    the image paths in the manifests relative to ``root`` -- so ``root`` is the
    ``image_root`` (``--image-root``) to read them with. Labels are written as class names.

    Args:
        data: a :class:`~mmtutor.data.ClassificationData` (splits ``train``, ``val``,
            ``test``; an empty split is skipped), or ``{name: ClassificationSplit}``.
        root: the output folder (created if needed; existing files of the same names are
            overwritten).
        class_names: the label names in index order (default: ``data.class_names``; needed
            for a dict of splits).
        image_format: ``"jpeg"`` (lossy, small; what most real data sets hold) or ``"png"``
            (lossless: the pixels read back are the generated ones up to 1/255 rounding).
        quality: JPEG quality, 1 to 95.

    Returns:
        ``{split: path of its manifest}``, e.g. ``{"train": root/"train.jsonl", ...}``.

    Raises:
        ValueError: for an unknown ``image_format``, a ``quality`` outside 1..95, missing
            ``class_names``, or a label without a name.

    Examples:
        >>> data = make_classification(40, 10, 20, image_size=16, seed=0)  # doctest: +SKIP
        >>> files = write_manifest(data, "shapes")  # doctest: +SKIP
        >>> examples = read_manifest(files["train"], "shapes")  # doctest: +SKIP
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"image_format must be one of {sorted(IMAGE_FORMATS)}, got {image_format!r}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 95:
        raise ValueError(f"quality must be an integer in [1, 95], got {quality!r}")
    if isinstance(data, ClassificationData):
        splits = {name: getattr(data, name) for name in ("train", "val", "test")}
        class_names = data.class_names if class_names is None else class_names
    elif isinstance(data, Mapping) and all(isinstance(s, ClassificationSplit) for s in data.values()):
        splits = dict(data)
    else:
        raise ValueError(f"data must be a ClassificationData or a dict of ClassificationSplit, "
                         f"got {type(data).__name__}")
    if class_names is None:
        raise ValueError("class_names is required for a dict of splits (e.g. data.class_names)")
    from PIL import Image  # imported here: only writing needs it

    root, suffix = Path(root), IMAGE_FORMATS[image_format]
    options = {"quality": quality} if image_format == "jpeg" else {}
    written = {}
    for name, split in splits.items():
        if len(split) == 0:
            continue
        folder = root / "images" / name
        folder.mkdir(parents=True, exist_ok=True)
        manifest = root / f"{name}.jsonl"
        with open(manifest, "w", encoding="utf-8") as f:
            for i in range(len(split)):
                y = int(split.labels[i])
                if not 0 <= y < len(class_names):
                    raise ValueError(f"{name}[{i}] has label {y}; class_names has only "
                                     f"{len(class_names)} names")
                record: dict[str, str] = {}
                if split.text_present[i]:
                    record["text"] = " ".join(split.captions[i])
                if split.image_present[i]:
                    relative = f"images/{name}/{i:05d}{suffix}"
                    Image.fromarray(_to_uint8(split.images[i])).save(
                        root / relative, format=image_format.upper(), **options)
                    record["image"] = relative
                record["label"] = str(class_names[y])
                f.write(json.dumps(record) + "\n")
        written[name] = manifest
    return written
