"""The captions of :func:`~mmtutor.data.make_classification`: key words, filler, the writer.

A caption has 6 to 14 tokens: filler words (none of which names a class) and, unless the
caption is blank, one key word, a synonym of its key class (e.g. circle: "circle", "disc",
"round", "dot") at a random position. A blank caption has one more filler word in that
place, so its length follows the same distribution and gives nothing away.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SYNONYMS", "FILLER", "MIN_WORDS", "MAX_WORDS", "write_captions"]

SYNONYMS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc", "round", "dot"),
    "square": ("square", "box", "block", "tile"),
    "triangle": ("triangle", "wedge", "pointy", "delta"),
    "cross": ("cross", "plus", "x", "crosshair"),
    "diamond": ("diamond", "rhombus", "lozenge", "kite"),
    "ring": ("ring", "hoop", "donut", "loop"),
}
"""Key words per class: the caption names its key class with one of these."""

FILLER: tuple[str, ...] = (
    "a", "the", "this", "my", "our", "one", "some", "photo", "picture", "image", "snapshot",
    "of", "with", "shows", "showing", "here", "is", "see", "look", "at", "in", "on", "small",
    "big", "bright", "dark", "colourful", "object", "shape", "thing", "background", "nice",
    "today", "found", "taken", "near", "very", "really", "and", "quite", "simple", "drawn",
)  # fmt: skip
"""Filler words; none of them names a class."""

MIN_WORDS, MAX_WORDS = 6, 14
"""Shortest and longest caption, in tokens."""


def write_captions(
    key: np.ndarray, present: np.ndarray, names: tuple[str, ...], rng: np.random.Generator
) -> list[list[str]]:
    """One caption per sample, drawn from ``rng``.

    Args:
        key: ``(N,)`` int class the caption names, -1 for a blank caption (filler only).
        present: ``(N,)`` bool; a missing caption is the empty list.
        names: the class names; ``names[key[i]]`` indexes :data:`SYNONYMS`.
        rng: the split's generator (read in a fixed order, so a seed gives one result).

    Returns:
        ``N`` token lists.
    """
    n = len(key)
    lengths = rng.integers(MIN_WORDS, MAX_WORDS + 1, n)
    positions = (rng.random(n) * lengths).astype(np.int64)
    synonym = rng.integers(0, 4, n)  # every class has 4 key words
    filler = rng.integers(0, len(FILLER), (n, MAX_WORDS - 1))
    captions: list[list[str]] = []
    for i in range(n):
        if not present[i]:
            captions.append([])
            continue
        words = [FILLER[j] for j in filler[i, : lengths[i] - 1]]
        if key[i] >= 0:
            words.insert(int(positions[i]), SYNONYMS[names[key[i]]][synonym[i]])
        else:  # a blank caption: filler only, same length distribution
            words.insert(int(positions[i]), FILLER[filler[i, -1]])
        captions.append(words)
    return captions
