"""PyTorch datasets, collate functions and loaders that produce the package's batch dicts.

A batch is a ``dict[str, Tensor]`` (see CONTRIBUTING.md):

=================  ==================  =====  =============================================
key                shape               dtype  meaning
=================  ==================  =====  =============================================
``tokens``         ``(B, T)``          long   token ids, 0 = ``<pad>``, 1 = ``<unk>``
``token_mask``     ``(B, T)``          bool   True for real tokens
``chars``          ``(B, T, L)``       long   character ids per token (tagging), 0 = padding
``image``          ``(B, 3, H, W)``    float  normalised image, zeros when missing
``text_present``   ``(B,)``            bool   False when the text is missing
``image_present``  ``(B,)``            bool   False when the image is missing
``label``          ``(B,)``            long   class index (classification)
``tags``           ``(B, T)``          long   tag index per token (tagging), -100 at padding
=================  ==================  =====  =============================================

``T`` is at least 1, even when every text in the batch is empty (one pad, mask False), so
shapes never break on missing text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mmtutor.data.images import ImagePath, ImageSource
from mmtutor.data.readers import ManifestExample
from mmtutor.data.subwords import IGNORE_INDEX
from mmtutor.data.tags import TaggedSentence, TagMap
from mmtutor.data.vocab import CharVocab, Vocab, tokenize

__all__ = [
    "ClassificationDataset",
    "TaggingDataset",
    "collate_classification",
    "collate_tagging",
]

Sample = dict[str, torch.Tensor]
Images = np.ndarray | torch.Tensor | Sequence[ImagePath | None] | None


def _flags(name: str, value: object, n: int, default: np.ndarray) -> np.ndarray:
    if value is None:
        return default
    flags = np.asarray(value)
    if flags.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (one flag per sample), got {flags.shape}")
    return flags.astype(bool)


def _check_token_lists(name: str, token_lists: Sequence[Sequence[str]]) -> None:
    for i, tokens in enumerate(token_lists):
        if isinstance(tokens, str):
            raise ValueError(
                f"{name}[{i}] is a str ({tokens[:30]!r}); expected a list of tokens, e.g. "
                "mmtutor.data.tokenize(text)"
            )


def _pad_2d(seqs: Sequence[torch.Tensor], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack 1-D tensors into ``(B, T)`` padded with ``value``; also return the ``(B, T)`` mask."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    width = max(1, int(lengths.max()) if len(seqs) else 1)
    out = torch.nn.utils.rnn.pad_sequence(list(seqs), batch_first=True, padding_value=value)
    out = torch.nn.functional.pad(out, (0, width - out.shape[1]), value=value)  # (B, T)
    mask = torch.arange(width)[None, :] < lengths[:, None]  # (B, T)
    return out, mask


def _common(
    samples: Sequence[Mapping[str, torch.Tensor]], keys: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """Check the samples and build the parts shared by every batch: text, image, flags."""
    if not samples:
        raise ValueError("samples must be a non-empty list of sample dicts")
    for i, s in enumerate(samples):
        missing = [k for k in keys if k not in s]
        if missing:
            raise ValueError(f"samples[{i}] has no key {missing[0]!r}; expected keys {list(keys)}")
    shape = tuple(samples[0]["image"].shape)
    for i, s in enumerate(samples):
        if tuple(s["image"].shape) != shape:
            raise ValueError(
                f"samples[{i}]['image'] has shape {tuple(s['image'].shape)}; expected {shape} like "
                "samples[0] (resize every image to one size)"
            )
    tokens, token_mask = _pad_2d([s["tokens"] for s in samples], 0)
    return {
        "tokens": tokens,  # (B, T)
        "token_mask": token_mask,  # (B, T)
        "image": torch.stack([s["image"] for s in samples]).float(),  # (B, 3, H, W)
        "text_present": torch.stack([s["text_present"] for s in samples]).bool(),  # (B,)
        "image_present": torch.stack([s["image_present"] for s in samples]).bool(),  # (B,)
    }


def collate_classification(
    samples: Sequence[Mapping[str, torch.Tensor]],
) -> dict[str, torch.Tensor]:
    """Batch :class:`ClassificationDataset` items.

    Returns:
        ``tokens (B, T)`` long, ``token_mask (B, T)`` bool, ``image (B, 3, H, W)`` float,
        ``text_present (B,)`` bool, ``image_present (B,)`` bool, ``label (B,)`` long.

    Raises:
        ValueError: for an empty list, a sample without a needed key, or images of different shapes.
    """
    keys = ("tokens", "image", "label", "text_present", "image_present")
    batch = _common(samples, keys)
    batch["label"] = torch.stack([torch.as_tensor(s["label"]) for s in samples]).long()  # (B,)
    return batch


def collate_tagging(samples: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Batch :class:`TaggingDataset` items.

    Returns:
        ``tokens (B, T)``, ``token_mask (B, T)``, ``chars (B, T, L)`` (0 = padding),
        ``tags (B, T)`` (-100 at padding), ``image (B, 3, H, W)``, ``text_present (B,)``,
        ``image_present (B,)``.
    """
    keys = ("tokens", "chars", "tags", "image", "text_present", "image_present")
    batch = _common(samples, keys)
    b, t = batch["tokens"].shape
    width = max(1, max(s["chars"].shape[1] for s in samples))
    chars = torch.zeros(b, t, width, dtype=torch.long)  # (B, T, L)
    for i, s in enumerate(samples):
        c = s["chars"]  # (T_i, L_i)
        chars[i, : c.shape[0], : c.shape[1]] = c
    batch["chars"] = chars
    batch["tags"] = _pad_2d([s["tags"] for s in samples], IGNORE_INDEX)[0]  # (B, T)
    return batch


