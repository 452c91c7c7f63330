"""What a run fits on its *training* split and then applies to every split.

* :func:`word_vocab`: the word vocabulary, counted on the training tokens; with pretrained
  word vectors, the dev and test words that the vectors cover are appended (their text,
  never their tags), so an unseen test word keeps its vector instead of becoming ``<unk>``;
* :func:`check_images` / :func:`image_stats`: one split's images (arrays or file paths),
  and the per-channel mean and standard deviation fitted on the training images, reused
  for every other split.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from mmtutor.data import Vocab, channel_stats, read_pixels
from mmtutor.encoders import words_with_vectors

__all__ = ["Images", "word_vocab", "check_images", "image_stats"]

Images = np.ndarray | torch.Tensor | Sequence[str | os.PathLike[str] | None] | None


def word_vocab(train: Iterable[Sequence[str]], others: Iterable[Sequence[str]],
               word_vectors: str | None) -> Vocab:
    """The word vocabulary of a run: the training tokens, then the others' that have vectors.

    Args:
        train: the token lists of the training split (they alone are counted).
        others: the token lists of the dev and test splits.
        word_vectors: a key of :data:`~mmtutor.encoders.WORD_VECTORS`, or ``None`` (then
            ``others`` are not read: a word without a vector would only get a random row
            that no training sentence trains).

    Returns:
        :meth:`Vocab.build` of ``train``, :meth:`~mmtutor.data.Vocab.extended` with
        :func:`~mmtutor.encoders.words_with_vectors` of ``others`` (as the code released
        with Lample et al. 2016 does).
    """
    vocab = Vocab.build(train)
    if word_vectors is None:
        return vocab
    return vocab.extended(words_with_vectors(word_vectors, others))


def check_images(name: str, images: Images, n: int) -> Images:
    """Check one split's images: ``(n, 3, H, W)`` floats in ``[0, 1]``, or ``n`` paths (``None`` = missing)."""
    if images is None:
        return None
    if isinstance(images, (np.ndarray, torch.Tensor)):
        if images.ndim != 4 or images.shape[1] != 3 or len(images) != n:
            raise ValueError(f"{name} must have shape ({n}, 3, H, W) (one RGB image per "
                             f"sample, values in [0, 1]), got {tuple(images.shape)}")
        return images
    if isinstance(images, (str, bytes, os.PathLike)):
        raise ValueError(f"{name} must be an array or a list of {n} image paths, got one path "
                         f"{images!r}")
    images = list(images)
    if len(images) != n:
        raise ValueError(f"{name} must hold {n} image paths (one per sample, None = missing), "
                         f"got {len(images)}")
    return images


def image_stats(images: Images, present: Sequence[bool] | np.ndarray | None = None, *,
                image_size: int = 32, keep: dict[int, torch.Tensor] | None = None,
                ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of the training images.

    Args:
        images: ``(N, 3, H, W)`` floats in ``[0, 1]``, or ``N`` file paths (``None`` = missing).
        present: ``(N,)`` bool for an array (missing images are left out).
        image_size: the side files are resized to before they are counted (as in training).
        keep: files: a dict that receives each file's resized pixels, ``{index: (3, S, S)
            uint8}``, for the training set's image cache (``ImageSource(decoded=...)``), so
            that training does not decode every file a second time.

    Returns:
        ``(mean, std)``, three floats each; ``((0, 0, 0), (1, 1, 1))`` without any image.
    """
    if images is None:
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    if isinstance(images, (np.ndarray, torch.Tensor)):
        return channel_stats(images, present)
    from torchvision.transforms.v2.functional import to_dtype  # slow to import

    total, squares, count = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), 0
    for k, file in enumerate(images):
        if file is None:
            continue
        pixels = read_pixels(file, image_size)  # (3, S, S) uint8, as image_transform resizes
        if keep is not None:
            keep[k] = pixels
        x = to_dtype(pixels, torch.float32, scale=True).double().reshape(3, -1)  # (3, S*S)
        total += x.sum(dim=1)
        squares += (x * x).sum(dim=1)
        count += x.shape[1]
    if count == 0:
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(0).sqrt().clamp_min(1e-6)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
