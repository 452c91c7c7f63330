"""FiLM: one modality scales and shifts the features of another.

Reference:
    Perez, Strub, de Vries, Dumoulin and Courville, "FiLM: Visual Reasoning with a General
    Conditioning Layer", AAAI 2018.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mmtutor.fusion.base import Fusion, expand_to

__all__ = ["FiLMFusion"]


class FiLMFusion(Fusion):
    """Feature-wise Linear Modulation (Perez et al., AAAI 2018): ``z = γ ⊙ x_t + β``.

    ``γ`` and ``β`` are computed from the conditioning modality, ``[Δγ; β] = W x_c + b``, and
    ``γ = 1 + Δγ``. ``W`` and ``b`` start at zero, so the layer starts as the identity on the
    target and learns how much the condition should change it.

    The condition may have fewer leading dims than the target: a pooled image ``(B, d_c)``
    modulates every token of a text ``(B, T, d_t)`` (``γ`` and ``β`` broadcast over ``T``).

    Args:
        input_dims: ``{m: d_m}``, exactly the two modalities ``condition`` and ``target``.
        condition: the modality that computes ``γ`` and ``β``.
        target: the modality that is modulated.
        output_dim: ``None`` (default) returns the modulated target, of size ``d_t``; an int
            adds a learned ``nn.Linear`` to ``output_dim``.

    Inputs:
        features: ``{target: (B, ..., d_t), condition: (B, ..., d_c)}`` where the condition's
            leading dims are the target's or a prefix of them.
        present: optional ``{m: (B,)}`` bool. A missing condition gives the identity
            (``γ = 1, β = 0``, so ``z = x_t``); a missing target is zeroed, so ``z = β``.

    Returns:
        ``(..., output_dim)`` with the target's leading dims.
    """

    level = "model"

    def __init__(
        self,
        input_dims: Mapping[str, int],
        *,
        condition: str = "image",
        target: str = "text",
        output_dim: int | None = None,
    ) -> None:
        super().__init__(input_dims, min_modalities=2)
        if condition == target or set(self.modalities) != {condition, target}:
            raise ValueError(
                f"FiLMFusion needs input_dims with exactly the modalities condition={condition!r} "
                f"and target={target!r} (two different names), got {list(self.modalities)}"
            )
        self.condition, self.target = condition, target
        d_t = self.input_dims[target]
        self.film = nn.Linear(self.input_dims[condition], 2 * d_t)  # x_c -> [Δγ; β]
        nn.init.zeros_(self.film.weight)  # start at the identity: γ = 1, β = 0
        nn.init.zeros_(self.film.bias)
        self.out = self._output_layer(d_t, output_dim)

    def _check_leading(self, shapes: dict[str, tuple[int, ...]]) -> None:
        c, t = shapes[self.condition][:-1], shapes[self.target][:-1]
        if t[: len(c)] != c:
            raise ValueError(
                f"features[{self.condition!r}] must have the leading dims of "
                f"features[{self.target!r}] or a prefix of them (e.g. (B, d_c) with (B, T, d_t)), "
                f"got shapes {shapes}"
            )

    def fuse(self, x: dict[str, Tensor], present: Tensor, mask: dict[str, Tensor] | None) -> Tensor:
        x_c, x_t = x[self.condition], x[self.target]  # (B, ..., d_c), (B, ..., d_t)
        delta_gamma, beta = self.film(x_c).chunk(2, dim=-1)  # (B, ..., d_t) each
        has_c = expand_to(present[:, self.modalities.index(self.condition)], beta)  # (B, 1.., 1)
        gamma = torch.where(has_c, 1 + delta_gamma, 1)  # (B, ..., d_t)
        beta = torch.where(has_c, beta, 0)  # (B, ..., d_t)
        extra = (1,) * (x_t.dim() - beta.dim())  # broadcast over the target's extra dims (T)
        gamma = gamma.reshape(gamma.shape[:-1] + extra + gamma.shape[-1:])  # (B, .., 1, d_t)
        beta = beta.reshape(beta.shape[:-1] + extra + beta.shape[-1:])  # (B, .., 1, d_t)
        z = gamma * x_t + beta  # (B, ..., d_t)
        return self.out(z)  # (B, ..., output_dim)
