"""A character-level CNN that builds a vector for every word from its spelling.

Words the vocabulary has never seen (``<unk>``) still have characters: capitalisation,
prefixes and suffixes tell a tagger a lot ("Obama", "-ville"). Following Ma & Hovy (2016),
each character is embedded, a 1-D convolution slides over the characters of a word, and a
max-pool over the characters keeps the strongest response of each filter.

References:
    Ma, X. & Hovy, E. (2016). End-to-end Sequence Labeling via Bi-directional
    LSTM-CNNs-CRF. ACL.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmtutor.utils import check_tensor

__all__ = ["CharCNN"]


class CharCNN(nn.Module):
    """Character CNN word features (Ma & Hovy, ACL 2016).

    Args:
        char_vocab_size: number of character ids (id ``padding_idx`` is padding).
        char_dim: size of a character embedding.
        channels: number of convolution filters, the size of the output.
        kernel_size: width of the filters, in characters (odd, so the output is centred).
        padding_idx: the character id used for padding.

    Inputs:
        chars: ``(B, T, L)`` long, character ids of each of the ``T`` tokens.

    Returns:
        ``(B, T, channels)`` one vector per token; zero for a token with no characters.

    Examples:
        >>> cnn = CharCNN(char_vocab_size=50)
        >>> cnn(torch.randint(1, 50, (2, 5, 7))).shape
        torch.Size([2, 5, 32])
    """

    def __init__(
        self,
        char_vocab_size: int,
        char_dim: int = 16,
        channels: int = 32,
        *,
        kernel_size: int = 3,
        padding_idx: int = 0,
    ) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
        self.padding_idx = padding_idx
        self.output_dim = channels
        self.embedding = nn.Embedding(char_vocab_size, char_dim, padding_idx=padding_idx)
        self.conv = nn.Conv1d(char_dim, channels, kernel_size, padding=kernel_size // 2)

    def forward(self, chars: Tensor) -> Tensor:
        """Encode every token from its characters (shapes in the class docstring)."""
        check_tensor("chars", chars, ("B", "T", "L"), dtype="int")
        B, T, L = chars.shape
        if L == 0:
            raise ValueError("chars must have shape (B, T, L) with L >= 1, got L = 0")
        flat = chars.reshape(B * T, L)  # (B*T, L)
        x = self.embedding(flat).transpose(1, 2)  # (B*T, char_dim, L): Conv1d wants channels first
        x = self.conv(x)  # (B*T, channels, L)
        real = (flat != self.padding_idx).unsqueeze(1)  # (B*T, 1, L)
        # Max over the real characters only, so padding never wins the max-pool.
        x = x.masked_fill(~real, float("-inf")).amax(dim=2)  # (B*T, channels)
        x = torch.where(real.any(dim=2), x, torch.zeros_like(x))  # (B*T, channels): empty -> 0
        return x.reshape(B, T, self.output_dim)  # (B, T, channels)
