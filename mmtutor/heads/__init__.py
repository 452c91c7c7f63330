"""Heads: what turns fused features into predictions.

:class:`ClassificationHead` (one label per sample), :class:`TokenClassificationHead` (one
per token) and :class:`CRF` (a whole tag sequence, scored jointly).
"""

from mmtutor.heads.classification import ClassificationHead, TokenClassificationHead
from mmtutor.heads.crf import CRF, IMPOSSIBLE, allowed_transitions

__all__ = [
    "ClassificationHead",
    "TokenClassificationHead",
    "CRF",
    "IMPOSSIBLE",
    "allowed_transitions",
]
