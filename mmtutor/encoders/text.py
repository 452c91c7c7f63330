"""Text encoders trained from scratch: a bag of embeddings, a BiLSTM, a small Transformer.

All three take ``(tokens (B, T) long, token_mask (B, T) bool)`` and return an
:class:`~mmtutor.encoders.output.EncoderOutput` whose ``pooled`` vector is the mean of the real
tokens (zero for a sample with no real token) and whose ``sequence`` is zero at padding.

References:
    Hochreiter, S. & Schmidhuber, J. (1997). Long Short-Term Memory. Neural Computation.
    Lample, G., Ballesteros, M., Subramanian, S., Kawakami, K. & Dyer, C. (2016). Neural
    Architectures for Named Entity Recognition. NAACL.
    Ma, X. & Hovy, E. (2016). End-to-end Sequence Labeling via Bi-directional
    LSTM-CNNs-CRF. ACL.
    Vaswani, A. et al. (2017). Attention Is All You Need. NeurIPS.
    Devlin, J., Chang, M.-W., Lee, K. & Toutanova, K. (2019). BERT: Pre-training of Deep
    Bidirectional Transformers for Language Understanding. NAACL.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mmtutor.encoders.chars import CharCNN
from mmtutor.encoders.output import EncoderOutput, check_text_inputs, padded_lengths
from mmtutor.utils import check_tensor

__all__ = ["BagOfEmbeddings", "BiLSTMEncoder", "TransformerTextEncoder"]


class BagOfEmbeddings(nn.Module):
    """Word embeddings and their average: the simplest text encoder, order ignored.

    Args:
        vocab_size: number of token ids.
        dim: embedding size, the ``output_dim``.
        padding_idx: the token id used for padding (its embedding stays zero).

    Inputs:
        tokens: ``(B, T)`` long token ids.
        token_mask: ``(B, T)`` bool, True for real tokens.

    Returns:
        ``EncoderOutput``: ``pooled (B, dim)`` the mean embedding, ``sequence (B, T, dim)`` the
        embeddings themselves, ``mask (B, T)``.

    Examples:
        >>> enc = BagOfEmbeddings(vocab_size=100, dim=8)
        >>> out = enc(torch.tensor([[5, 6, 0]]), torch.tensor([[True, True, False]]))
        >>> out.pooled.shape, out.sequence.shape
        (torch.Size([1, 8]), torch.Size([1, 3, 8]))
    """

    def __init__(self, vocab_size: int, dim: int = 64, padding_idx: int = 0) -> None:
        super().__init__()
        self.output_dim = dim
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=padding_idx)

    def forward(self, tokens: Tensor, token_mask: Tensor) -> EncoderOutput:
        """Embed and average the real tokens (shapes in the class docstring)."""
        tokens, mask = check_text_inputs(tokens, token_mask)
        x = self.embedding(tokens)  # (B, T, dim)
        return EncoderOutput.from_sequence(x, mask)


class BiLSTMEncoder(nn.Module):
    """A bidirectional LSTM over word embeddings, optionally with character CNN features.

    With ``char_vocab_size`` set, each word embedding is concatenated with a
    :class:`~mmtutor.encoders.chars.CharCNN` vector built from the word's characters
    (Ma & Hovy, ACL 2016) — the encoder of the BiLSTM-CRF tagger of Lample et al. (NAACL 2016)
    and Ma & Hovy. Padded positions are skipped with ``pack_padded_sequence``, so the backward
    LSTM starts at each sentence's last real word, not at the padding.

    Args:
        vocab_size: number of word ids (``0`` is padding).
        embed_dim: word-embedding size.
        hidden_dim: LSTM state size per direction; ``output_dim = 2 * hidden_dim``.
        num_layers: stacked LSTM layers.
        dropout: dropout on the LSTM's input and output (and between stacked layers), as in
            Ma & Hovy (2016).
        char_vocab_size: number of character ids; ``None`` means no character CNN.
        char_dim: character-embedding size of the character CNN.
        char_channels: number of character-CNN filters.

    Inputs:
        tokens: ``(B, T)`` long word ids.
        token_mask: ``(B, T)`` bool, True for real tokens, left-aligned.
        chars: ``(B, T, L)`` long character ids; required exactly when ``char_vocab_size`` is set.

    Returns:
        ``EncoderOutput``: ``pooled (B, 2 * hidden_dim)`` the mean state over real tokens,
        ``sequence (B, T, 2 * hidden_dim)`` the concatenated forward and backward states,
        ``mask (B, T)``.

    Examples:
        >>> enc = BiLSTMEncoder(vocab_size=100, embed_dim=8, hidden_dim=4)
        >>> out = enc(torch.tensor([[5, 6, 0]]), torch.tensor([[True, True, False]]))
        >>> out.sequence.shape
        torch.Size([1, 3, 8])
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 64,
        hidden_dim: int = 64,
        *,
        num_layers: int = 1,
        dropout: float = 0.0,
        char_vocab_size: int | None = None,
        char_dim: int = 16,
        char_channels: int = 32,
    ) -> None:
        super().__init__()
        self.output_dim = 2 * hidden_dim
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.char_cnn = (
            None if char_vocab_size is None else CharCNN(char_vocab_size, char_dim, char_channels)
        )
        input_dim = embed_dim + (0 if self.char_cnn is None else self.char_cnn.output_dim)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            input_dim,
            hidden_dim,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,  # PyTorch warns on dropout with 1 layer
        )

    def forward(
        self, tokens: Tensor, token_mask: Tensor, chars: Tensor | None = None
    ) -> EncoderOutput:
        """Run the BiLSTM over the real tokens (shapes in the class docstring)."""
        tokens, mask = check_text_inputs(tokens, token_mask)
        lengths = padded_lengths(mask)  # (B,)
        B, T = tokens.shape
        x = self.embedding(tokens)  # (B, T, embed_dim)
        if self.char_cnn is not None:
            if chars is None:
                raise ValueError(
                    "chars of shape (B, T, L) is required: this encoder was built with "
                    "char_vocab_size, so it has a character CNN"
                )
            check_tensor("chars", chars, (B, T, "L"), dtype="int")
            x = torch.cat([x, self.char_cnn(chars)], dim=-1)  # (B, T, embed_dim + char_channels)
        elif chars is not None:
            raise ValueError(
                "chars was given, but this encoder has no character CNN; build it with "
                "char_vocab_size=... (or build_text_encoder('cnn-bilstm', ...))"
            )
        x = self.dropout(x)  # (B, T, input_dim)
        # pack_padded_sequence wants the lengths on the CPU and > 0: an empty row is run on its
        # first (padding) position and masked out afterwards.
        packed = pack_padded_sequence(
            x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        h, _ = self.lstm(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=T)  # (B, T, 2 * hidden_dim)
        h = self.dropout(h)  # (B, T, 2 * hidden_dim)
        return EncoderOutput.from_sequence(h, mask)


class TransformerTextEncoder(nn.Module):
    """A small Transformer encoder (Vaswani et al., NeurIPS 2017) with learned positions.

    Token and learned position embeddings (as in BERT, Devlin et al., NAACL 2019) are summed
    and passed through pre-norm self-attention layers; a key-padding mask stops every token
    from attending to padding.

    Args:
        vocab_size: number of token ids (``padding_idx`` is padding).
        dim: model width, the ``output_dim``.
        num_heads: attention heads; must divide ``dim``.
        num_layers: Transformer layers.
        max_len: the longest sequence the position table covers.
        dropout: dropout inside the layers.
        padding_idx: the token id used for padding.

    Inputs:
        tokens: ``(B, T)`` long token ids, ``T <= max_len``.
        token_mask: ``(B, T)`` bool, True for real tokens.

    Returns:
        ``EncoderOutput``: ``pooled (B, dim)`` the mean over real tokens,
        ``sequence (B, T, dim)``, ``mask (B, T)``.

    Examples:
        >>> enc = TransformerTextEncoder(vocab_size=100, dim=8, num_heads=2, num_layers=1)
        >>> enc(torch.tensor([[5, 6, 0]]), torch.tensor([[True, True, False]])).pooled.shape
        torch.Size([1, 8])
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int = 64,
        num_heads: int = 4,
        num_layers: int = 2,
        max_len: int = 128,
        *,
        dropout: float = 0.1,
        padding_idx: int = 0,
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"num_heads must divide dim, got dim={dim} and num_heads={num_heads}")
        self.output_dim = dim
        self.max_len = max_len
        self.token_embedding = nn.Embedding(vocab_size, dim, padding_idx=padding_idx)
        self.position_embedding = nn.Embedding(max_len, dim)
        layer = nn.TransformerEncoderLayer(
            dim,
            num_heads,
            dim_feedforward=4 * dim,
            dropout=dropout,
            batch_first=True,
            norm_first=True,  # pre-norm trains stably without a learning-rate warm-up
        )
        self.layers = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False
        )

    def forward(self, tokens: Tensor, token_mask: Tensor) -> EncoderOutput:
        """Encode the tokens with self-attention (shapes in the class docstring)."""
        tokens, mask = check_text_inputs(tokens, token_mask)
        T = tokens.shape[1]
        if T > self.max_len:
            raise ValueError(
                f"tokens must have shape (B, T) with T <= max_len={self.max_len}, got T = {T}; "
                "truncate the text or build the encoder with a larger max_len"
            )
        positions = torch.arange(T, device=tokens.device)  # (T,)
        x = self.token_embedding(tokens) + self.position_embedding(positions)  # (B, T, dim)
        # A row with no real token would mask every key, and a softmax over nothing is NaN:
        # let such a row attend to its first position (its output is zeroed below anyway).
        attend = mask.clone()  # (B, T)
        attend[:, 0] |= ~mask.any(dim=1)
        h = self.layers(x, src_key_padding_mask=~attend)  # (B, T, dim)
        return EncoderOutput.from_sequence(h, mask)
