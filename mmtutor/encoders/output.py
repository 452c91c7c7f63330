"""What every encoder returns, and the two small helpers all text encoders share.

An encoder turns one modality into vectors that a fusion module can combine. Every encoder in
``mmtutor`` returns the same :class:`EncoderOutput`, so any fusion can sit on any encoder:

* ``pooled`` ``(B, d)``: one vector per sample (feature-level and decision-level fusion);
* ``sequence`` ``(B, T, d)``: one vector per token or image cell (attention-based fusion and
  per-token tagging);
* ``mask`` ``(B, T)`` bool: True where ``sequence`` holds a real token or cell.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from mmtutor.utils import check_tensor

__all__ = ["EncoderOutput", "masked_mean", "check_text_inputs", "padded_lengths"]


class EncoderOutput(NamedTuple):
    """The output of every encoder.

    Attributes:
        pooled: ``(B, d)`` one vector per sample.
        sequence: ``(B, T, d)`` one vector per token (text) or feature-map cell (image);
            zero at padded positions.
        mask: ``(B, T)`` bool, True for real tokens (all True for images).
    """

    pooled: Tensor
    sequence: Tensor
    mask: Tensor

    @classmethod
    def from_sequence(cls, sequence: Tensor, mask: Tensor) -> EncoderOutput:
        """Zero the padded positions of ``sequence`` and mean-pool the real ones.

        Args:
            sequence: ``(B, T, d)`` one vector per position.
            mask: ``(B, T)`` bool, True for real positions.

        Returns:
            ``EncoderOutput(pooled=masked_mean(sequence, mask), sequence, mask)`` with
            ``sequence`` set to zero where ``mask`` is False, so whatever a padded position
            held (e.g. a stray token id) cannot leak into a fusion module.
        """
        # masked_fill, not a product: 0 * NaN would still be NaN.
        sequence = sequence.masked_fill(~mask.unsqueeze(-1), 0.0)  # (B, T, d)
        return cls(masked_mean(sequence, mask), sequence, mask)


def masked_mean(sequence: Tensor, mask: Tensor) -> Tensor:
    """Average the real positions of a padded sequence.

    A sample with no real position gets the zero vector (never NaN): an empty text carries
    no evidence, and zero is the neutral input for the layers that follow.

    Args:
        sequence: ``(B, T, d)`` vectors.
        mask: ``(B, T)`` bool, True for real positions.

    Returns:
        ``(B, d)`` the mean over the real positions of each sample.

    Examples:
        >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
        >>> masked_mean(x, torch.tensor([[True, True, False]]))
        tensor([[2.]])
    """
    weights = mask.to(sequence.dtype).unsqueeze(-1)  # (B, T, 1)
    total = (sequence * weights).sum(dim=1)  # (B, d)
    count = weights.sum(dim=1).clamp(min=1.0)  # (B, 1); 1 for empty rows, whose total is 0
    return total / count  # (B, d)


def check_text_inputs(tokens: object, token_mask: object) -> tuple[Tensor, Tensor]:
    """Validate the ``(tokens, token_mask)`` pair every text encoder takes.

    Args:
        tokens: ``(B, T)`` integer token ids.
        token_mask: ``(B, T)`` bool (or 0/1 integers), True for real tokens.

    Returns:
        ``tokens`` and ``token_mask`` as a bool tensor.

    Raises:
        ValueError: naming the argument, the shape or dtype it got and the one wanted.
    """
    if isinstance(tokens, Tensor) and tokens.dim() == 1:
        raise ValueError(
            f"tokens must have shape (B, T), got {tuple(tokens.shape)}; add a batch dimension "
            "(tokens.unsqueeze(0))"
        )
    check_tensor("tokens", tokens, ("B", "T"), dtype="int")
    check_tensor("token_mask", token_mask, ("B", "T"))
    if token_mask.is_floating_point():
        raise ValueError(f"token_mask must be a bool tensor, got dtype {token_mask.dtype}")
    if token_mask.shape != tokens.shape:
        raise ValueError(
            f"token_mask must have the shape of tokens {tuple(tokens.shape)}, "
            f"got {tuple(token_mask.shape)}"
        )
    if tokens.shape[1] == 0:
        raise ValueError("tokens must have shape (B, T) with T >= 1, got T = 0; pad to length 1")
    return tokens, token_mask.bool()


def padded_lengths(mask: Tensor, name: str = "token_mask") -> Tensor:
    """Return the lengths of left-aligned masks, checking that they are left-aligned.

    Packed RNNs and CRFs read ``mask`` as "the first ``n`` positions are real".

    Args:
        mask: ``(B, T)`` bool.
        name: the argument's name for the error message.

    Returns:
        ``(B,)`` long, the number of real positions of each row.

    Raises:
        ValueError: if a real position follows a padded one (e.g. ``[True, False, True]``).
    """
    lengths = mask.sum(dim=1)  # (B,)
    positions = torch.arange(mask.shape[1], device=mask.device)  # (T,)
    if not torch.equal(mask, positions.unsqueeze(0) < lengths.unsqueeze(1)):
        raise ValueError(
            f"{name} must be left-aligned (real positions first, then padding), got rows like "
            f"{mask[(mask != (positions < lengths.unsqueeze(1))).any(dim=1)][0].int().tolist()}"
        )
    return lengths
