"""Gated Multimodal Unit: a learned, per-dimension gate decides how much of each modality to use.

Reference:
    Arevalo, Solorio, Montes-y-Gómez and González, "Gated Multimodal Units for Information
    Fusion", ICLR 2017 (workshop track).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmtutor.fusion.base import Fusion, expand_flags

__all__ = ["GatedFusion"]


class GatedFusion(Fusion):
    """Gated Multimodal Unit (GMU, Arevalo et al., ICLR 2017 workshop).

    Each modality is mapped to the shared space, ``h_m = tanh(W_m x_m)``; a gate computed from
    all inputs mixes them per dimension. For two modalities (sorted order), as in the paper:

        ``z = sigmoid(W_z [x_1; x_2])``,  ``h = z ⊙ h_1 + (1 - z) ⊙ h_2``.

    For ``M > 2`` modalities the gate is a softmax over modalities, per dimension:
    ``z = softmax_m(W_z [x_1; ...; x_M])`` (``W_z`` gives ``M`` logits per dimension),
    ``h = sum_m z_m ⊙ h_m``. (For ``M = 2`` the code computes ``softmax([a, 0])``, which is
    exactly ``[sigmoid(a), 1 - sigmoid(a)]``.)

    Args:
        input_dims: ``{m: d_m}``, at least two modalities.
        output_dim: size of the shared space; default ``max_m d_m``.
        keep_internals: store the gates of each forward call in ``last_gates``; off by
            default, so a model does not hold a tensor per batch. A plain attribute: set
            ``fusion.keep_internals = True`` on a built model to start recording.

    Inputs:
        features: ``{m: (..., d_m)}``, the same leading dims for every modality.
        present: optional ``{m: (B,)}`` bool. The gate of a missing modality is forced to 0
            (the present ones share the whole gate; one present modality gets ``z = 1``);
            a sample with none present gets ``h = 0``.

    Returns:
        ``(..., output_dim)``.

    Attributes:
        keep_internals: whether forward stores ``last_gates``.
        last_gates: with ``keep_internals``, the gates of the last forward call, detached,
            ``(..., M, output_dim)``; for two modalities ``last_gates[..., 0, :]`` is the
            paper's ``z``. Plot it to see which modality the model trusts for which sample.
            ``None`` while ``keep_internals`` is False.
    """

    level = "model"

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        output_dim: int | None = None,
        keep_internals: bool = False,
    ) -> None:
        super().__init__(input_dims, min_modalities=2)
        d_h = self._shared_dim(output_dim)
        M = len(self.modalities)
        self.proj = self._per_modality_linear(d_h, bias=False)  # W_m, no bias as in the paper
        self.gate = nn.Linear(sum(self.input_dims.values()), d_h if M == 2 else M * d_h)  # W_z
        self.keep_internals = bool(keep_internals)
        self.last_gates: Tensor | None = None

    def fuse(self, x: dict[str, Tensor], present: Tensor, mask: dict[str, Tensor] | None) -> Tensor:
        xs = [x[m] for m in self.modalities]  # M x (..., d_m)
        h = torch.stack([torch.tanh(W(x_m)) for W, x_m in zip(self.proj, xs, strict=True)], dim=-2)
        # h: (..., M, d_h)
        a = self.gate(torch.cat(xs, dim=-1))  # (..., d_h) or (..., M * d_h)
        if len(self.modalities) == 2:
            logits = torch.stack([a, torch.zeros_like(a)], dim=-2)  # (..., 2, d_h)
        else:
            logits = a.unflatten(-1, h.shape[-2:])  # (..., M, d_h)
        on = expand_flags(present, logits.dim() - 1)[..., None]  # (B, 1.., M, 1)
        # A large finite negative, not -inf: a sample with no modality stays NaN-free.
        logits = logits.masked_fill(~on, torch.finfo(logits.dtype).min)  # (..., M, d_h)
        z = torch.softmax(logits, dim=-2)  # (..., M, d_h)
        z = torch.where(on.any(dim=-2, keepdim=True), z, 0)  # (..., M, d_h)
        if self.keep_internals:
            self.last_gates = z.detach()
        return (z * h).sum(dim=-2)  # (..., d_h)
