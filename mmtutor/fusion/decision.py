"""Decision-level (late) fusion: combine the class distributions predicted per modality.

Inputs are per-modality logits ``l_m`` of shape ``(..., C)`` (``input_dims[m] = C`` for every
modality); outputs are **log-probabilities** ``(..., C)``, ready for ``nn.NLLLoss``. With
``p_m = softmax(l_m)``:

- :class:`AverageFusion`: ``log( mean_m p_m )``.
- :class:`WeightedVoteFusion`: ``log( sum_m w_m p_m )``, ``w`` fixed or learned.
- :class:`ProductOfExpertsFusion`: ``log_softmax( sum_m log p_m )``, i.e. ``prod_m p_m``
  renormalised (Hinton, "Training Products of Experts by Minimizing Contrastive Divergence",
  Neural Computation 2002).

Missing modalities (``present[m]`` False) are left out of the mean, sum or product; a sample
with no modality present gets the uniform distribution ``log(1 / C)``.

References:
    - Kittler, Hatef, Duin and Matas, "On Combining Classifiers", TPAMI 1998 (sum and product
      rules).
    - Hinton, Neural Computation 14(8), 2002 (products of experts).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from mmtutor.fusion.base import Fusion, ModalityWeightsMixin, expand_flags, renormalise

__all__ = ["AverageFusion", "WeightedVoteFusion", "ProductOfExpertsFusion"]


class _DecisionFusion(Fusion):
    """Base of the decision-level fusions: every modality predicts the same ``C`` classes."""

    input_kind = "logits"
    level = "decision"

    def __init__(self, input_dims: Mapping[str, int], *, output_dim: int | None = None) -> None:
        super().__init__(input_dims)
        sizes = set(self.input_dims.values())
        if len(sizes) != 1:
            raise ValueError(
                f"input_dims must give every modality the same number of classes C, "
                f"got {self.input_dims}"
            )
        self.num_classes = sizes.pop()
        if output_dim not in (None, self.num_classes):
            raise ValueError(
                f"output_dim of a decision-level fusion is the number of classes "
                f"{self.num_classes}; got output_dim={output_dim!r}"
            )
        self.output_dim = self.num_classes

    def log_probs(self, x: dict[str, Tensor]) -> Tensor:
        """``log p_m`` of every modality, stacked: ``(..., M, C)``."""
        return torch.stack([torch.log_softmax(x[m], dim=-1) for m in self.modalities], dim=-2)


class _MixtureFusion(ModalityWeightsMixin, _DecisionFusion):
    """``log sum_m w_m p_m`` with ``w`` renormalised over the present modalities."""

    def fuse(self, x: dict[str, Tensor], present: Tensor, mask: dict[str, Tensor] | None) -> Tensor:
        log_p = self.log_probs(x)  # (..., M, C)
        w = renormalise(self.modality_weights(), present)  # (B, M)
        # clamp, not log(0) = -inf: keeps gradients finite when a weight is 0
        log_w = w.clamp_min(torch.finfo(w.dtype).tiny).log().to(log_p.dtype)  # (B, M)
        log_w = expand_flags(log_w, log_p.dim() - 1)[..., None]  # (B, 1.., M, 1)
        out = torch.logsumexp(log_p + log_w, dim=-2)  # (..., C)
        anyone = expand_flags(present.any(dim=-1, keepdim=True), out.dim())  # (B, 1.., 1)
        return torch.where(anyone, out, -math.log(self.num_classes))  # (..., C)


class AverageFusion(_MixtureFusion):
    """Average of the predicted distributions: ``log( mean_m softmax(l_m) )``.

    Args:
        input_dims: ``{m: C}``, the same number of classes for every modality.
        output_dim: ``None`` or ``C``.

    Inputs:
        features: ``{m: (..., C)}`` logits, the same leading dims for every modality.
        present: optional ``{m: (B,)}`` bool; the mean runs over the present modalities only;
            none present gives the uniform distribution.

    Returns:
        ``(..., C)`` log-probabilities.
    """

    def __init__(self, input_dims: Mapping[str, int], *, output_dim: int | None = None) -> None:
        super().__init__(input_dims, output_dim=output_dim)
        self.register_buffer("uniform", torch.ones(len(self.modalities)), persistent=False)

    def modality_weights(self) -> Tensor:
        return self.uniform  # (M,)


class WeightedVoteFusion(_MixtureFusion):
    """Weighted vote: ``log( sum_m w_m softmax(l_m) )``.

    Args:
        input_dims: ``{m: C}``, the same number of classes for every modality.
        output_dim: ``None`` or ``C``.
        weights: non-negative weights ``{m: w_m}`` (or a sequence in sorted modality order),
            normalised to sum to 1; default uniform.
        learnable: learn ``w = softmax(a)`` (``a`` starts at ``log w``); default True when
            ``weights`` is None, False (fixed weights) when they are given.

    Inputs:
        features: ``{m: (..., C)}`` logits, the same leading dims for every modality.
        present: optional ``{m: (B,)}`` bool; ``w`` is renormalised over the present
            modalities; none present gives the uniform distribution.

    Returns:
        ``(..., C)`` log-probabilities.

    Attributes:
        weights: ``{m: w_m}``, the current normalised weights.
    """

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        output_dim: int | None = None,
        weights: Mapping[str, float] | Sequence[float] | None = None,
        learnable: bool | None = None,
    ) -> None:
        super().__init__(input_dims, output_dim=output_dim)
        self.learnable = weights is None if learnable is None else bool(learnable)
        w = self._initial_weights(weights)  # (M,)
        if self.learnable:
            if (w == 0).any():
                raise ValueError(f"learnable weights must be > 0 to start from, got {weights!r}")
            self.weight_logits = nn.Parameter(w.log())  # (M,)
        else:
            self.register_buffer("fixed_weights", w)  # (M,)

    def _initial_weights(self, weights: object) -> Tensor:
        M = len(self.modalities)
        if weights is None:
            return torch.full((M,), 1.0 / M)
        if isinstance(weights, Mapping):
            if set(weights) != set(self.modalities):
                raise ValueError(
                    f"weights must have the modalities {list(self.modalities)}, "
                    f"got {sorted(weights)}"
                )
            weights = [weights[m] for m in self.modalities]
        w = torch.as_tensor(weights, dtype=torch.float32)
        if w.shape != (M,) or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError(
                f"weights must be {M} non-negative numbers, not all zero (shape ({M},)), "
                f"got {weights!r} (shape {tuple(w.shape)})"
            )
        return w / w.sum()

    def modality_weights(self) -> Tensor:
        if self.learnable:
            return torch.softmax(self.weight_logits, dim=0)  # (M,)
        return self.fixed_weights  # (M,)


class ProductOfExpertsFusion(_DecisionFusion):
    """Product of experts (Hinton 2002): ``log_softmax( sum_m log_softmax(l_m) )``.

    The renormalised product ``prod_m p_m / Z``: a class wins only if no modality rules it
    out (one confident "no" vetoes it), unlike the average, where one confident "yes" can win.

    Args:
        input_dims: ``{m: C}``, the same number of classes for every modality.
        output_dim: ``None`` or ``C``.

    Inputs:
        features: ``{m: (..., C)}`` logits, the same leading dims for every modality.
        present: optional ``{m: (B,)}`` bool; only present modalities enter the product; none
            present gives the uniform distribution (the empty product).

    Returns:
        ``(..., C)`` log-probabilities.
    """

    def fuse(self, x: dict[str, Tensor], present: Tensor, mask: dict[str, Tensor] | None) -> Tensor:
        log_p = self.log_probs(x)  # (..., M, C)
        on = expand_flags(present, log_p.dim() - 1)[..., None]  # (B, 1.., M, 1)
        return torch.log_softmax((log_p * on).sum(dim=-2), dim=-1)  # (..., C)
