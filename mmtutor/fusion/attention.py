"""Cross-modal attention: the tokens of one modality attend to the tokens of the others.

References:
    - Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser and Polosukhin, "Attention Is
      All You Need", NeurIPS 2017 (scaled dot-product and multi-head attention).
    - Tsai, Bai, Liang, Kolter, Morency and Salakhutdinov, "Multimodal Transformer for
      Unaligned Multimodal Language Sequences", ACL 2019 (MulT, cross-modal attention).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmtutor.fusion.base import Fusion

__all__ = ["CrossAttentionFusion"]


class CrossAttentionFusion(Fusion):
    """Multi-head cross-modal attention (Vaswani et al. 2017; MulT, Tsai et al., ACL 2019).

    Every modality is first projected to ``d_model`` (``x̃_m = P_m x_m``; MulT's 1x1
    convolution). The query modality ``q`` gives the queries; the other modalities, their
    tokens concatenated in sorted order, give the keys and values:

        ``Q = x̃_q W_Q``, ``K = x̃_kv W_K``, ``V = x̃_kv W_V``, split into ``h`` heads of
        ``d_k = d_model / h``; ``A = softmax(Q K^T / sqrt(d_k))`` (masked keys get weight 0);
        ``z = LayerNorm(x̃_q + (A V) W_O)``.

    The fast path calls :func:`torch.nn.functional.scaled_dot_product_attention`; with
    ``return_attention=True`` (or ``keep_internals``) the same attention is computed the
    explicit way and ``A`` is returned (or stored), e.g. to draw a heat map of words x image
    regions.

    Args:
        input_dims: ``{m: d_m}``, at least two modalities.
        query: the modality that asks (its tokens are the output's positions).
        d_model: width of the attention.
        num_heads: ``h``; must divide ``d_model``.
        dropout: dropout on the attention weights and on the attention output.
        output_dim: ``None`` (default) gives ``d_model``; an int adds a learned ``nn.Linear``.
        keep_internals: store ``A`` of each forward call in ``last_attention``; off by
            default, so a model does not hold a tensor per batch. A plain attribute: set
            ``fusion.keep_internals = True`` on a built model to start recording.

    Inputs:
        features: ``{m: (B, T_m, d_m)}``.
        present: optional ``{m: (B,)}`` bool. A missing key modality has all its keys masked;
            with no key left the attention output is 0 and ``z = LayerNorm(x̃_q)`` (the query
            path only). A missing query modality gives ``z = 0``.
        token_mask: optional ``{m: (B, T_m)}`` bool, True for real tokens. Padded keys get
            attention weight 0; the outputs at padded query positions are 0.
        return_attention: also return ``A``.

    Returns:
        ``(B, T_q, output_dim)``; with ``return_attention`` a pair ``(z, A)`` where ``A`` is
        ``(B, h, T_q, S)`` over the ``S`` concatenated keys (``key_modalities`` order; rows
        of padded query tokens and of samples without any key are 0).

    Attributes:
        key_modalities: the modalities whose tokens are the keys, in order.
        keep_internals: whether forward stores ``last_attention``.
        last_attention: with ``keep_internals``, ``A`` of the last forward call, detached;
            ``None`` while ``keep_internals`` is False.
    """

    input_kind = "sequence"
    level = "model"

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        query: str = "text",
        d_model: int = 64,
        num_heads: int = 4,
        dropout: float = 0.0,
        output_dim: int | None = None,
        keep_internals: bool = False,
    ) -> None:
        super().__init__(input_dims, min_modalities=2)
        if query not in self.modalities:
            raise ValueError(
                f"query={query!r} is not one of the modalities {list(self.modalities)}"
            )
        if not isinstance(num_heads, int) or num_heads < 1 or d_model % num_heads:
            raise ValueError(
                f"num_heads must be a positive int dividing d_model={d_model}, got {num_heads!r}"
            )
        self.query = query
        self.key_modalities = tuple(m for m in self.modalities if m != query)
        self.num_heads = num_heads
        self.dropout = float(dropout)
        self.proj = self._per_modality_linear(d_model)  # P_m
        self.W_Q = nn.Linear(d_model, d_model)
        self.W_K = nn.Linear(d_model, d_model)
        self.W_V = nn.Linear(d_model, d_model)
        self.W_O = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model)
        self.out = self._output_layer(d_model, output_dim)
        self.keep_internals = bool(keep_internals)
        self.last_attention: Tensor | None = None

    def _heads(self, t: Tensor) -> Tensor:
        return t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # (B, h, T, d_k)

    def forward(
        self,
        features: Mapping[str, Tensor],
        present: Mapping[str, Tensor] | None = None,
        token_mask: Mapping[str, Tensor] | None = None,
        *,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        return self.fuse(
            *self.prepare(features, present, token_mask), return_attention=return_attention
        )

    def fuse(
        self,
        x: dict[str, Tensor],
        present: Tensor,
        mask: dict[str, Tensor] | None,
        *,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        P = dict(zip(self.modalities, self.proj, strict=True))  # P_m
        x_q = P[self.query](x[self.query])  # (B, T_q, d_model)
        x_kv = torch.cat([P[m](x[m]) for m in self.key_modalities], dim=1)  # (B, S, d_model)
        key_mask = torch.cat([mask[m] for m in self.key_modalities], dim=1)  # (B, S)
        has_key = key_mask.any(dim=1)  # (B,)
        # A row with every key masked would be softmax over nothing (NaN). Let it attend to
        # all keys instead and zero its output below, so no NaN reaches values or gradients.
        attn_mask = (key_mask | ~has_key[:, None])[:, None, None, :]  # (B, 1, 1, S)
        Q = self._heads(self.W_Q(x_q))  # (B, h, T_q, d_k)
        K = self._heads(self.W_K(x_kv))  # (B, h, S, d_k)
        V = self._heads(self.W_V(x_kv))  # (B, h, S, d_k)
        p_drop = self.dropout if self.training else 0.0
        A = None
        if return_attention or self.keep_internals:
            scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])  # (B, h, T_q, S)
            A = torch.softmax(scores.masked_fill(~attn_mask, float("-inf")), dim=-1)
            A = A * has_key[:, None, None, None]  # (B, h, T_q, S)
            A = A * mask[self.query][:, None, :, None]  # padded queries: 0
            ctx = F.dropout(A, p_drop, self.training) @ V  # (B, h, T_q, d_k)
            if self.keep_internals:
                self.last_attention = A.detach()
        else:
            ctx = F.scaled_dot_product_attention(Q, K, V, attn_mask=attn_mask, dropout_p=p_drop)
        a = self.W_O(ctx.transpose(1, 2).flatten(2))  # (B, T_q, d_model)
        a = torch.where(has_key[:, None, None], a, 0)  # (B, T_q, d_model)
        z = self.norm(x_q + F.dropout(a, p_drop, self.training))  # (B, T_q, d_model)
        z = self.out(z)  # (B, T_q, output_dim)
        z = torch.where(mask[self.query][..., None], z, 0)  # (B, T_q, output_dim)
        return (z, A) if return_attention else z
