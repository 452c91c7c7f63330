"""Fusion transformer: one Transformer encoder over the tokens of every modality.

References:
    - Vaswani et al., "Attention Is All You Need", NeurIPS 2017.
    - Devlin, Chang, Lee and Toutanova, "BERT", NAACL 2019 (the [CLS] token for pooling).
    - Nagrani, Yang, Arnab, Jansen, Schmid and Sun, "Attention Bottlenecks for Multimodal
      Fusion", NeurIPS 2021 (joint-token fusion as the baseline; modality embeddings).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmtutor.fusion.base import Fusion

__all__ = ["TransformerFusion"]


class TransformerFusion(Fusion):
    """Fusion transformer: self-attention over ``[CLS; tokens of m_1; tokens of m_2; ...]``.

    Each modality's tokens are projected to ``d_model`` and get a learned modality embedding
    ``e_m`` (so attention can tell an image region from a word) and a learned position
    embedding ``p_{m,t}`` (so it can tell the first word from the last, or the top-left
    image cell from the bottom-right: self-attention alone is blind to order, Vaswani et
    al. 2017, Sec. 3.5); a learned ``[CLS]`` token is put in front; a small
    ``nn.TransformerEncoder`` (pre-norm) runs over the whole sequence, and the ``[CLS]``
    output is the fused vector: token ``t`` of modality ``m`` enters as
    ``P_m x_{m,t} + e_m + p_{m,t}``.

    Each modality has its own positions, counted from 0, as in BERT's learned positions
    (Devlin et al., 2019); image cells are numbered in raster order. The table starts at
    zero, so an untrained fusion treats each modality as a bag of tokens and training adds
    the order where it helps.

    Args:
        input_dims: ``{m: d_m}``.
        d_model: the width of the encoder.
        num_heads: attention heads; must divide ``d_model``.
        num_layers: encoder layers (1 or 2 are enough for the book's data).
        dim_feedforward: hidden size of the feed-forward blocks; default ``4 * d_model``.
        dropout: dropout inside the encoder.
        output_dim: ``None`` (default) gives ``d_model``; an int adds a learned ``nn.Linear``.
        max_len: the longest sequence of any modality the position table covers.

    Inputs:
        features: ``{m: (B, T_m, d_m)}``, ``T_m <= max_len``.
        present: optional ``{m: (B,)}`` bool. A missing modality's tokens are all masked (the
            ``[CLS]`` token is never masked, so a sample with nothing present still gets an
            output: the learned default).
        token_mask: optional ``{m: (B, T_m)}`` bool, True for real tokens; padded tokens are
            masked.

    Returns:
        ``(B, output_dim)``, the ``[CLS]`` output.
    """

    input_kind = "sequence"
    level = "model"

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        d_model: int = 64,
        num_heads: int = 4,
        num_layers: int = 1,
        dim_feedforward: int | None = None,
        dropout: float = 0.0,
        output_dim: int | None = None,
        max_len: int = 128,
    ) -> None:
        super().__init__(input_dims)
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
            raise ValueError(f"max_len must be a positive int, got {max_len!r}")
        if not isinstance(num_heads, int) or num_heads < 1 or d_model % num_heads:
            raise ValueError(
                f"num_heads must be a positive int dividing d_model={d_model}, got {num_heads!r}"
            )
        self.proj = self._per_modality_linear(d_model)
        self.modality_embedding = nn.Parameter(0.02 * torch.randn(len(self.modalities), d_model))
        self.cls_token = nn.Parameter(0.02 * torch.randn(d_model))
        # p_{m,t}: zeros, so the start is the order-blind fusion (and no random draw is taken)
        self.position_embedding = nn.Parameter(torch.zeros(len(self.modalities), max_len, d_model))
        self.max_len = max_len
        layer = nn.TransformerEncoderLayer(
            d_model,
            num_heads,
            dim_feedforward or 4 * d_model,
            dropout,
            batch_first=True,
            norm_first=True,  # pre-norm trains without warm-up at this size
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.out = self._output_layer(d_model, output_dim)

    def fuse(self, x: dict[str, Tensor], present: Tensor, mask: dict[str, Tensor] | None) -> Tensor:
        B = x[self.modalities[0]].shape[0]
        cls = self.cls_token.expand(B, 1, -1)  # (B, 1, d_model)
        tokens, keep = [cls], [torch.ones_like(mask[self.modalities[0]][:, :1])]
        for j, m in enumerate(self.modalities):
            T = x[m].shape[1]
            if T > self.max_len:
                raise ValueError(f"features[{m!r}] has {T} tokens, more than max_len="
                                 f"{self.max_len}; build the fusion with a larger max_len")
            p = self.position_embedding[j, :T]  # (T_m, d_model)
            tokens.append(self.proj[j](x[m]) + self.modality_embedding[j] + p)  # (B, T_m, d_model)
            keep.append(mask[m])  # (B, T_m)
        s = torch.cat(tokens, dim=1)  # (B, 1 + sum_m T_m, d_model)
        key_padding = ~torch.cat(keep, dim=1)  # (B, 1 + sum_m T_m), True = ignore
        h = self.encoder(s, src_key_padding_mask=key_padding)  # (B, 1 + sum_m T_m, d_model)
        return self.out(h[:, 0])  # (B, output_dim)
