"""Stacking: a meta-classifier learns how to combine the modalities' predicted probabilities.

Reference:
    Wolpert, "Stacked Generalization", Neural Networks 5(2), 1992.

Unlike the fusion modules this is not an ``nn.Module``: the meta-classifier is a
scikit-learn estimator fitted after the unimodal models, on their predictions for **held-out**
data (a validation split, or out-of-fold predictions). Fitted on the training split, where
the unimodal models are overconfident, it would learn to trust them too much.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["Stacking"]


def _to_numpy(name: str, value: object) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be an array of shape (N, C), got {type(value).__name__}"
        ) from err


class Stacking:
    """Stacked generalisation (Wolpert 1992) over per-modality class probabilities.

    The meta-classifier sees the concatenated probabilities ``[p_1; p_2; ...]`` (sorted
    modality order) of shape ``(N, M * C)`` and predicts the label.

    Args:
        meta: a scikit-learn classifier (``fit``, ``predict_proba``); it is cloned by
            :meth:`fit`. Default: ``LogisticRegression(max_iter=1000)``.

    Attributes:
        modalities_: the modality names seen by :meth:`fit`, sorted.
        num_classes_: ``C``, the number of classes of the probabilities.
        meta_: the fitted meta-classifier.
        classes_: the labels, as the meta-classifier orders them.

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> y = rng.integers(0, 2, 200)
        >>> probs = {"text": np.eye(2)[y] * 0.6 + 0.2, "image": rng.dirichlet([1, 1], 200)}
        >>> Stacking().fit(probs, y).predict(probs)[:5].tolist() == y[:5].tolist()
        True
    """

    def __init__(self, meta: Any = None) -> None:
        self.meta = meta

    def _features(
        self,
        probs: Mapping[str, object],
        present: Mapping[str, object] | None = None,
        *,
        fitting: bool = False,
    ) -> np.ndarray:
        if not isinstance(probs, Mapping) or not probs:
            raise ValueError(
                "probs must be a non-empty mapping from modality name to (N, C) probabilities, "
                f"got {type(probs).__name__}"
            )
        names = sorted(probs) if fitting else list(self.modalities_)
        extra = sorted(set(probs) - set(names))
        if extra:
            raise ValueError(f"probs has unexpected modalities {extra}; expected {names}")
        arrays = {m: _to_numpy(f"probs[{m!r}]", probs[m]) for m in probs}
        shapes = {m: a.shape for m, a in arrays.items()}
        first = next(iter(shapes.values()))
        N = first[0] if first else 0
        C = (first[1] if len(first) == 2 else 0) if fitting else self.num_classes_
        for m, shape in shapes.items():
            if shape != (N, C) or C < 1:
                raise ValueError(
                    f"probs[{m!r}] must have shape (N, C) = ({N}, {C}), got {shape} "
                    f"(all shapes: {shapes})"
                )
        flags = {} if present is None else present
        if not isinstance(flags, Mapping) or set(flags) - set(names):
            raise ValueError(f"present must be a mapping with some of the modalities {names}")
        uniform = np.full((N, C), 1.0 / C)
        blocks = []
        for m in names:
            a = arrays.get(m, uniform)
            if m in flags:
                keep = np.asarray(
                    flags[m].cpu() if isinstance(flags[m], torch.Tensor) else flags[m], dtype=bool
                )
                if keep.shape != (N,):
                    raise ValueError(f"present[{m!r}] must have shape ({N},), got {keep.shape}")
                a = np.where(keep[:, None], a, uniform)
            blocks.append(a)
        if fitting:
            self.modalities_, self.num_classes_ = tuple(names), C
        return np.concatenate(blocks, axis=1)  # (N, M * C)

    def fit(self, probs: Mapping[str, object], y: object) -> Stacking:
        """Fit the meta-classifier on held-out predictions.

        Args:
            probs: ``{m: (N, C)}`` probabilities (NumPy arrays or tensors) of every modality,
                predicted for data the unimodal models were not trained on.
            y: ``(N,)`` the true labels.

        Returns:
            ``self``.
        """
        from sklearn.base import clone
        from sklearn.linear_model import LogisticRegression

        X = self._features(probs, fitting=True)  # (N, M * C)
        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape (N,) = ({X.shape[0]},), got {y.shape}")
        meta = LogisticRegression(max_iter=1000) if self.meta is None else clone(self.meta)
        self.meta_ = meta.fit(X, y)
        self.classes_ = self.meta_.classes_
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "meta_"):
            raise ValueError("this Stacking is not fitted yet; call fit(probs, y) first")

    def predict_proba(
        self, probs: Mapping[str, object], present: Mapping[str, object] | None = None
    ) -> np.ndarray:
        """Probabilities of the classes ``(N, len(classes_))``.

        A modality left out of ``probs``, or rows where ``present[m]`` is False, get the
        uniform distribution ``1 / C`` in its place (what a modality that knows nothing would
        say), so the meta-classifier leans on the other modalities.
        """
        self._check_fitted()
        return self.meta_.predict_proba(self._features(probs, present))

    def predict(
        self, probs: Mapping[str, object], present: Mapping[str, object] | None = None
    ) -> np.ndarray:
        """Predicted labels ``(N,)``; missing modalities as in :meth:`predict_proba`."""
        proba = self.predict_proba(probs, present)  # (N, len(classes_))
        return self.classes_[proba.argmax(axis=1)]