class _TextImageDataset(Dataset):
    """Shared parts: ``tokens`` per sample, an :class:`ImageSource` and the presence flags."""

    tokens: list[torch.Tensor]
    text_present: np.ndarray
    images: ImageSource

    def __len__(self) -> int:
        return len(self.tokens)

    def _item(self, i: int, **fields: torch.Tensor) -> Sample:
        return {
            "tokens": self.tokens[i],  # (T,)
            **fields,
            "image": self.images[i],  # (3, H, W)
            "text_present": torch.tensor(bool(self.text_present[i])),
            "image_present": torch.tensor(bool(self.images.present[i])),
        }


class ClassificationDataset(_TextImageDataset):
    """Image + text classification samples as tensors.

    Args:
        images: ``(N, 3, H, W)`` floats in ``[0, 1]``, or ``N`` image paths (``None`` = missing).
        captions: ``N`` token lists (an empty list is a missing text).
        labels: ``N`` class indices.
        vocab: the token vocabulary (built on the training split).
        image_present: ``(N,)`` bool; default: every image given.
        text_present: ``(N,)`` bool; default: every non-empty caption.
        transform: see :class:`~mmtutor.data.images.ImageSource`.
        mean, std: per-channel normalisation; default for arrays: these images' statistics
            (pass the training split's to validation and test), for files: ImageNet's.
        image_size: side of file images after resizing.

    Each item is a dict with ``tokens (T,)``, ``image (3, H, W)``, ``label ()``,
    ``text_present ()`` and ``image_present ()``; :func:`collate_classification` batches them.
    """

    collate = staticmethod(collate_classification)

    def __init__(
        self,
        images: Images,
        captions: Sequence[Sequence[str]],
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        vocab: Vocab,
        image_present: Sequence[bool] | np.ndarray | None = None,
        text_present: Sequence[bool] | np.ndarray | None = None,
        transform: Callable | None = None,
        *,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        image_size: int = 224,
    ) -> None:
        n = len(captions)
        _check_token_lists("captions", captions)
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        if self.labels.shape != (n,):
            raise ValueError(
                f"labels must have shape ({n},) (one per caption), got {tuple(self.labels.shape)}"
            )
        lengths = np.array([len(c) for c in captions], dtype=np.int64)
        self.text_present = _flags("text_present", text_present, n, lengths > 0)
        self.tokens = [torch.tensor(vocab.encode(c), dtype=torch.long) for c in captions]
        self.images = ImageSource(images, n, image_present, transform, mean, std, image_size)
        self.vocab = vocab

    @classmethod
    def from_manifest(
        cls,
        examples: Sequence[ManifestExample],
        vocab: Vocab,
        classes: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> ClassificationDataset:
        """A dataset from :func:`~mmtutor.data.readers.read_manifest` examples.

        Args:
            examples: the manifest lines.
            vocab: built from ``tokenize(e.text)`` of the training examples.
            classes: the class names in index order (pass the training split's to every
                split); default: the sorted string labels. Integer labels are used as given.
            **kwargs: passed on (``transform``, ``mean``, ``std``, ``image_size``).
        """
        if classes is None:
            classes = sorted({e.label for e in examples if isinstance(e.label, str)})
        index = {c: i for i, c in enumerate(classes)}
        labels = []
        for e in examples:
            if isinstance(e.label, str) and e.label not in index:
                raise ValueError(
                    f"line {e.line}: label {e.label!r} is not one of the classes {list(classes)}"
                )
            labels.append(index[e.label] if isinstance(e.label, str) else e.label)
        captions = [tokenize(e.text or "") for e in examples]
        return cls([e.image for e in examples], captions, labels, vocab, **kwargs)

    def __getitem__(self, i: int) -> Sample:
        return self._item(i, label=self.labels[i])


class TaggingDataset(_TextImageDataset):
    """Sequence-labelling (NER) samples, optionally with one image per sentence.

    Args:
        sentences: :class:`TaggedSentence` objects (or ``(tokens, tags)`` pairs), IOB2 tags.
        vocab: word vocabulary; char_vocab: character vocabulary; tag_map: tag indices.
        images: ``(N, 3, H, W)`` floats in ``[0, 1]``, ``N`` paths (``None`` = missing, e.g.
            ``[s.image_path for s in corpus]``), or ``None`` for text-only data (every image
            is then a zero image, marked missing).
        image_present: ``(N,)`` bool; default: every image given.
        transform, mean, std, image_size: as in :class:`ClassificationDataset`.
        max_word_len: characters kept per token (long URLs are cut, so one URL does not widen
            the ``(B, T, L)`` character batch of its whole batch).
        unk_replace: probability that an item's *singleton* words (seen once in these
            sentences) are read as ``<unk>`` (drawn anew at each access, from torch's global
            generator). Give it to the training set only: the ``<unk>`` embedding then learns
            what an unseen word looks like (Lample et al., NAACL 2016, use ``p = 0.5``); the
            characters still spell the word.
        cache_images: keep each image file's decoded, resized pixels after the first read
            (``3 S^2`` bytes per image), see :class:`~mmtutor.data.images.ImageSource`.
        decoded_images: with ``cache_images``: pixels already read, ``{index: (3, S, S)
            uint8}`` (see :class:`~mmtutor.data.images.ImageSource`).

    Each item has ``tokens (T,)``, ``chars (T, L)``, ``tags (T,)``, ``image (3, H, W)``,
    ``text_present ()`` and ``image_present ()``; :func:`collate_tagging` batches them.
    """

    collate = staticmethod(collate_tagging)

    def __init__(
        self,
        sentences: Sequence[TaggedSentence | tuple[Sequence[str], Sequence[str]]],
        vocab: Vocab,
        char_vocab: CharVocab,
        tag_map: TagMap,
        images: Images = None,
        *,
        image_present: Sequence[bool] | np.ndarray | None = None,
        transform: Callable | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        image_size: int = 32,
        max_word_len: int = 20,
        unk_replace: float = 0.0,
        cache_images: bool = False,
        decoded_images: Mapping[int, torch.Tensor] | None = None,
    ) -> None:
        if int(max_word_len) != max_word_len or max_word_len < 1:
            raise ValueError(f"max_word_len must be a positive integer, got {max_word_len!r}")
        if not 0.0 <= unk_replace <= 1.0:
            raise ValueError(f"unk_replace must be a probability in [0, 1], got {unk_replace!r}")
        pairs = [(s.tokens, s.tags) if isinstance(s, TaggedSentence) else s for s in sentences]
        self.tokens, self.chars, self.tags = [], [], []
        for i, (tokens, tags) in enumerate(pairs):
            if len(tokens) != len(tags):
                raise ValueError(f"sentences[{i}] has {len(tokens)} tokens but {len(tags)} tags")
            self.tokens.append(torch.tensor(vocab.encode(tokens), dtype=torch.long))
            self.chars.append(_char_matrix(char_vocab, tokens, max_word_len))  # (T, L)
            self.tags.append(torch.tensor(tag_map.encode(tags), dtype=torch.long))
        n = len(pairs)
        self.text_present = np.array([len(t) > 0 for t in self.tokens], dtype=bool)
        self.images = ImageSource(images, n, image_present, transform, mean, std, image_size,
                                  cache=cache_images, decoded=decoded_images)
        self.vocab, self.char_vocab, self.tag_map = vocab, char_vocab, tag_map
        self.unk_replace = float(unk_replace)
        ids = torch.cat(self.tokens) if self.tokens else torch.zeros(0, dtype=torch.long)
        counts = torch.bincount(ids, minlength=len(vocab))  # (V,) uses of each word id
        self.singleton = counts == 1  # (V,) words seen once here
        self.singleton[vocab.unk_id] = False

    @property
    def lengths(self) -> list[int]:
        """Tokens per sentence (what :class:`LengthBucketSampler` groups by)."""
        return [len(t) for t in self.tokens]

    def __getitem__(self, i: int) -> Sample:
        tokens = self.tokens[i]  # (T,)
        if self.unk_replace > 0 and len(tokens):
            drop = self.singleton[tokens] & (torch.rand(len(tokens)) < self.unk_replace)  # (T,)
            tokens = tokens.masked_fill(drop, self.vocab.unk_id)  # (T,)
        item = self._item(i, chars=self.chars[i], tags=self.tags[i])  # (T, L), (T,)
        item["tokens"] = tokens
        return item


def _char_matrix(char_vocab: CharVocab, tokens: Sequence[str], max_word_len: int) -> torch.Tensor:
    """The ``(T, L)`` character ids of a sentence, 0-padded, ``L = max(1, longest kept word)``."""
    ids = [char_vocab.encode(t[:max_word_len]) for t in tokens]
    out = np.zeros((len(ids), max(1, max((len(c) for c in ids), default=1))), dtype=np.int64)
    for k, c in enumerate(ids):
        out[k, : len(c)] = c
    return torch.from_numpy(out)  # (T, L)
