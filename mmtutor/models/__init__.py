"""Composite models: encoders -> fusion -> head, each with ``forward``, ``loss``, ``predict``.

:class:`MultimodalClassifier` and :class:`UnimodalClassifier` (image + text classification),
:class:`MultimodalTagger` (named entity recognition, text-only or with the image); the
builders :func:`build_classifier`, :func:`build_unimodal_classifier` and :func:`build_tagger`
wire the standard pieces from short names.
"""

from mmtutor.models.classifier import (
    MultimodalClassifier,
    UnimodalClassifier,
    build_classifier,
    build_unimodal_classifier,
)
from mmtutor.models.tagger import MultimodalTagger, build_tagger

__all__ = [
    "MultimodalClassifier",
    "UnimodalClassifier",
    "MultimodalTagger",
    "build_classifier",
    "build_unimodal_classifier",
    "build_tagger",
]
