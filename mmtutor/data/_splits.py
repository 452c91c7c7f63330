"""Behaviour shared by the generated data sets: splits, loaders and a short repr."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from torch.utils.data import Dataset

    from mmtutor.data.loaders import Loaders


class SplitBase:
    """A split holding ``images`` ``(N, 3, S, S)`` and per-sample arrays."""

    images: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={len(self)}, images={self.images.shape})"


class GeneratedData:
    """Train, validation and test splits with ceilings; subclasses define :meth:`datasets`."""

    train: SplitBase
    val: SplitBase
    test: SplitBase
    ceilings: dict[str, float]

    def datasets(self) -> tuple[Dataset, ...]:
        raise NotImplementedError

    def loaders(self, batch_size: int = 64, *, seed: int = 0, num_workers: int = 0) -> Loaders:
        """``train_dl, val_dl, test_dl = data.loaders(64)``: the training loader is shuffled
        with a generator seeded by ``seed``; the vocabularies are attributes of ``data``."""
        from mmtutor.data.loaders import make_loaders

        return make_loaders(
            *self.datasets(), batch_size=batch_size, seed=seed, num_workers=num_workers
        )

    def __repr__(self) -> str:
        ceilings = ", ".join(f"{k}={v:.3f}" for k, v in self.ceilings.items())
        sizes = ", ".join(f"{k}={len(getattr(self, k))}" for k in ("train", "val", "test"))
        return f"{type(self).__name__}({sizes}, ceilings: {ceilings})"
