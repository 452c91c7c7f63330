"""Encoders by short name, for the command line and the experiment configs.

Plain dicts (``TEXT_ENCODERS``, ``IMAGE_ENCODERS``) map names to classes; the two ``build_*``
functions add the one rule a dict cannot say: ``cnn-bilstm`` is the BiLSTM *with* its
character CNN, so it needs ``char_vocab_size``.
"""

from __future__ import annotations

from torch import nn

from mmtutor.encoders.image import ResNet18Encoder, SmallCNN
from mmtutor.encoders.pretrained import PretrainedTextEncoder
from mmtutor.encoders.text import BagOfEmbeddings, BiLSTMEncoder, TransformerTextEncoder

__all__ = ["TEXT_ENCODERS", "IMAGE_ENCODERS", "build_text_encoder", "build_image_encoder"]

TEXT_ENCODERS: dict[str, type[nn.Module]] = {
    "bag": BagOfEmbeddings,
    "bilstm": BiLSTMEncoder,
    "cnn-bilstm": BiLSTMEncoder,  # with char_vocab_size: the CNN-BiLSTM of Ma & Hovy (2016)
    "transformer": TransformerTextEncoder,
    "minilm": PretrainedTextEncoder,
}

IMAGE_ENCODERS: dict[str, type[nn.Module]] = {
    "cnn": SmallCNN,
    "resnet18": ResNet18Encoder,
}


def _build(kind: str, registry: dict[str, type[nn.Module]], name: str, kw: dict) -> nn.Module:
    if name not in registry:
        raise ValueError(f"unknown {kind} encoder {name!r}; choose one of {sorted(registry)}")
    try:
        return registry[name](**kw)
    except TypeError as err:  # a keyword the class does not take: say which class
        raise ValueError(f"{kind} encoder {name!r} ({registry[name].__name__}): {err}") from err


def build_text_encoder(name: str, **kw: object) -> nn.Module:
    """Build a text encoder by name.

    Args:
        name: ``"bag"``, ``"bilstm"``, ``"cnn-bilstm"``, ``"transformer"`` or ``"minilm"``.
        **kw: the class's arguments (``vocab_size`` for all but ``"minilm"``;
            ``char_vocab_size`` for ``"cnn-bilstm"``).

    Raises:
        ValueError: for an unknown name, a missing ``char_vocab_size`` or a wrong keyword.

    Examples:
        >>> build_text_encoder("bilstm", vocab_size=100, hidden_dim=8).output_dim
        16
    """
    if name == "cnn-bilstm" and kw.get("char_vocab_size") is None:
        raise ValueError("text encoder 'cnn-bilstm' needs char_vocab_size (e.g. len(char_vocab))")
    return _build("text", TEXT_ENCODERS, name, kw)


def build_image_encoder(name: str, **kw: object) -> nn.Module:
    """Build an image encoder by name: ``"cnn"`` or ``"resnet18"``.

    Examples:
        >>> build_image_encoder("cnn", dim=32).output_dim
        32
    """
    return _build("image", IMAGE_ENCODERS, name, kw)
