"""Encoders: one modality in, an :class:`EncoderOutput` (pooled, sequence, mask) out.

Text: :class:`BagOfEmbeddings`, :class:`BiLSTMEncoder` (+ :class:`CharCNN`),
:class:`TransformerTextEncoder`, :class:`PretrainedTextEncoder` (MiniLM, local folder).
Image: :class:`SmallCNN`, :class:`ResNet18Encoder`. By name: :func:`build_text_encoder`,
:func:`build_image_encoder`.
Pretrained word vectors (GloVe, ``mmtutor[vectors]``): :func:`load_word_table`,
:func:`load_word_vectors`, :func:`words_with_vectors`, :func:`init_word_embedding`.
How much of a pretrained encoder trains (frozen, top layers, all): :func:`check_finetuning`,
:func:`finetuning_kwargs`.
"""

from mmtutor.encoders.chars import CharCNN
from mmtutor.encoders.finetuning import (
    DEFAULT_ENCODER_LR,
    FINETUNING,
    check_finetuning,
    finetuning_kwargs,
)
from mmtutor.encoders.image import ResNet18Encoder, SmallCNN, check_image
from mmtutor.encoders.output import EncoderOutput, masked_mean
from mmtutor.encoders.pretrained import (
    WORD_POOLINGS,
    PretrainedTextEncoder,
    minilm_path,
    pool_words,
)
from mmtutor.encoders.registry import (
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    build_image_encoder,
    build_text_encoder,
)
from mmtutor.encoders.text import BagOfEmbeddings, BiLSTMEncoder, TransformerTextEncoder
from mmtutor.encoders.word_vectors import (
    WORD_VECTORS,
    WordTable,
    check_word_vectors,
    init_word_embedding,
    load_word_table,
    load_word_vectors,
    word_embedding,
    word_vector_kwargs,
    words_with_vectors,
)

__all__ = [
    "EncoderOutput",
    "masked_mean",
    "BagOfEmbeddings",
    "BiLSTMEncoder",
    "CharCNN",
    "TransformerTextEncoder",
    "PretrainedTextEncoder",
    "minilm_path",
    "pool_words",
    "WORD_POOLINGS",
    "FINETUNING",
    "DEFAULT_ENCODER_LR",
    "check_finetuning",
    "finetuning_kwargs",
    "SmallCNN",
    "ResNet18Encoder",
    "check_image",
    "TEXT_ENCODERS",
    "IMAGE_ENCODERS",
    "build_text_encoder",
    "build_image_encoder",
    "WORD_VECTORS",
    "WordTable",
    "load_word_table",
    "load_word_vectors",
    "words_with_vectors",
    "init_word_embedding",
    "word_embedding",
    "word_vector_kwargs",
    "check_word_vectors",
]
