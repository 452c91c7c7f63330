"""Readers for real data files: CoNLL-style NER, Twitter-2015/2017 multimodal NER, JSONL manifests.

Every reader streams its file line by line and checks each line; a malformed line raises
``ValueError("path:line: what was found; expected ...")`` so the reader can fix the file.

Formats:

* **CoNLL** (CoNLL-2003 and friends): one token per line, the token in the first column and
  the tag in the last, columns separated by tabs (if the line has one) or else by runs of
  ASCII spaces, so a token may be any other character, Unicode white space included (e.g. a
  lone U+00A0 in Twitter-2015); a blank line ends a sentence;
  ``-DOCSTART-`` lines are skipped. IOB1, IOB2 and IOBES files are converted to IOB2.
* **Twitter MNER** (Twitter-2015, Zhang et al. 2018; Twitter-2017, Lu et al. 2018): each
  tweet starts with ``IMGID:<id>``, then ``token<TAB>tag`` lines, then a blank line; the
  image is ``<image_dir>/<id>.jpg``. Types are PER, LOC, ORG and OTHER.
* **Manifest**: JSON Lines, one object per line: ``{"text": str, "image": relative path or
  null, "label": str or int}``; an absent (or null) ``text`` or ``image`` is a missing modality.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mmtutor.data._files import iter_lines, safe_join
from mmtutor.data.tags import SCHEMES, TaggedSentence, _continues, detect_scheme, split_tag, to_iob2

__all__ = ["TaggedCorpus", "ManifestExample", "read_conll", "read_twitter_mner", "read_manifest"]

PathLike = str | os.PathLike[str]
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class TaggedCorpus(list):
    """A ``list[TaggedSentence]`` that also records the tweets whose image file was missing.

    Attributes:
        missing_images: the image ids (``IMGID:``) whose file was not found (``"mask"`` mode).
    """

    def __init__(
        self, sentences: Iterable[TaggedSentence] = (), missing_images: Iterable[str] = ()
    ) -> None:
        super().__init__(sentences)
        self.missing_images: list[str] = list(missing_images)


@dataclass
class _Block:
    """A sentence as read: tokens, tags and where each came from."""

    first_line: int
    tokens: list[str]
    tags: list[str]
    lines: list[int]
    image_id: str | None = None


def _columns(text: str) -> list[str]:
    """Split a token line into columns: at tabs if it has one, else at runs of ASCII spaces.

    Only ASCII separators split, so a token made of other white space stays a token: a real
    Twitter-2015 file has a lone non-breaking space (U+00A0) before its tab, which
    ``str.split()`` would drop. Trailing spaces and tabs are ignored.
    """
    text = text.rstrip(" \t")
    if "\t" in text:
        return text.split("\t")
    return [part for part in text.split(" ") if part]


def _token_line(path: PathLike, number: int, text: str, columns: list[int]) -> tuple[str, str]:
    """Parse ``token ... tag``; ``columns`` holds the file's column count once known."""
    parts = _columns(text)
    if len(parts) < 2:
        raise ValueError(
            f"{path}:{number}: found {len(parts)} column ({text.strip()!r}); expected at least "
            "2 columns separated by spaces or tabs: the token first and the tag last"
        )
    if not parts[0]:
        raise ValueError(
            f"{path}:{number}: found an empty token ({text!r}); expected the token before the "
            "first tab"
        )
    if not columns:
        columns.append(len(parts))
    elif len(parts) != columns[0]:
        raise ValueError(
            f"{path}:{number}: found {len(parts)} columns ({text.strip()!r}); expected "
            f"{columns[0]} like the first token line (does a token contain a space?)"
        )
    tag = parts[-1].strip(" ")
    try:
        split_tag(tag)
    except ValueError as err:
        raise ValueError(f"{path}:{number}: {err}") from None
    return parts[0], tag


