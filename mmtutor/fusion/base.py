"""The ``Fusion`` base class: modality bookkeeping, input checks and presence masks.

Every fusion of :mod:`mmtutor.fusion` takes its inputs as a mapping from modality name to
tensor and handles the modalities in sorted order, so results do not depend on the order of
a dict. The checks live here, once, so every fusion raises the same clear ``ValueError``
(see ``CONTRIBUTING.md``, section "Fusion modules").

Missing modalities: ``present[m]`` is a ``(B,)`` bool tensor, False where modality ``m`` is
missing for a sample. Before a fusion sees its inputs, :meth:`Fusion.prepare` zeroes the
features of missing modalities (and, for sequences, the padded tokens), so whatever a
collate function left there (zeros, noise, even NaN) cannot leak into the output. What a
fusion then does with a missing modality is documented on each class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from mmtutor.utils import check_modalities, check_tensor

__all__ = [
    "Fusion",
    "FusionInputs",
    "ModalityWeightsMixin",
    "renormalise",
    "expand_to",
    "expand_flags",
]


class FusionInputs(NamedTuple):
    """Checked inputs of a fusion, as returned by :meth:`Fusion.prepare`.

    Attributes:
        x: the features, keyed by modality, with missing modalities (and padded tokens of
            sequences) set to zero.
        present: ``(B, M)`` bool, column ``j`` for ``modalities[j]``.
        mask: for sequence fusions, ``mask[m]`` ``(B, T_m)`` bool is True for the tokens that
            may be attended to: real tokens of present modalities. ``None`` otherwise.
    """

    x: dict[str, Tensor]
    present: Tensor
    mask: dict[str, Tensor] | None


def expand_to(flags: Tensor, like: Tensor) -> Tensor:
    """Reshape per-sample ``flags`` ``(B,)`` to ``(B, 1, ..., 1)`` to broadcast with ``like``."""
    return flags.reshape(flags.shape + (1,) * (like.dim() - flags.dim()))


def expand_flags(flags: Tensor, ndim: int) -> Tensor:
    """Reshape per-sample, per-modality ``flags`` ``(B, K)`` to ``(B, 1, ..., 1, K)``.

    The result has ``ndim`` dims, to broadcast with a ``(B, ..., K)`` tensor.
    """
    return flags.reshape(flags.shape[0], *[1] * (ndim - 2), flags.shape[-1])


def renormalise(w: Tensor, present: Tensor) -> Tensor:
    """Renormalise non-negative modality weights over the present modalities.

    Args:
        w: ``(M,)`` weights of the modalities (they need not sum to 1).
        present: ``(B, M)`` bool presence flags.

    Returns:
        ``(B, M)`` weights: ``w_m`` divided by the sum of the present ones, 0 for missing
        modalities; a sample with no modality present gets all zeros.
    """
    w = torch.where(present, w, 0)  # (B, M)
    total = w.sum(dim=-1, keepdim=True)  # (B, 1)
    return torch.where(total > 0, w / total.clamp_min(torch.finfo(w.dtype).tiny), 0)  # (B, M)


class ModalityWeightsMixin:
    """For fusions with one weight per modality: a ``weights`` property a chapter can print.

    The class defines ``modality_weights() -> Tensor (M,)``.
    """

    modalities: tuple[str, ...]

    def modality_weights(self) -> Tensor:  # pragma: no cover - defined by the fusion
        raise NotImplementedError

    @property
    def weights(self) -> dict[str, float]:
        """The current weights before renormalisation, ``{m: w_m}``."""
        w = self.modality_weights().detach().cpu().tolist()
        return dict(zip(self.modalities, w, strict=True))


def _check_dims(name: str, dims: object) -> dict[str, int]:
    if not isinstance(dims, Mapping) or not dims:
        raise ValueError(
            f"{name} must be a non-empty mapping from modality name to feature size, "
            f"e.g. {{'image': 512, 'text': 256}}; got {dims!r}"
        )
    out = {}
    for m in sorted(dims):
        d = dims[m]
        if not isinstance(m, str):
            raise ValueError(f"{name} keys must be modality names (str), got {m!r}")
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ValueError(f"{name}[{m!r}] must be a positive int, got {d!r}")
        out[m] = d
    return out


class Fusion(nn.Module):
    """Base class of the fusion modules: sorted ``modalities``, ``output_dim``, input checks.

    Subclasses set the class attributes ``input_kind`` (``"vector"``, ``"sequence"`` or
    ``"logits"``) and ``level`` (``"feature"``, ``"model"`` or ``"decision"``), call
    ``super().__init__(input_dims)``, set ``self.output_dim``, and implement :meth:`fuse`:
    :meth:`forward` checks the inputs with :meth:`prepare` and passes them on.

    Args:
        input_dims: feature size ``d_m`` of each modality (number of classes ``C`` for
            decision-level fusions), keyed by modality name.
        min_modalities: the fewest modalities the fusion accepts.

    Attributes:
        modalities: the modality names, sorted.
        input_dims: ``{m: d_m}`` in sorted order.
        output_dim: the size of the last dim of the output.
    """

    input_kind: ClassVar[str] = "vector"
    level: ClassVar[str] = "feature"

    def __init__(self, input_dims: Mapping[str, int], *, min_modalities: int = 1) -> None:
        super().__init__()
        self.input_dims: dict[str, int] = _check_dims("input_dims", input_dims)
        self.modalities: tuple[str, ...] = tuple(self.input_dims)
        if len(self.modalities) < min_modalities:
            raise ValueError(
                f"{type(self).__name__} needs at least {min_modalities} modalities in "
                f"input_dims, got {list(self.modalities)}"
            )
        self.output_dim: int = 0

    def extra_repr(self) -> str:
        return f"input_dims={self.input_dims}, output_dim={self.output_dim}"

    def forward(
        self,
        features: Mapping[str, Tensor],
        present: Mapping[str, Tensor] | None = None,
        token_mask: Mapping[str, Tensor] | None = None,
    ) -> Tensor:
        """Check the inputs with :meth:`prepare` (same arguments), then :meth:`fuse` them.

        Returns:
            The fused tensor; each fusion documents its shape.
        """
        return self.fuse(*self.prepare(features, present, token_mask))

    def fuse(self, x: dict[str, Tensor], present: Tensor, mask: dict[str, Tensor] | None) -> Tensor:
        """The fusion itself, on checked inputs (the fields of :class:`FusionInputs`).

        Args:
            x: ``{m: features}`` with missing modalities (and padded tokens) set to zero.
            present: ``(B, M)`` bool, column ``j`` for ``modalities[j]``.
            mask: for sequence fusions ``{m: (B, T_m)}`` bool, True for tokens that may be
                attended to; ``None`` otherwise.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ construction helpers
    def _output_layer(self, natural_dim: int, output_dim: int | None) -> nn.Module:
        """Set ``self.output_dim``; return a Linear to ``output_dim`` or Identity if None.

        For fusions whose output size follows from their formula (concatenation, outer
        product, FiLM, attention width): ``output_dim=None`` keeps that size, an int adds a
        learned ``nn.Linear(natural_dim, output_dim)`` after the fusion.
        """
        if output_dim is None:
            self.output_dim = natural_dim
            return nn.Identity()
        self.output_dim = _positive("output_dim", output_dim)
        return nn.Linear(natural_dim, output_dim)

    def _shared_dim(self, output_dim: int | None) -> int:
        """Size of a shared space the modalities are projected into: ``max(d_m)`` by default."""
        dim = max(self.input_dims.values()) if output_dim is None else output_dim
        self.output_dim = _positive("output_dim", dim)
        return self.output_dim

    def _per_modality_linear(
        self, out_dims: int | Mapping[str, int], *, bias: bool = True
    ) -> nn.ModuleList:
        """One ``nn.Linear(d_m, out_dims[m])`` per modality, in sorted order."""
        if isinstance(out_dims, Mapping):
            check_modalities("project_dims", out_dims, self.modalities)
            sizes = {m: _positive(f"project_dims[{m!r}]", out_dims[m]) for m in self.modalities}
        else:
            sizes = dict.fromkeys(self.modalities, _positive("output size", out_dims))
        return nn.ModuleList(
            nn.Linear(self.input_dims[m], sizes[m], bias=bias) for m in self.modalities
        )

    # ----------------------------------------------------------------------- input checks
    def _check_leading(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Raise unless all modalities share the leading dims (overridden by FiLM).

        Args:
            shapes: the full shape of each modality's features.
        """
        seq = self.input_kind == "sequence"
        lead = {s[:1] if seq else s[:-1] for s in shapes.values()}
        if len(lead) > 1:
            what = "the batch size B (dim 0)" if seq else "the leading dims (B, ...)"
            raise ValueError(f"features must share {what} across modalities, got shapes {shapes}")

    def _check_features(self, features: Mapping[str, Tensor]) -> int:
        """Check the feature tensors; return the batch size ``B``."""
        check_modalities("features", features, self.modalities)
        for m in self.modalities:
            name, d = f"features[{m!r}]", self.input_dims[m]
            if self.input_kind == "sequence":
                check_tensor(name, features[m], ("B", f"T_{m}", d), dtype="float")
            else:
                check_tensor(name, features[m], ("...", d), dtype="float")
                if features[m].dim() < 2:
                    raise ValueError(
                        f"{name} must have shape (B, ..., {d}), got {tuple(features[m].shape)}; "
                        "add a batch dimension"
                    )
        self._check_leading({m: tuple(features[m].shape) for m in self.modalities})
        return features[self.modalities[0]].shape[0]

    def _check_flags(
        self, name: str, flags: Mapping[str, Tensor] | None, shapes: dict[str, tuple]
    ) -> dict[str, Tensor]:
        """Check optional per-modality bool masks (a subset of the modalities may be given)."""
        if flags is None:
            return {}
        if not isinstance(flags, Mapping):
            raise ValueError(
                f"{name} must be a mapping from modality name to bool tensor, "
                f"got {type(flags).__name__}"
            )
        extra = sorted(set(flags) - set(self.modalities))
        if extra:
            raise ValueError(
                f"{name} has unexpected modalities {extra}; expected some of "
                f"{list(self.modalities)}"
            )
        for m in flags:
            check_tensor(f"{name}[{m!r}]", flags[m], shapes[m], dtype="bool")
        return dict(flags)

    def prepare(
        self,
        features: Mapping[str, Tensor],
        present: Mapping[str, Tensor] | None = None,
        token_mask: Mapping[str, Tensor] | None = None,
    ) -> FusionInputs:
        """Check the inputs of ``forward`` and zero what must not be used.

        Args:
            features: ``{m: (..., d_m)}`` (``"vector"``, ``"logits"``) or
                ``{m: (B, T_m, d_m)}`` (``"sequence"``).
            present: optional ``{m: (B,)}`` bool; modalities left out count as present.
            token_mask: optional ``{m: (B, T_m)}`` bool (True = real token), used by
                sequence fusions and ignored by the others; modalities left out have no
                padding.

        Returns:
            A :class:`FusionInputs`.

        Raises:
            ValueError: naming the argument, the shape it got and the shape wanted.
        """
        B = self._check_features(features)
        x0 = features[self.modalities[0]]
        flags = self._check_flags("present", present, {m: (B,) for m in self.modalities})
        ones = torch.ones(B, dtype=torch.bool, device=x0.device)  # (B,)
        present_t = torch.stack([flags.get(m, ones) for m in self.modalities], dim=-1)  # (B, M)
        x = {}
        for j, m in enumerate(self.modalities):
            x[m] = torch.where(expand_to(present_t[:, j], features[m]), features[m], 0)
        mask = None
        if self.input_kind == "sequence":
            shapes = {m: tuple(features[m].shape[:2]) for m in self.modalities}
            given = self._check_flags("token_mask", token_mask, shapes)
            mask = {}
            for j, m in enumerate(self.modalities):
                real = given.get(m, torch.ones(shapes[m], dtype=torch.bool, device=x0.device))
                mask[m] = real & present_t[:, j, None]  # (B, T_m)
                x[m] = torch.where(mask[m][..., None], x[m], 0)  # (B, T_m, d_m)
        return FusionInputs(x, present_t, mask)


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value
