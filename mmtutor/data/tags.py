"""Tag sequences: the tagged-sentence record, BIO schemes, spans and the tag <-> index map.

Entity tags mark spans of tokens. The package works in **IOB2** (``B-X`` starts every
entity of type ``X``, ``I-X`` continues it, ``O`` is outside), the scheme seqeval and most
papers score. Files also come in **IOB1** (CoNLL-2003's original files: an entity starts
with ``I-X``; ``B-X`` only separates two adjacent entities of the same type) and **IOBES**
(``S-X`` single-token entity, ``E-X`` last token); :func:`to_iob2` converts both.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mmtutor.data._files import read_json

__all__ = [
    "SCHEMES",
    "TaggedSentence",
    "TagMap",
    "split_tag",
    "detect_scheme",
    "to_iob2",
    "get_spans",
    "spans_to_tags",
]

SCHEMES = ("iob1", "iob2", "iobes")

_TAG_RE = re.compile(r"([BIES])-(\S+)")
_EXPECTED = "expected 'O' or a prefix B-, I-, E- or S- followed by a type, e.g. 'B-PER'"

Span = tuple[str, int, int]  # (type, start, end) with ``end`` exclusive


@dataclass
class TaggedSentence:
    """One tokenised sentence with one tag per token (and, for multimodal NER, its image).

    Attributes:
        tokens: the words.
        tags: one tag per word, IOB2.
        image_id: the image's id (Twitter ``IMGID:``), or ``None``.
        image_path: the image file, or ``None`` when there is none (or it is missing).
    """

    tokens: list[str]
    tags: list[str]
    image_id: str | None = None
    image_path: Path | None = field(default=None)

    def __post_init__(self) -> None:
        if len(self.tokens) != len(self.tags):
            raise ValueError(
                f"tokens and tags must have the same length, got {len(self.tokens)} tokens "
                f"and {len(self.tags)} tags"
            )

    def __len__(self) -> int:
        return len(self.tokens)


def split_tag(tag: str) -> tuple[str, str | None]:
    """Split a tag into its prefix and type: ``"B-PER" -> ("B", "PER")``, ``"O" -> ("O", None)``.

    Raises:
        ValueError: if ``tag`` is not ``O`` nor ``B-``/``I-``/``E-``/``S-`` plus a type.
    """
    if tag == "O":
        return "O", None
    m = _TAG_RE.fullmatch(tag) if isinstance(tag, str) else None
    if m is None:
        raise ValueError(f"tag {tag!r} is not a BIO tag; {_EXPECTED}")
    return m.group(1), m.group(2)


def _continues(prev: str, kind: str) -> bool:
    """True if a tag of type ``kind`` with prefix I/E may continue after ``prev`` (IOB2)."""
    p_prefix, p_kind = split_tag(prev)
    return p_kind == kind and p_prefix in ("B", "I")


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """Guess the scheme of a corpus: ``"iobes"`` if any ``E-``/``S-`` tag occurs, else
    ``"iob1"`` if some entity starts with ``I-`` (impossible in IOB2), else ``"iob2"``.

    Raises:
        ValueError: if a tag is not a BIO tag.
    """
    found_iob1 = False
    for tags in tag_sequences:
        prev = "O"
        for tag in tags:
            prefix, kind = split_tag(tag)
            if prefix in ("E", "S"):
                return "iobes"
            if prefix == "I" and not _continues(prev, kind or ""):
                found_iob1 = True
            prev = tag
    return "iob1" if found_iob1 else "iob2"


def to_iob2(tags: Sequence[str], scheme: str = "iob1") -> list[str]:
    """Convert one tag sequence to IOB2.

    IOB1: an ``I-X`` that starts an entity becomes ``B-X``. IOBES: ``S-X`` becomes ``B-X``
    and ``E-X`` becomes ``I-X``. IOB2 input is returned repaired the same way (an ``I-X``
    after ``O`` starts a new entity, as seqeval reads it).

    Examples:
        >>> to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC"], "iob1")
        ['B-PER', 'I-PER', 'O', 'B-LOC', 'B-LOC']
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    out: list[str] = []
    prev = "O"
    for tag in tags:
        prefix, kind = split_tag(tag)
        if prefix == "S":
            prefix = "B"
        elif prefix == "E":
            prefix = "I"
        if prefix == "I" and not _continues(prev, kind or ""):
            prefix = "B"
        new = "O" if kind is None else f"{prefix}-{kind}"
        out.append(new)
        prev = new
    return out


def get_spans(tags: Sequence[str]) -> list[Span]:
    """Entity spans ``(type, start, end)`` (``end`` exclusive) of an IOB2 sequence.

    Examples:
        >>> get_spans(["B-LOC", "I-LOC", "O", "B-PER"])
        [('LOC', 0, 2), ('PER', 3, 4)]
    """
    spans: list[Span] = []
    start, kind = -1, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, k = split_tag(tag)
        if kind is not None and (prefix in ("O", "B", "S") or k != kind):
            spans.append((kind, start, i))
            kind = None
        if prefix != "O" and kind is None:
            start, kind = i, k
    return spans


