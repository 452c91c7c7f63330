"""Image loading (PIL), transforms (torchvision ``transforms.v2``) and per-channel normalisation.

Two sources of images feed the datasets: arrays of generated images ``(N, 3, H, W)`` with
values in ``[0, 1]``, and files on disk (real data). :class:`ImageSource` serves both the
same way: item ``i`` is a normalised ``(3, H, W)`` float tensor, all zeros when the image
is missing. Normalising with per-channel mean and standard deviation puts every channel
on the same scale, which makes optimisation easier; the statistics must come from the
*training* split and be reused for validation and test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "load_image",
    "image_transform",
    "channel_stats",
    "read_pixels",
    "ImageSource",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ImagePath = str | os.PathLike[str]


def load_image(path: ImagePath):  # -> PIL.Image.Image
    """Open an image file with PIL and convert it to RGB.

    Raises:
        ValueError: naming the file if it is missing or not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise ValueError(f"image file {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"image file {path} is not a readable image ({err})") from None


def image_transform(
    size: int = 224,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Callable:
    """The standard pipeline for a PIL image: resize, to tensor, to float in ``[0, 1]``, normalise.

    Args:
        size: output side ``S`` (the model's input size, e.g. 224 for ResNet-18, 32 for SmallCNN).
        mean: per-channel mean to subtract (ImageNet's by default, as pretrained CNNs expect).
        std: per-channel standard deviation to divide by.

    Returns:
        A ``torchvision.transforms.v2.Compose``: PIL image -> ``(3, S, S)`` float32 tensor.
    """
    from torchvision.transforms import v2  # imported here: torchvision is slow to import

    if int(size) != size or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize((int(size), int(size)), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(mean), std=list(std)),
        ]
    )


