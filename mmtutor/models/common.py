"""What the classifiers and the tagger share: reading a batch, building encoders by name."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmtutor.encoders import EncoderOutput, build_image_encoder, build_text_encoder

__all__ = ["encode", "presence", "masked_pool", "make_text_encoder", "make_image_encoder"]


def encode(encoder: nn.Module, modality: str, batch: Mapping[str, Tensor]) -> EncoderOutput:
    """Run ``encoder`` on its modality's part of ``batch``.

    ``"text"`` reads ``tokens`` and ``token_mask`` (and ``chars`` when the encoder has a
    character CNN); any other modality ``m`` reads ``batch[m]`` (e.g. ``image``).
    """
    if modality == "text":
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
