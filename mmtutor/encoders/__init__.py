"""Encoders: one modality in, an :class:`EncoderOutput` (pooled, sequence, mask) out.

Text: :class:`BagOfEmbeddings`, :class:`BiLSTMEncoder` (+ :class:`CharCNN`),
:class:`TransformerTextEncoder`, :class:`PretrainedTextEncoder` (MiniLM, local folder).
Image: :class:`SmallCNN`, :class:`ResNet18Encoder`. By name: :func:`build_text_encoder`,
:func:`build_image_encoder`.
"""

from mmtutor.encoders.chars import CharCNN
from mmtutor.encoders.image import ResNet18Encoder, SmallCNN, check_image
from mmtutor.encoders.output import EncoderOutput, masked_mean
from mmtutor.encoders.pretrained import PretrainedTextEncoder, minilm_path
from mmtutor.encoders.registry import (
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    build_image_encoder,
    build_text_encoder,
)
from mmtutor.encoders.text import BagOfEmbeddings, BiLSTMEncoder, TransformerTextEncoder

__all__ = [
    "EncoderOutput",
    "masked_mean",
    "BagOfEmbeddings",
    "BiLSTMEncoder",
    "CharCNN",
    "TransformerTextEncoder",
    "PretrainedTextEncoder",
    "minilm_path",
    "SmallCNN",
    "ResNet18Encoder",
    "check_image",
    "TEXT_ENCODERS",
    "IMAGE_ENCODERS",
    "build_text_encoder",
    "build_image_encoder",
]