def channel_stats(
    images: np.ndarray | torch.Tensor, present: np.ndarray | torch.Tensor | None = None
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Per-channel mean and standard deviation over the present images.

    Args:
        images: ``(N, 3, H, W)`` floats.
        present: ``(N,)`` bool; missing images (all zeros) are left out. ``None``: all.

    Returns:
        ``(mean, std)``, three floats each (``std`` at least ``1e-6``; ``(0, 1)`` if no
        image is present).
    """
    x = torch.as_tensor(images, dtype=torch.float32)
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"images must have shape (N, 3, H, W), got {tuple(x.shape)}")
    if present is not None:
        x = x[torch.as_tensor(present, dtype=torch.bool)]
    if len(x) == 0:
        return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    per_channel = x.transpose(0, 1).reshape(3, -1).double()  # (3, N*H*W)
    mean = per_channel.mean(dim=1)
    std = per_channel.std(dim=1, unbiased=False).clamp_min(1e-6)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)  # type: ignore[return-value]


def read_pixels(path: ImagePath, size: int) -> torch.Tensor:
    """An image file decoded and resized as :func:`image_transform` does, before scaling.

    Args:
        path: the image file.
        size: the output side ``S``.

    Returns:
        ``(3, S, S)`` uint8: what :class:`ImageSource` keeps per file with ``cache=True``.
    """
    from torchvision.transforms import v2  # imported here: torchvision is slow to import

    image = v2.functional.to_image(load_image(path))  # (3, H, W) uint8
    return v2.functional.resize(image, [int(size), int(size)], antialias=True)  # (3, S, S)


class ImageSource:
    """Normalised images by index, from an array or from files; zeros where missing.

    Args:
        images: ``(N, 3, H, W)`` floats in ``[0, 1]`` (numpy or torch), or a sequence of
            ``N`` file paths with ``None`` for a missing image, or ``None`` (no images: every
            item is missing).
        n: the number of items (checked against ``images``).
        present: ``(N,)`` bool, False marks a missing image. Default: every image given.
        transform: arrays: applied to each ``(3, H, W)`` tensor in ``[0, 1]`` before
            normalising (augmentation); files: maps the PIL image to the final normalised
            tensor (default :func:`image_transform` with ``image_size``, ``mean``, ``std``).
        mean, std: per-channel statistics. Arrays: default :func:`channel_stats` of these
            images (pass the training split's for validation and test). Files: default ImageNet's.
        image_size: side of file images (and of the zero images when ``images`` is None).
        cache: files with the default transform: keep each image's resized ``uint8`` pixels
            after its first read (``3 * image_size**2`` bytes each), so later epochs
            normalise them instead of decoding and resizing the file again.
        decoded: with ``cache``: pixels already read (``{index: (3, S, S) uint8}``, from
            :func:`read_pixels`, e.g. while computing the training statistics), so that no
            file is decoded twice.
    """

    def __init__(
        self,
        images: np.ndarray | torch.Tensor | Sequence[ImagePath | None] | None,
        n: int,
        present: np.ndarray | torch.Tensor | Sequence[bool] | None = None,
        transform: Callable | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        image_size: int = 32,
        *,
        cache: bool = False,
        decoded: Mapping[int, torch.Tensor] | None = None,
    ) -> None:
        self.transform = transform
        self._cache: dict[int, torch.Tensor] | None = (
            {} if cache and transform is None and images is not None
            and not isinstance(images, (np.ndarray, torch.Tensor)) else None)
        if decoded and self._cache is None:
            raise ValueError("decoded pixels need cache=True, image files and the default "
                             "transform")
        self._array: torch.Tensor | None = None
        self._paths: list[Path | None] | None = None
        if images is None:
            given = np.zeros(n, dtype=bool)
            self.shape = (3, int(image_size), int(image_size))
        elif isinstance(images, (np.ndarray, torch.Tensor)):
            array = torch.as_tensor(np.asarray(images, dtype=np.float32))
            if array.dim() != 4 or array.shape[1] != 3 or len(array) != n:
                raise ValueError(
                    f"images must have shape ({n}, 3, H, W) (one RGB image per sample), "
                    f"got {tuple(array.shape)}"
                )
            given = np.ones(n, dtype=bool)
            self.shape = tuple(array.shape[1:])
            self._array = array
        else:
            paths = list(images)
            if len(paths) != n:
                raise ValueError(f"images must hold {n} paths (one per sample), got {len(paths)}")
            self._paths = [None if p is None else Path(p) for p in paths]
            given = np.array([p is not None for p in paths], dtype=bool)
            self.shape = (3, int(image_size), int(image_size))
        self.present = given & self._check_present(present, n)
        for i, pixels in (decoded or {}).items():
            if not (0 <= i < n and self.present[i]) or pixels.dtype != torch.uint8 \
                    or tuple(pixels.shape) != self.shape:
                raise ValueError(f"decoded[{i}] must be the {self.shape} uint8 pixels of a "
                                 f"present image among the {n}; got {pixels.dtype} of shape "
                                 f"{tuple(pixels.shape)}")
            self._cache[i] = pixels  # type: ignore[index]
        if self._array is not None:
            default_mean, default_std = channel_stats(self._array, self.present)
            self.mean = tuple(mean) if mean is not None else default_mean
            self.std = tuple(std) if std is not None else default_std
            if transform is None:  # normalise everything once, not per item
                self._array = self._normalise(self._array)
                self._array[torch.from_numpy(~self.present)] = 0.0
        else:
            self.mean = tuple(mean) if mean is not None else IMAGENET_MEAN
            self.std = tuple(std) if std is not None else IMAGENET_STD
            if self._paths is not None and transform is None:
                self.transform = image_transform(int(image_size), mean=self.mean, std=self.std)

    @staticmethod
    def _check_present(present: object, n: int) -> np.ndarray:
        if present is None:
            return np.ones(n, dtype=bool)
        flags = np.asarray(present)
        if flags.shape != (n,):
            raise ValueError(f"image_present must have shape ({n},), got {flags.shape}")
        return flags.astype(bool)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=x.dtype).view(3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype).view(3, 1, 1)
        return (x - mean) / std  # (..., 3, H, W)

    def __len__(self) -> int:
        return len(self.present)

    def __getitem__(self, i: int) -> torch.Tensor:
        """The normalised image ``i``, ``(3, H, W)`` float32 (zeros when missing)."""
        if not self.present[i]:
            return torch.zeros(self.shape)
        if self._array is not None:
            if self.transform is None:
                return self._array[i]
            return self._normalise(self.transform(self._array[i]))
        path = self._paths[i]  # type: ignore[index]
        if self._cache is not None:  # decode and resize once, normalise at every access
            if i not in self._cache:
                self._cache[i] = read_pixels(path, self.shape[-1])  # (3, S, S) uint8
            return self._normalise(self._cache[i].float() / 255.0)  # (3, S, S)
        image = self.transform(load_image(path))  # type: ignore[misc]
        if tuple(image.shape) != self.shape:
            raise ValueError(
                f"the transform made an image of shape {tuple(image.shape)} from {path}; "
                f"expected {self.shape} (set image_size to the transform's output size)"
            )
        return image
