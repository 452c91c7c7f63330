"""Classification heads: features in, unnormalised class scores (logits) out.

A linear layer, or a one-hidden-layer MLP, applied to the last dimension, so the same head
scores one vector per sample ``(B, d)`` or one vector per token ``(B, T, d)``.
"""

from __future__ import annotations

from torch import Tensor, nn

from mmtutor.utils import check_tensor

__all__ = ["ClassificationHead", "TokenClassificationHead"]


class ClassificationHead(nn.Module):
    """Dropout, then a linear layer (or an MLP with one ReLU hidden layer), to class logits.

    Args:
        in_dim: size of the input features.
        num_classes: number of classes ``C``.
        hidden: size of an optional hidden layer; ``None`` for a linear head.
        dropout: dropout on the input features (and on the hidden layer).

    Inputs:
        features: ``(..., in_dim)`` float, e.g. ``(B, in_dim)`` or ``(B, T, in_dim)``.

    Returns:
        ``(..., C)`` logits (feed them to ``F.cross_entropy``, or to a CRF as emissions).

    Examples:
        >>> import torch
        >>> head = ClassificationHead(8, 3, hidden=16)
        >>> head(torch.randn(2, 8)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self, in_dim: int, num_classes: int, *, hidden: int | None = None, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if in_dim < 1 or num_classes < 1:
            raise ValueError(
                f"in_dim and num_classes must be positive, got in_dim={in_dim}, "
                f"num_classes={num_classes}"
            )
        if hidden is not None and hidden < 1:
            raise ValueError(f"hidden must be a positive size or None, got {hidden}")
        self.in_dim = in_dim
        self.num_classes = num_classes
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden is not None:
            layers += [nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(in_dim if hidden is None else hidden, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        """Score every feature vector (shapes in the class docstring)."""
        check_tensor("features", features, ("...", self.in_dim), dtype="float")
        return self.net(features)  # (..., C)


class TokenClassificationHead(ClassificationHead):
    """The same head applied to every token: ``(B, T, in_dim) -> (B, T, C)`` emissions.

    A separate name so a tagger reads as what it is; the computation is
    :class:`ClassificationHead`'s, which already works on any leading dimensions.

    Examples:
        >>> import torch
        >>> TokenClassificationHead(8, 5)(torch.randn(2, 7, 8)).shape
        torch.Size([2, 7, 5])
    """
