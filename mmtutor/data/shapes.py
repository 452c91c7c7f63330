"""Procedural drawing of small RGB images of simple shapes, vectorised with numpy.

Each image is one filled shape (circle, square, triangle, cross, diamond or ring) of random
size, position and colour on a random background colour, plus Gaussian pixel noise; class
``-1`` draws the background alone (a "blank" image that shows no class). Only
the *kind* of shape carries information; colour, position, size and noise are nuisances a
CNN must learn to see through. The shape never touches the image border, so the border
pixels always show the background.

Drawing uses coordinate grids and boolean masks over the whole batch at once (no Python
loop over pixels), so thousands of 32 x 32 images take a fraction of a second.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SHAPES", "draw_shapes"]

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "diamond", "ring")
"""Shape names; a shape class is an index into this tuple."""

_MIN_IMAGE_SIZE = 8


def _shape_mask(kind: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of shape ``kind`` in coordinates normalised by the shape's radius.

    Args:
        kind: index into :data:`SHAPES`.
        u: horizontal offsets from the centre divided by the radius, ``(n, 1, S)``.
        v: vertical offsets (pointing down) divided by the radius, ``(n, S, 1)``.

    Returns:
        ``(n, S, S)`` bool mask; every shape lies inside the unit square ``|u|, |v| <= 1``.
    """
    name = SHAPES[kind]
    if name == "circle":
        return u**2 + v**2 <= 1.0
    if name == "square":  # a little smaller than the circle so the areas are alike
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if name == "triangle":  # apex up: zero width at v = -0.9, full width at v = 0.8
        return (v >= -0.9) & (v <= 0.8) & (np.abs(u) <= (v + 0.9) / 1.7)
    if name == "cross":  # a plus sign with arms 0.6 radius wide
        return ((np.abs(u) <= 0.3) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1.0))
    if name == "diamond":
        return np.abs(u) + np.abs(v) <= 1.0
    radius2 = u**2 + v**2  # ring
    return (radius2 >= 0.55**2) & (radius2 <= 1.0)


def draw_shapes(
    shape_classes: np.ndarray,
    *,
    rng: np.random.Generator,
    image_size: int = 32,
    pixel_noise: float = 0.1,
) -> np.ndarray:
    """Draw one image per entry of ``shape_classes``.

    The background colour is uniform in ``[0, 0.35]^3`` and the shape's in ``[0.6, 1]^3``:
    colours vary, but the shape is always brighter than its background. The radius is 25 %
    to 40 % of the image side; the centre is uniform over the positions that keep the
    shape one pixel away from the border.

    Args:
        shape_classes: ``(N,)`` integer indices into :data:`SHAPES`, or ``-1`` for no shape.
        rng: the random generator (all randomness comes from it, in a fixed order).
        image_size: side ``S`` of the square images, at least 8.
        pixel_noise: standard deviation of the Gaussian noise added to every pixel
            before clipping to ``[0, 1]``.

    Returns:
        ``(N, 3, S, S)`` float32 array with values in ``[0, 1]``.

    Raises:
        ValueError: if a class is out of range, ``image_size < 8`` or ``pixel_noise < 0``.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> draw_shapes(np.array([0, 1, 2]), rng=rng, image_size=16).shape
        (3, 3, 16, 16)
    """
    classes = np.asarray(shape_classes)
    if classes.ndim != 1 or not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(
            f"shape_classes must be a 1-D integer array, got dtype {classes.dtype} "
            f"and shape {classes.shape}"
        )
    if classes.size and (classes.min() < -1 or classes.max() >= len(SHAPES)):
        raise ValueError(
            f"shape_classes must lie in [-1, {len(SHAPES) - 1}] (indices into SHAPES, -1 for "
            "none), "
            f"got values from {classes.min()} to {classes.max()}"
        )
    if int(image_size) != image_size or image_size < _MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be an integer >= {_MIN_IMAGE_SIZE}, got {image_size!r}")
    if pixel_noise < 0:
        raise ValueError(f"pixel_noise must be >= 0, got {pixel_noise!r}")
    n, size = len(classes), int(image_size)

    # Colours are nuisances, but the contrast keeps one sign: a bright shape on a dark
    # background (figure/ground), so a small CNN learns the shapes in a few epochs.
    background = rng.uniform(0.0, 0.35, (n, 3)).astype(np.float32)  # (N, 3)
    foreground = rng.uniform(0.6, 1.0, (n, 3)).astype(np.float32)  # (N, 3)
    radius = rng.uniform(0.25, 0.40, n).astype(np.float32) * size  # (N,) in pixels
    low, high = radius + 1.0, size - 1.0 - radius
    cx = low + rng.uniform(0.0, 1.0, n).astype(np.float32) * (high - low)  # (N,)
    cy = low + rng.uniform(0.0, 1.0, n).astype(np.float32) * (high - low)  # (N,)

    centres = np.arange(size, dtype=np.float32) + 0.5  # pixel centres
    u = (centres[None, None, :] - cx[:, None, None]) / radius[:, None, None]  # (N, 1, S)
    v = (centres[None, :, None] - cy[:, None, None]) / radius[:, None, None]  # (N, S, 1)
    mask = np.zeros((n, size, size), dtype=bool)  # (N, S, S)
    for kind in np.unique(classes[classes >= 0]):
        rows = classes == kind
        mask[rows] = _shape_mask(int(kind), u[rows], v[rows])

    m = mask[:, None, :, :]  # (N, 1, S, S)
    images = np.where(m, foreground[:, :, None, None], background[:, :, None, None])  # (N, 3, S, S)
    if pixel_noise > 0:
        images = images + pixel_noise * rng.standard_normal(images.shape, dtype=np.float32)
    return np.clip(images, 0.0, 1.0).astype(np.float32, copy=False)
