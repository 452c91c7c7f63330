"""Feature-level (early) fusion: combine the modalities' feature vectors into one vector.

References:
    - Concatenation: the baseline of every fusion survey, e.g. Baltrušaitis, Ahuja and
      Morency, "Multimodal Machine Learning: A Survey and Taxonomy", TPAMI 2019.
    - Zadeh, Chen, Poria, Cambria and Morency, "Tensor Fusion Network for Multimodal Sentiment
      Analysis", EMNLP 2017 (TFN).
    - Liu, Shen, Lakshminarasimhan, Liang, Zadeh and Morency, "Efficient Low-rank Multimodal
      Fusion with Modality-Specific Factors", ACL 2018 (LMF).

All fusions here have ``input_kind = "vector"``: each input is ``(..., d_m)`` with the same
leading dims, so a pooled ``(B, d_m)`` and a per-token ``(B, T, d_m)`` both work, and the
output is ``(..., output_dim)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmtutor.fusion.base import (
    Fusion,
    ModalityWeightsMixin,
    expand_flags,
    expand_to,
    renormalise,
)

__all__ = ["ConcatFusion", "WeightedSumFusion", "TensorFusion", "LowRankFusion"]

_ALPHA_MODES = ("learnable", "fixed", "per_modality")


def append_one(h: Tensor) -> Tensor:
    """Return ``[h; 1]``: ``(..., d)`` -> ``(..., d + 1)`` (the constant 1 of TFN and LMF)."""
    return torch.cat([h, h.new_ones(h.shape[:-1] + (1,))], dim=-1)  # (..., d + 1)


class ConcatFusion(Fusion):
    """Concatenation: ``z = [x_1; x_2; ...]`` in sorted modality order.

    Args:
        input_dims: ``{m: d_m}``.
        output_dim: ``None`` (default) returns the concatenation itself, of size
            ``sum_m d_m`` (``+ M`` with ``append_presence``); an int adds a learned
            ``nn.Linear`` from that size to ``output_dim``.
        append_presence: also append the ``M`` presence flags (1.0 present, 0.0 missing), so
            a following layer can tell a missing modality from an all-zero one.

    Inputs:
        features: ``{m: (..., d_m)}``, the same leading dims for every modality.
        present: optional ``{m: (B,)}`` bool. A missing modality's block is zeroed.

    Returns:
        ``(..., output_dim)``.

    Examples:
        >>> f = ConcatFusion({"text": 4, "image": 3})
        >>> f({"text": torch.ones(2, 4), "image": torch.zeros(2, 3)}).shape
        torch.Size([2, 7])
    """

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        output_dim: int | None = None,
        append_presence: bool = False,
    ) -> None:
        super().__init__(input_dims)
        self.append_presence = bool(append_presence)
        natural = sum(self.input_dims.values()) + len(self.modalities) * self.append_presence
        self.out = self._output_layer(natural, output_dim)

    def fuse(self, x: dict[str, Tensor], present: Tensor, mask: dict[str, Tensor] | None) -> Tensor:
        blocks = [x[m] for m in self.modalities]  # M x (..., d_m)
        if self.append_presence:
            lead = blocks[0].shape[:-1]
            flags = expand_flags(present.to(blocks[0].dtype), len(lead) + 1)  # (B, 1.., M)
            blocks.append(flags.expand(*lead, present.shape[1]))  # (..., M)
        z = torch.cat(blocks, dim=-1)  # (..., sum_m d_m [+ M])
        return self.out(z)  # (..., output_dim)


class WeightedSumFusion(ModalityWeightsMixin, Fusion):
    """Weighted sum in a shared space: ``z = sum_m w_m W_m x_m``.

    Each modality is first mapped by its own ``nn.Linear`` to the shared ``output_dim``
    space: one cannot add raw pixel features to word vectors, their axes mean different
    things and their sizes differ. Then, for two modalities ``x`` and ``y`` (sorted order),
    ``z = alpha x' + (1 - alpha) y'``; with ``alpha="per_modality"``,
    ``w = softmax(a)`` over any number of modalities.

    Args:
        input_dims: ``{m: d_m}``.
        output_dim: size of the shared space; default ``max_m d_m``.
        alpha: ``"learnable"`` (two modalities, ``alpha = sigmoid(a)`` with ``a`` learned),
            ``"fixed"`` (two modalities, ``alpha = alpha_init`` never changes) or
            ``"per_modality"`` (any number of modalities, learned ``w = softmax(a)``, starts
            uniform).
        alpha_init: the starting ``alpha`` (weight of the first modality in sorted order).

    Attributes:
        weights: ``{m: w_m}``, the current weights (``alpha`` and ``1 - alpha`` for two).

    Inputs:
        features: ``{m: (..., d_m)}``, the same leading dims for every modality.
        present: optional ``{m: (B,)}`` bool. The weights are renormalised over the present
            modalities of each sample (one present modality gets weight 1); a sample with
            none present gets ``z = 0``.

    Returns:
        ``(..., output_dim)``.
    """

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        output_dim: int | None = None,
        alpha: str = "learnable",
        alpha_init: float = 0.5,
    ) -> None:
        super().__init__(input_dims)
        if alpha not in _ALPHA_MODES:
            raise ValueError(f"alpha must be one of {_ALPHA_MODES}, got {alpha!r}")
        if alpha != "per_modality" and len(self.modalities) != 2:
            raise ValueError(
                f"alpha={alpha!r} mixes exactly two modalities, got {list(self.modalities)}; "
                "use alpha='per_modality' for more"
            )
        if alpha == "learnable" and not 0.0 < alpha_init < 1.0:
            raise ValueError(f"alpha_init must be in (0, 1) when learnable, got {alpha_init!r}")
        if alpha == "fixed" and not 0.0 <= alpha_init <= 1.0:
            raise ValueError(f"alpha_init must be in [0, 1], got {alpha_init!r}")
        self.alpha = alpha
        self.proj = self._per_modality_linear(self._shared_dim(output_dim))
        if alpha == "learnable":  # sigmoid(a) = alpha_init
            self.alpha_logit = nn.Parameter(torch.tensor(math.log(alpha_init / (1 - alpha_init))))
        elif alpha == "fixed":
            self.register_buffer("alpha_value", torch.tensor(float(alpha_init)))
        else:
            self.weight_logits = nn.Parameter(torch.zeros(len(self.modalities)))  # (M,)

    def modality_weights(self) -> Tensor:
        """The weights ``w`` ``(M,)`` before renormalisation over present modalities."""
        if self.alpha == "per_modality":
            return torch.softmax(self.weight_logits, dim=0)  # (M,)
        a = torch.sigmoid(self.alpha_logit) if self.alpha == "learnable" else self.alpha_value
        return torch.stack([a, 1 - a])  # (2,)

    def fuse(self, x: dict[str, Tensor], present: Tensor, mask: dict[str, Tensor] | None) -> Tensor:
        w = renormalise(self.modality_weights(), present)  # (B, M)
        z = 0
        for j, m in enumerate(self.modalities):
            x_m = self.proj[j](x[m])  # (..., output_dim)
            z = z + expand_to(w[:, j], x_m).to(x_m.dtype) * x_m  # (..., output_dim)
        return z


class _OuterProductBase(Fusion):
    """Shared parts of TFN and LMF: optional projections ``h_m = W_m x_m`` and ``[h_m; 1]``."""

    def __init__(
        self, input_dims: Mapping[str, int], project_dims: int | Mapping[str, int] | None
    ) -> None:
        super().__init__(input_dims)
        if project_dims is None:
            self.proj = None
            self.hidden_dims = dict(self.input_dims)
        else:
            self.proj = self._per_modality_linear(project_dims)
            self.hidden_dims = {
                m: lin.out_features for m, lin in zip(self.modalities, self.proj, strict=True)
            }

    def _augmented(self, x: dict[str, Tensor], present: Tensor) -> list[Tensor]:
        """``[h_m; 1]`` per modality, with ``h_m = 0`` for missing modalities."""
        out = []
        for j, m in enumerate(self.modalities):
            h = x[m] if self.proj is None else self.proj[j](x[m])  # (..., d_m)
            h = torch.where(expand_to(present[:, j], h), h, 0)  # (..., d_m)
            out.append(append_one(h))  # (..., d_m + 1)
        return out


class TensorFusion(_OuterProductBase):
    """Tensor Fusion Network (Zadeh et al., EMNLP 2017): ``z = vec([h_1;1] ⊗ [h_2;1] ⊗ ...)``.

    The appended 1 keeps the unimodal terms (``h_1``, ``h_2``) and the bimodal terms
    (``h_1 h_2^T``) next to the trimodal ones. ``vec`` flattens row-major with the first
    modality (sorted order) outermost, so ``z[i * (d_2 + 1) + j] = [h_1;1]_i [h_2;1]_j``.

    Args:
        input_dims: ``{m: d_m}``.
        output_dim: ``None`` (default) returns the vector itself, of size
            ``prod_m (d'_m + 1)``; an int adds a learned ``nn.Linear`` to ``output_dim``.
        project_dims: optional size ``d'_m`` (int, or ``{m: d'_m}``) of a learned
            ``nn.Linear`` applied to each modality first: the outer product grows as the
            product of the sizes, so project to a few dims (the paper's modality subnetworks).

    Inputs:
        features: ``{m: (..., d_m)}``, the same leading dims for every modality.
        present: optional ``{m: (B,)}`` bool. A missing modality gets ``h_m = 0``, so
            ``[h_m; 1] = [0; 1]`` and only the terms of the other modalities survive.

    Returns:
        ``(..., output_dim)``.
    """

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        output_dim: int | None = None,
        project_dims: int | Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(input_dims, project_dims)
        natural = math.prod(d + 1 for d in self.hidden_dims.values())
        self.out = self._output_layer(natural, output_dim)

    def fuse(self, x: dict[str, Tensor], present: Tensor, mask: dict[str, Tensor] | None) -> Tensor:
        z_ms = self._augmented(x, present)  # M x (..., d_m + 1)
        z = z_ms[0]  # (..., d_1 + 1)
        for z_m in z_ms[1:]:
            z = (z[..., :, None] * z_m[..., None, :]).flatten(-2)  # (..., prod (d_k + 1))
        return self.out(z)  # (..., output_dim)


class LowRankFusion(_OuterProductBase):
    """Low-rank Multimodal Fusion (Liu et al., ACL 2018).

    TFN followed by a linear layer, ``h = W · vec(⊗_m [h_m; 1]) + b``, with the weight
    tensor ``W`` of shape ``(d_1+1, ..., d_M+1, d_h)`` kept in rank-``r`` CP form,
    ``W = sum_{i=1}^r ⊗_m W_m^{(i)}``, so the outer product is never built:

        ``h = sum_{i=1}^r prod_m ([h_m; 1] W_m^{(i)}) + b``

    with modality-specific factors ``W_m^{(i)}`` of shape ``(d_m + 1, d_h)`` (stored together
    as the parameter ``factors[j]`` of shape ``(r, d_m + 1, d_h)``). Cost: linear, not
    exponential, in the number of modalities.

    Args:
        input_dims: ``{m: d_m}``.
        output_dim: ``d_h``; default ``max_m d_m``.
        rank: ``r``, the number of rank-1 terms.
        project_dims: optional ``nn.Linear`` size per modality first, as in TensorFusion.

    Inputs:
        features: ``{m: (..., d_m)}``, the same leading dims for every modality.
        present: optional ``{m: (B,)}`` bool. A missing modality gets ``h_m = 0`` (as in
            TensorFusion), so its factor contributes only its last row ``W_m^{(i)}[-1]``.

    Returns:
        ``(..., output_dim)``.
    """

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        output_dim: int | None = None,
        rank: int = 4,
        project_dims: int | Mapping[str, int] | None = None,
    ) -> None:
        super().__init__(input_dims, project_dims)
        d_h = self._shared_dim(output_dim)
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"rank must be a positive int, got {rank!r}")
        self.rank = rank
        self.factors = nn.ParameterList(
            nn.Parameter(nn.init.xavier_normal_(torch.empty(rank, d + 1, d_h)))
            for d in self.hidden_dims.values()
        )  # M x (r, d_m + 1, d_h)
        self.bias = nn.Parameter(torch.zeros(d_h))  # (d_h,)

    def fuse(self, x: dict[str, Tensor], present: Tensor, mask: dict[str, Tensor] | None) -> Tensor:
        prod = 1
        for z_m, W_m in zip(self._augmented(x, present), self.factors, strict=True):
            prod = prod * torch.einsum("...k,rkh->...rh", z_m, W_m)  # (..., r, d_h)
        return prod.sum(dim=-2) + self.bias  # (..., d_h)
