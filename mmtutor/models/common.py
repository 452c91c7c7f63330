"""What the classifiers and the tagger share: reading a batch, building encoders by name."""

from __future__ import annotations

import inspect
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmtutor.encoders import EncoderOutput, build_image_encoder, build_text_encoder
from mmtutor.fusion import FUSIONS

__all__ = ["encode", "presence", "masked_pool", "make_text_encoder", "make_image_encoder",
           "fusion_arguments"]


def encode(encoder: nn.Module, modality: str, batch: Mapping[str, Tensor]) -> EncoderOutput:
    """Run ``encoder`` on its modality's part of ``batch``.

    ``"text"`` reads ``tokens`` and ``token_mask`` (and ``chars`` when the encoder has a
    character CNN); a pretrained encoder that pools words (``word_pooling`` set) reads
    ``subword_ids``, ``subword_mask`` and ``word_ids`` ``(B, S)`` instead and returns one
    vector per word. Any other modality ``m`` reads ``batch[m]`` (e.g. ``image``).
    """
    if modality == "text":
        if getattr(encoder, "word_pooling", None) is not None:
            keys = ("subword_ids", "subword_mask", "word_ids")
            if any(k not in batch for k in keys):
                raise ValueError(f"batch has no sub-word keys {list(keys)} for the word-pooling "
                                 f"{type(encoder).__name__}; it has {sorted(batch)} (batch it "
                                 "with mmtutor.tasks' SubwordTaggingDataset)")
            return encoder(*(batch[k] for k in keys))  # one vector per word (B, W, d)
        if getattr(encoder, "char_cnn", None) is not None:
            return encoder(batch["tokens"], batch["token_mask"], batch["chars"])
        return encoder(batch["tokens"], batch["token_mask"])
    if modality not in batch:
        raise ValueError(f"batch has no key {modality!r} for the {modality} encoder; "
                         f"it has {sorted(batch)}")
    return encoder(batch[modality])


def presence(batch: Mapping[str, Tensor], modalities: tuple[str, ...]) -> dict[str, Tensor]:
    """The ``<m>_present`` flags ``(B,)`` that ``batch`` has, keyed by modality."""
    return {m: batch[f"{m}_present"] for m in modalities if f"{m}_present" in batch}


def masked_pool(x: Tensor, mask: Tensor, how: str) -> Tensor:
    """Pool ``x`` ``(B, T, d)`` over its real positions ``mask`` ``(B, T)``: ``(B, d)``.

    A row without real positions pools to zeros (never NaN or -inf).
    """
    keep = mask.unsqueeze(-1)  # (B, T, 1)
    if how == "max":
        pooled = x.masked_fill(~keep, float("-inf")).amax(dim=1)  # (B, d)
        return torch.where(mask.any(dim=1, keepdim=True), pooled, 0.0)  # (B, d)
    total = x.masked_fill(~keep, 0.0).sum(dim=1)  # (B, d)
    return total / keep.sum(dim=1).clamp(min=1)  # (B, d)


def make_text_encoder(
    name: str,
    *,
    vocab_size: int | None,
    dim: int,
    char_vocab_size: int | None = None,
    **kwargs: object,
) -> nn.Module:
    """Build a text encoder by name with an output size of about ``dim``.

    ``"bag"`` and ``"transformer"`` get ``dim``; ``"bilstm"`` and ``"cnn-bilstm"`` get
    ``embed_dim=dim`` and ``hidden_dim=dim // 2`` (two directions); ``"minilm"`` keeps its
    own size (384). ``kwargs`` override these choices.
    """
    sizes: dict[str, object] = {
        "bag": {"dim": dim},
        "transformer": {"dim": dim},
        "bilstm": {"embed_dim": dim, "hidden_dim": max(dim // 2, 1)},
        "cnn-bilstm": {"embed_dim": dim, "hidden_dim": max(dim // 2, 1),
                       "char_vocab_size": char_vocab_size},
    }.get(name, {})
    if name != "minilm":
        if vocab_size is None:
            raise ValueError(f"text encoder {name!r} needs vocab_size (e.g. len(vocab)), got None")
        sizes["vocab_size"] = vocab_size
    return build_text_encoder(name, **{**sizes, **kwargs})


def make_image_encoder(name: str, *, dim: int, **kwargs: object) -> nn.Module:
    """Build an image encoder by name: ``"cnn"`` gets ``dim``; ``"resnet18"`` keeps 512."""
    sizes = {"dim": dim} if name == "cnn" else {}
    return build_image_encoder(name, **{**sizes, **kwargs})


def fusion_arguments(name: str, *parts: Mapping[str, object] | None) -> dict[str, object]:
    """Merge fusion arguments and check each against the fusion class's own signature.

    The builders pass these to the fusion class only, never to themselves: a key such as
    ``image_kwargs`` (a builder argument) or ``weights`` is refused here, so a config or a
    checkpoint cannot rebuild the encoders or make them download weights.

    Args:
        name: a key of :data:`~mmtutor.fusion.FUSIONS`.
        *parts: dicts of keyword arguments (``None`` = none); a key given twice is an error.

    Returns:
        One dict of keyword arguments for ``FUSIONS[name]``.

    Raises:
        ValueError: for an unknown fusion, or a key the class does not take (naming it
            and the allowed ones).
    """
    if name not in FUSIONS:
        raise ValueError(f"unknown fusion name={name!r}; choose one of {sorted(FUSIONS)}")
    params = inspect.signature(FUSIONS[name].__init__).parameters.values()
    allowed = sorted(p.name for p in params if p.name not in ("self", "input_dims")
                     and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))
    merged: dict[str, object] = {}
    for part in parts:
        for key, value in (part or {}).items():
            if key not in allowed:
                raise ValueError(f"fusion {name!r} takes no argument {key!r}; its arguments "
                                 f"are {allowed}")
            if key in merged:
                raise ValueError(f"fusion argument {key!r} is given twice")
            merged[key] = value
    return merged