def _blocks(path: PathLike, *, twitter: bool) -> Iterator[_Block]:
    """Stream the sentences (blank-line separated blocks) of a CoNLL or Twitter file."""
    columns: list[int] = []
    block: _Block | None = None
    for number, text in iter_lines(path):
        if not text.strip(" \t"):  # ASCII only: a lone U+00A0 is a token, not a break
            if block is not None:
                if not block.tokens:
                    raise ValueError(
                        f"{path}:{block.first_line}: found a tweet 'IMGID:{block.image_id}' with "
                        "no token lines; expected token lines after each IMGID line"
                    )
                yield block
            block = None
            continue
        if twitter and text.startswith("IMGID:"):
            if block is not None:
                raise ValueError(
                    f"{path}:{number}: found an IMGID line inside a tweet (started at line "
                    f"{block.first_line}); expected a blank line between tweets"
                )
            image_id = text[len("IMGID:") :].strip()
            if not image_id:
                raise ValueError(f"{path}:{number}: found an empty image id; expected 'IMGID:<id>'")
            block = _Block(number, [], [], [], image_id)
            continue
        if not twitter and _columns(text)[0] == "-DOCSTART-":
            continue
        if block is None:
            if twitter:
                raise ValueError(
                    f"{path}:{number}: found a token line ({text.strip()!r}) before any IMGID "
                    "line; expected each tweet to start with 'IMGID:<id>'"
                )
            block = _Block(number, [], [], [])
        token, tag = _token_line(path, number, text, columns)
        block.tokens.append(token)
        block.tags.append(tag)
        block.lines.append(number)
    if block is not None:
        if not block.tokens:
            raise ValueError(
                f"{path}:{block.first_line}: found a tweet 'IMGID:{block.image_id}' with no "
                "token lines at the end of the file; expected token lines after it"
            )
        yield block


def _check_scheme(path: PathLike, block: _Block, scheme: str) -> None:
    """Raise ``path:line`` errors for tags that the declared scheme does not allow."""
    prev = "O"
    for tag, number in zip(block.tags, block.lines, strict=True):
        prefix, kind = split_tag(tag)
        if prefix in ("E", "S") and scheme != "iobes":
            raise ValueError(
                f"{path}:{number}: found the IOBES tag {tag!r} in a file read as "
                f"scheme={scheme!r}; expected O, B-X or I-X (pass scheme='iobes' or 'auto')"
            )
        if scheme == "iob2" and prefix == "I" and not _continues(prev, kind or ""):
            raise ValueError(
                f"{path}:{number}: found {tag!r} after {prev!r}, which starts an entity with I-; "
                "expected B- at the start of every entity in IOB2 (pass scheme='iob1' or 'auto')"
            )
        prev = tag


def _check_scheme_argument(scheme: str) -> None:
    if scheme not in ("auto", *SCHEMES):
        raise ValueError(f"scheme must be 'auto' or one of {SCHEMES}, got {scheme!r}")


def _to_sentences(path: PathLike, blocks: list[_Block], scheme: str) -> list[TaggedSentence]:
    if scheme == "auto":
        scheme = detect_scheme(b.tags for b in blocks)
    for block in blocks:
        _check_scheme(path, block, scheme)
    return [TaggedSentence(b.tokens, to_iob2(b.tags, scheme), b.image_id) for b in blocks]


def read_conll(path: PathLike, *, scheme: str = "auto") -> TaggedCorpus:
    """Read a CoNLL-style NER file into IOB2 sentences.

    Args:
        path: the file (UTF-8).
        scheme: ``"auto"`` (detect: IOBES if ``E-``/``S-`` tags occur, IOB1 if an entity
            starts with ``I-``, else IOB2), ``"iob1"``, ``"iob2"`` or ``"iobes"``.

    Returns:
        A :class:`TaggedCorpus` (a list of :class:`TaggedSentence`) with IOB2 tags.

    Raises:
        ValueError: ``"path:line: ..."`` for a line with one column, an empty token (a line
            that starts with a tab), a column count unlike the first line's, a tag that is
            not ``O``/``B-X``/``I-X``/``E-X``/``S-X``, a tag the declared scheme forbids,
            or bytes that are not UTF-8.

    Examples:
        >>> sentences = read_conll("data/conll2003/train.txt")  # doctest: +SKIP
        >>> sentences[0].tokens, sentences[0].tags  # doctest: +SKIP
        (['EU', 'rejects', 'German', 'call'], ['B-ORG', 'O', 'B-MISC', 'O'])
    """
    _check_scheme_argument(scheme)
    return TaggedCorpus(_to_sentences(path, list(_blocks(path, twitter=False)), scheme))


def _image_file(image_dir: PathLike, image_id: str) -> Path | None:
    name = image_id if image_id.lower().endswith(_IMAGE_SUFFIXES) else f"{image_id}.jpg"
    return safe_join(image_dir, name)


