"""WNUT-17, a real corpus of noisy user-generated text for NER, shipped with the package.

The W-NUT 2017 shared task on novel and emerging entities (Derczynski et al., 2017): tweets,
Reddit, YouTube and Stack Overflow comments tagged in IOB2 with six lower-case types
(:data:`WNUT17_TYPES`). Most test entities never occur in training, which is the point of the
task and why scores sit far below newswire NER. The three files are copied unmodified from
github.com/leondz/emerging_entities_17 (commit e52a2d2a71ac1a051ca2d532eef28653c5c02603) into
``mmtutor/data/wnut17/``, beside a README with their sizes and SHA-256 digests.

Licence: CC-BY 4.0, attribution required. Cite:
    Leon Derczynski, Eric Nichols, Marieke van Erp and Nut Limsopatham (2017). Results of the
    WNUT2017 Shared Task on Novel and Emerging Entity Recognition. Proceedings of the 3rd
    Workshop on Noisy User-generated Text (W-NUT), Copenhagen, pages 140-147.
    ACL Anthology W17-4418, doi:10.18653/v1/W17-4418.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from mmtutor.data.readers import TaggedCorpus, read_conll

__all__ = ["WNUT17_FILES", "WNUT17_PUBLISHED", "WNUT17_TYPES", "PublishedResult", "WNUT17Splits",
           "load_wnut17"]

WNUT17_FILES: dict[str, str] = {
    "train": "wnut17train.conll",
    "dev": "emerging.dev.conll",
    "test": "emerging.test.annotated",
}
"""The file of each split, as named in the shared task's repository."""

WNUT17_TYPES = ("corporation", "creative-work", "group", "location", "person", "product")
"""The six entity types, sorted (the tags are ``B-<type>`` / ``I-<type>`` and ``O``)."""


class PublishedResult(NamedTuple):
    """A published score on the WNUT-17 test split, in percent, as its paper reports it."""

    system: str
    """The system, as the book names it."""
    citation: str
    """Its key in the book's bibliography (``book/references.bib``)."""
    entity_f1: float
    """Entity F1 in percent: exact type and span, over entity mentions."""
    surface_f1: float | None
    """Surface F1 in percent, over distinct entity strings; ``None`` where not reported."""


WNUT17_PUBLISHED = (
    PublishedResult("UH-RiTUAL, best system of the shared task (Aguilar et al., 2017)",
                    "aguilar2017multi", 41.86, 40.24),
    PublishedResult("BERTweet base, fine-tuned (Nguyen et al., 2020)",
                    "nguyen2020bertweet", 56.5, None),
)
"""Published test results beside which the chapters place theirs.

UH-RiTUAL: Aguilar, Maharjan, Lopez-Monroy and Solorio (2017), W-NUT 2017, pages 148-153,
the first place of the shared task (Derczynski et al., 2017). BERTweet: Nguyen, Vu and Nguyen
(2020), EMNLP 2020 System Demonstrations, pages 9-14 (entity F1 only). One tuple, so that
every chapter places its numbers beside the same published ones.
"""


class WNUT17Splits(NamedTuple):
    """The three splits of WNUT-17, each a :class:`~mmtutor.data.TaggedCorpus` of IOB2 sentences."""

    train: TaggedCorpus
    dev: TaggedCorpus
    test: TaggedCorpus


def load_wnut17(root: str | os.PathLike[str] | None = None) -> WNUT17Splits:
    """Read the WNUT-17 train, dev and test splits (no download: they ship with the package).

    Licence CC-BY 4.0; cite Derczynski, Nichols, van Erp and Limsopatham, "Results of the
    WNUT2017 Shared Task on Novel and Emerging Entity Recognition", W-NUT 2017, pages
    140-147 (ACL Anthology W17-4418).

    Args:
        root: a folder holding the three files of :data:`WNUT17_FILES`; default ``None``,
            the copy inside the package.

    Returns:
        ``WNUT17Splits(train, dev, test)``: 3,394 / 1,009 / 1,287 sentences with 1,975 / 836 /
        1,079 entities, read with :func:`~mmtutor.data.read_conll` (``token<TAB>tag`` lines,
        IOB2, one blank line between sentences).

    Raises:
        ValueError: ``"path: no such file"`` for a missing file, or the reader's
            ``"path:line: ..."`` for a malformed line.

    Examples:
        >>> wnut = load_wnut17()
        >>> len(wnut.train), len(wnut.dev), len(wnut.test)
        (3394, 1009, 1287)
    """
    if root is not None and not Path(root).is_dir():
        raise ValueError(f"root {root} is not a folder; expected one holding "
                         f"{sorted(WNUT17_FILES.values())}")
    folder = resources.files("mmtutor.data").joinpath("wnut17") if root is None else Path(root)
    splits = []
    for split in WNUT17Splits._fields:
        with resources.as_file(folder.joinpath(WNUT17_FILES[split])) as path:  # a real file
            splits.append(read_conll(path, scheme="iob2"))
    return WNUT17Splits(*splits)
