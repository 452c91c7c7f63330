"""The inputs of the classification pipeline, whatever they came from, as one shape.

A split is either a generated :class:`~mmtutor.data.ClassificationSplit` (image arrays,
integer labels) or a list of :class:`~mmtutor.data.ManifestExample` (image files, labels as
written in the manifest). :func:`examples` turns both into :class:`Examples`, whose
``where`` names each sample (``file:line`` for a manifest) for error messages.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmtutor.data import ClassificationData, ClassificationSplit, ManifestExample, tokenize

__all__ = ["Examples", "examples", "classes_of", "encode_labels"]


@dataclass
class Examples:
    """One split, whatever it came from: tokens, images, flags, raw labels, where each is."""

    captions: list[list[str]]
    images: np.ndarray | list[Path | None]
    image_present: np.ndarray
    text_present: np.ndarray
    labels: list[object]
    where: list[str]


def examples(name: str, inputs: object) -> Examples:
    """Normalise a generated split or a list of manifest examples."""
    if isinstance(inputs, ClassificationSplit):
        n = len(inputs)
        return Examples(list(inputs.captions), inputs.images,
                         np.asarray(inputs.image_present, dtype=bool),
                         np.asarray(inputs.text_present, dtype=bool),
                         [int(y) for y in inputs.labels], [f"{name}[{i}]" for i in range(n)])
    if isinstance(inputs, (str, bytes, os.PathLike, ClassificationData)) or not isinstance(
            inputs, Sequence):
        raise ValueError(f"{name} must be a ClassificationSplit (make_classification(...).train) "
                         f"or a list of ManifestExample (read_manifest(...)), got "
                         f"{type(inputs).__name__}")
    for i, e in enumerate(inputs):
        if not isinstance(e, ManifestExample):
            raise ValueError(f"{name}[{i}] is a {type(e).__name__}; expected a ManifestExample")
    captions = [tokenize(e.text or "") for e in inputs]
    return Examples(
        captions, [e.image for e in inputs],
        np.array([e.image is not None for e in inputs], dtype=bool),
        np.array([e.text is not None and len(c) > 0 for e, c in zip(inputs, captions,
                                                                     strict=True)], dtype=bool),
        [e.label for e in inputs],
        [f"{e.path}:{e.line}" if getattr(e, "path", None) else f"{name}[{i}] (line {e.line})"
         for i, e in enumerate(inputs)])


def classes_of(train: Examples) -> list[str | int]:
    """The training split's classes, sorted; one kind of label (all names or all indices)."""
    kinds = {type(y) for y in train.labels}
    if len(kinds) > 1:
        raise ValueError(f"the training labels mix {sorted(k.__name__ for k in kinds)}; use "
                         "only class names or only class indices")
    return sorted(set(train.labels))  # type: ignore[type-var]


def encode_labels(split: Examples, classes: Sequence[str | int]) -> np.ndarray:
    """Class indices of a split's labels; a label outside ``classes`` names its file:line."""
    index = {c: i for i, c in enumerate(classes)}
    out = np.empty(len(split.labels), dtype=np.int64)
    for i, y in enumerate(split.labels):
        if y in index and type(y) is type(classes[index[y]]):
            out[i] = index[y]
        elif isinstance(y, int) and all(isinstance(c, str) for c in classes) and 0 <= y < len(classes):
            out[i] = y  # a generated split: labels are indices into the class names
        else:
            raise ValueError(f"{split.where[i]}: label {y!r} is not one of the training "
                             f"classes {list(classes)}")
    return out