def read_twitter_mner(
    path: PathLike,
    image_dir: PathLike | None = None,
    *,
    missing_image: str = "error",
    scheme: str = "auto",
) -> TaggedCorpus:
    """Read a Twitter-2015/2017 multimodal NER file (``IMGID:`` lines, tokens, blank lines).

    Args:
        path: the text file (``train.txt``, ``valid.txt`` or ``test.txt``).
        image_dir: the folder of images ``<id>.jpg``; ``None`` reads the text only (every
            ``image_path`` is then ``None``).
        missing_image: ``"error"``: a tweet whose image file does not exist is an error;
            ``"mask"``: its ``image_path`` is ``None`` (a missing modality), its id is added
            to ``missing_images`` and one warning gives the count.
        scheme: the tag scheme, as in :func:`read_conll`.

    Returns:
        A :class:`TaggedCorpus` of IOB2 sentences with ``image_id`` and ``image_path`` set.

    Raises:
        ValueError: ``"path:line: ..."`` for a token line before any ``IMGID:`` line, an
            empty or escaping image id (``../x``, an absolute path), an ``IMGID:`` line with
            no tokens, a missing image (``"error"`` mode), and every error of :func:`read_conll`.
    """
    if missing_image not in ("error", "mask"):
        raise ValueError(f"missing_image must be 'error' or 'mask', got {missing_image!r}")
    _check_scheme_argument(scheme)
    if image_dir is not None and not Path(image_dir).is_dir():
        raise ValueError(
            f"image_dir {image_dir} is not a folder; expected the folder of <id>.jpg images"
        )
    blocks = list(_blocks(path, twitter=True))
    sentences = _to_sentences(path, blocks, scheme)
    corpus = TaggedCorpus(sentences)
    if image_dir is None:
        return corpus
    for block, sentence in zip(blocks, sentences, strict=True):
        image_id = block.image_id or ""
        file = _image_file(image_dir, image_id)
        if file is None:
            raise ValueError(
                f"{path}:{block.first_line}: found image id {image_id!r}, which points outside "
                f"{image_dir}; expected a plain file name such as '1860693'"
            )
        if file.is_file():
            sentence.image_path = file
        elif missing_image == "error":
            raise ValueError(
                f"{path}:{block.first_line}: the image of IMGID:{image_id} is missing: {file} "
                "does not exist; expected the file (or pass missing_image='mask')"
            )
        else:
            corpus.missing_images.append(image_id)
    if corpus.missing_images:
        warnings.warn(
            f"{path}: {len(corpus.missing_images)} of {len(corpus)} tweets have no image file in "
            f"{image_dir}; their image is marked missing",
            stacklevel=2,
        )
    return corpus


@dataclass
class ManifestExample:
    """One line of a JSONL manifest.

    Attributes:
        text: the raw text, or ``None`` for a missing text (no ``"text"`` key, or null).
        image: the resolved image file, or ``None`` for a missing image (no ``"image"``
            key, or null).
        label: the class, a name or an index.
        line: the line number in the manifest (for error messages).
        path: the manifest file (for error messages: ``f"{path}:{line}"``).
    """

    text: str | None
    image: Path | None
    label: str | int
    line: int
    path: Path | None = None


def _manifest_line(path: PathLike, number: int, text: str, image_root: PathLike) -> ManifestExample:
    where = f"{path}:{number}"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{where}: found invalid JSON ({err.msg} at column {err.colno}); expected one JSON "
            'object per line like {"text": "...", "image": "img/1.jpg", "label": "cat"}'
        ) from None
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: found a JSON {type(obj).__name__}; expected a JSON object")
    if "label" not in obj:
        raise ValueError(f"{where}: the object has no key 'label'; expected keys 'label' and "
                         "'text' and/or 'image' (an absent one is a missing modality)")
    text = obj.get("text")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{where}: 'text' is a {type(text).__name__}; expected a string or null")
    label = obj["label"]
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise ValueError(f"{where}: 'label' is {label!r}; expected a string or an integer")
    image = obj.get("image")
    if image is None:
        return ManifestExample(text, None, label, number, Path(path))
    if not isinstance(image, str):
        raise ValueError(f"{where}: 'image' is {image!r}; expected a relative path string or null")
    file = safe_join(image_root, image)
    if file is None:
        raise ValueError(
            f"{where}: 'image' is {image!r}, which points outside the image root {image_root}; "
            "expected a path relative to it"
        )
    if not file.is_file():
        raise ValueError(f"{where}: image file {file} does not exist; expected an image file")
    return ManifestExample(text, file, label, number, Path(path))


def read_manifest(path: PathLike, image_root: PathLike) -> list[ManifestExample]:
    """Read a JSONL manifest for image + text classification.

    Args:
        path: the ``.jsonl`` file; blank lines are skipped.
        image_root: the folder that the ``image`` paths are relative to.

    Returns:
        One :class:`ManifestExample` per object, in file order.

    Raises:
        ValueError: ``"path:line: ..."`` for invalid JSON, a value that is not an object, a
            missing key, a wrong type, an image path outside ``image_root`` or a missing file.

    Examples:
        >>> examples = read_manifest("data/memes/train.jsonl", "data/memes")  # doctest: +SKIP
    """
    if not Path(image_root).is_dir():
        raise ValueError(f"image_root {image_root} is not a folder")
    return [_manifest_line(path, n, t, image_root) for n, t in iter_lines(path) if t.strip()]