def spans_to_tags(spans: Iterable[Span], length: int) -> list[str]:
    """IOB2 tags of length ``length`` that mark the given non-overlapping spans.

    Raises:
        ValueError: if a span is empty, out of range or overlaps another.
    """
    tags = ["O"] * length
    for kind, start, end in spans:
        if not 0 <= start < end <= length:
            raise ValueError(
                f"span ({kind!r}, {start}, {end}) must satisfy 0 <= start < end <= {length}"
            )
        if any(t != "O" for t in tags[start:end]):
            raise ValueError(f"span ({kind!r}, {start}, {end}) overlaps another span")
        tags[start:end] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start - 1)
    return tags


class TagMap:
    """Tag <-> index map for IOB2 tags, ``O`` first (index 0).

    Examples:
        >>> tm = TagMap.from_types(["PER", "LOC"])
        >>> tm.tags
        ['O', 'B-LOC', 'I-LOC', 'B-PER', 'I-PER']
        >>> tm.encode(["B-PER", "O"])
        [3, 0]
    """

    def __init__(self, tags: Iterable[str]) -> None:
        tags = list(tags)
        for t in tags:
            split_tag(t)
        if "O" in tags:
            tags.remove("O")
        self.tags: list[str] = ["O", *tags]
        if len(set(self.tags)) != len(self.tags):
            raise ValueError(f"tags must be unique, got {self.tags}")
        self._index = {t: i for i, t in enumerate(self.tags)}

    @classmethod
    def build(cls, tag_sequences: Iterable[Sequence[str]]) -> TagMap:
        """Collect every tag seen; order ``O``, then by type, ``B-`` before ``I-``."""
        seen = {t for tags in tag_sequences for t in tags}
        order = {"B": 0, "I": 1, "E": 2, "S": 3}

        def key(tag: str) -> tuple[str, int]:
            prefix, kind = split_tag(tag)
            return (kind or "", order.get(prefix, -1))

        return cls(sorted(seen, key=key))

    @classmethod
    def from_types(cls, types: Iterable[str]) -> TagMap:
        """``O`` plus ``B-X``, ``I-X`` for every type ``X`` (types sorted)."""
        return cls([f"{p}-{t}" for t in sorted(set(types)) for p in ("B", "I")])

    def __len__(self) -> int:
        return len(self.tags)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TagMap) and self.tags == other.tags

    def __hash__(self) -> int:
        return hash(tuple(self.tags))

    def __repr__(self) -> str:
        return f"TagMap({self.tags})"

    @property
    def types(self) -> list[str]:
        """The entity types, sorted."""
        return sorted({k for t in self.tags if (k := split_tag(t)[1]) is not None})

    def encode(self, tags: Iterable[str]) -> list[int]:
        """Tags to indices.

        Raises:
            ValueError: for a tag not in the map (tags have no ``<unk>``).
        """
        out = []
        for t in tags:
            if t not in self._index:
                raise ValueError(f"tag {t!r} is not in the tag map; expected one of {self.tags}")
            out.append(self._index[t])
        return out

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Indices to tags (``-100`` padding is not allowed here: strip it first)."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.tags):
                raise ValueError(f"tag index {i} is outside [0, {len(self.tags) - 1}]")
            out.append(self.tags[i])
        return out

    def transition_mask(self) -> torch.Tensor:
        """Allowed IOB2 transitions for a CRF: ``(K, K)`` bool, ``[i, j]`` True if tag ``j``
        may follow tag ``i`` (``I-X`` only after ``B-X`` or ``I-X``)."""
        k = len(self.tags)
        mask = torch.ones(k, k, dtype=torch.bool)  # (K, K)
        for j, tag in enumerate(self.tags):
            prefix, kind = split_tag(tag)
            if prefix == "I":
                for i, prev in enumerate(self.tags):
                    mask[i, j] = _continues(prev, kind or "")
        return mask

    def start_mask(self) -> torch.Tensor:
        """Tags allowed first in a sentence: ``(K,)`` bool, False for every ``I-X``."""
        return torch.tensor([split_tag(t)[0] != "I" for t in self.tags])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the tags as JSON (``{"kind": "TagMap", "tags": [...]}``)."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"kind": "TagMap", "tags": self.tags}, f)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TagMap:
        """Read a map written by :meth:`save`."""
        data = read_json(path, "a saved TagMap")
        if (
            not isinstance(data, dict)
            or data.get("kind") != "TagMap"
            or not isinstance(data.get("tags"), list)
        ):
            raise ValueError(
                f"{path}: expected a saved TagMap ({{'kind': 'TagMap', 'tags': [...]}})"
            )
        return cls(data["tags"])
