"""Fusion modules: how to combine what the encoders say about each modality.

Every fusion takes ``features: {modality: Tensor}`` (plus optional ``present`` and
``token_mask``) and handles the modalities in sorted order; see ``CONTRIBUTING.md``,
section "Fusion modules", and :class:`mmtutor.fusion.base.Fusion`.

==========================  ========  ==================================================
name                        level     class
==========================  ========  ==================================================
``"concat"``                feature   :class:`ConcatFusion`
``"weighted_sum"``          feature   :class:`WeightedSumFusion`
``"tensor"``                feature   :class:`TensorFusion` (TFN, Zadeh et al. 2017)
``"low_rank"``              feature   :class:`LowRankFusion` (LMF, Liu et al. 2018)
``"gated"``                 model     :class:`GatedFusion` (GMU, Arevalo et al. 2017)
``"film"``                  model     :class:`FiLMFusion` (Perez et al. 2018)
``"cross_attention"``       model     :class:`CrossAttentionFusion` (MulT, Tsai et al. 2019)
``"transformer"``           model     :class:`TransformerFusion`
``"average"``               decision  :class:`AverageFusion`
``"weighted_vote"``         decision  :class:`WeightedVoteFusion`
``"product_of_experts"``    decision  :class:`ProductOfExpertsFusion` (Hinton 2002)
==========================  ========  ==================================================

:class:`Stacking` (Wolpert 1992) is decision-level too, but a scikit-learn meta-classifier
fitted on held-out predictions, not a module, so it is not in :data:`FUSIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmtutor.fusion.attention import CrossAttentionFusion
from mmtutor.fusion.base import Fusion
from mmtutor.fusion.decision import AverageFusion, ProductOfExpertsFusion, WeightedVoteFusion
from mmtutor.fusion.feature import ConcatFusion, LowRankFusion, TensorFusion, WeightedSumFusion
from mmtutor.fusion.film import FiLMFusion
from mmtutor.fusion.gated import GatedFusion
from mmtutor.fusion.stacking import Stacking
from mmtutor.fusion.transformer import TransformerFusion

__all__ = [
    "FUSIONS",
    "FUSION_LEVELS",
    "build_fusion",
    "Fusion",
    "ConcatFusion",
    "WeightedSumFusion",
    "TensorFusion",
    "LowRankFusion",
    "GatedFusion",
    "FiLMFusion",
    "CrossAttentionFusion",
    "TransformerFusion",
    "AverageFusion",
    "WeightedVoteFusion",
    "ProductOfExpertsFusion",
    "Stacking",
]

FUSIONS: dict[str, type[Fusion]] = {
    "concat": ConcatFusion,
    "weighted_sum": WeightedSumFusion,
    "tensor": TensorFusion,
    "low_rank": LowRankFusion,
    "gated": GatedFusion,
    "film": FiLMFusion,
    "cross_attention": CrossAttentionFusion,
    "transformer": TransformerFusion,
    "average": AverageFusion,
    "weighted_vote": WeightedVoteFusion,
    "product_of_experts": ProductOfExpertsFusion,
}
"""Short name -> fusion class."""

FUSION_LEVELS: dict[str, str] = {name: cls.level for name, cls in FUSIONS.items()}
"""Short name -> ``"feature"``, ``"model"`` or ``"decision"``, for the book's tables."""


def build_fusion(name: str, input_dims: Mapping[str, int], **kwargs: Any) -> Fusion:
    """Build the fusion registered as ``name`` in :data:`FUSIONS`.

    Args:
        name: a key of :data:`FUSIONS`, e.g. ``"concat"``.
        input_dims: ``{modality: d_m}`` (``{modality: C}`` for decision-level fusions).
        **kwargs: the class's keyword-only options, e.g. ``output_dim=128``.

    Raises:
        ValueError: if ``name`` is not registered (the message lists the valid names).

    Examples:
        >>> build_fusion("concat", {"text": 8, "image": 4}).output_dim
        12
    """
    if name not in FUSIONS:
        raise ValueError(f"unknown fusion name={name!r}; choose one of {sorted(FUSIONS)}")
    return FUSIONS[name](input_dims, **kwargs)
