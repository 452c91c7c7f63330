"""Image + text classifiers: encoders -> fusion -> head, and the unimodal baselines.

Every model follows the protocol of ``CONTRIBUTING.md``: ``forward(batch)`` returns class
scores ``(B, C)``, ``loss(batch)`` a scalar, ``predict(batch)`` class indices ``(B,)``,
``loss_and_predict(batch)`` both from one forward pass, ``predict_proba(batch)``
probabilities ``(B, C)``; so :func:`mmtutor.train.fit` trains any of
them.

The three fusion levels differ only in *what* reaches the fusion module:

* feature level (``input_kind="vector"``): each encoder's pooled vector ``(B, d_m)``;
* model level with attention (``input_kind="sequence"``): each encoder's token or region
  sequence ``(B, T_m, d_m)`` and its mask;
* decision level (``input_kind="logits"``): the logits ``(B, C)`` of one head per modality;
  the fusion returns log-probabilities.

References:
    - Baltrušaitis, Ahuja and Morency, "Multimodal Machine Learning: A Survey and Taxonomy",
      TPAMI 2019 (the fusion levels).
    - Kendall, Gal and Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for
      Scene Geometry and Semantics", CVPR 2018 (``aux_weighting="uncertainty"``).
    - Wang, Tran and Feiszli, "What Makes Training Multi-modal Classification Networks
      Hard?", CVPR 2020 (why unimodal auxiliary losses help a jointly trained model).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmtutor.fusion import FUSIONS, Fusion, build_fusion
from mmtutor.heads import ClassificationHead
from mmtutor.models.common import (
    encode,
    fusion_arguments,
    make_image_encoder,
    make_text_encoder,
    masked_pool,
    presence,
)
from mmtutor.utils import check_modalities

__all__ = ["MultimodalClassifier", "UnimodalClassifier", "build_classifier",
           "build_unimodal_classifier"]

AUX_WEIGHTINGS = ("fixed", "uncertainty")


class MultimodalClassifier(nn.Module):
    """Encoders -> fusion -> head, for any fusion of :data:`mmtutor.fusion.FUSIONS`.

    Args:
        encoders: one encoder per modality of ``fusion`` (``{"text": ..., "image": ...}``),
            each returning an :class:`~mmtutor.encoders.EncoderOutput`.
        fusion: a :class:`~mmtutor.fusion.Fusion`.
        head: features -> logits ``(B, C)``. For a decision-level fusion, a mapping with
            one head per modality (``{m: head_m}``), each on that modality's pooled vector.
        aux_heads: optional ``{m: head_m}`` unimodal heads on the pooled vectors, for the
            auxiliary losses (not for decision-level fusion, whose heads already are
            unimodal).
        aux_weight: ``λ`` of the auxiliary losses (see ``loss``); 0 switches them off.
        aux_weighting: ``"fixed"`` (``λ``) or ``"uncertainty"`` (learned weights, Kendall
            et al. 2018; ``aux_weight`` is then ignored).
        pool: ``"mean"`` or ``"max"``: how a sequence fusion's output ``(B, T_q, d)``
            (cross-attention) is pooled over the query's real tokens.

    Inputs:
        batch: ``tokens``, ``token_mask`` ``(B, T)``, ``image`` ``(B, 3, H, W)``, optional
            ``text_present``/``image_present`` ``(B,)`` and, for ``loss``, ``label`` ``(B,)``.

    Returns:
        ``forward``: ``(B, C)`` logits, or log-probabilities for decision-level fusion.
    """

    def __init__(
        self,
        encoders: Mapping[str, nn.Module],
        fusion: Fusion,
        head: nn.Module | Mapping[str, nn.Module],
        *,
        aux_heads: Mapping[str, nn.Module] | None = None,
        aux_weight: float = 0.0,
        aux_weighting: str = "fixed",
        pool: str = "mean",
    ) -> None:
        super().__init__()
        if aux_weighting not in AUX_WEIGHTINGS or aux_weight < 0 or pool not in ("mean", "max"):
            raise ValueError(f"need aux_weighting in {AUX_WEIGHTINGS}, aux_weight >= 0 and pool "
                             f"in ('mean', 'max'); got {aux_weighting!r}, {aux_weight!r}, {pool!r}")
        check_modalities("encoders", _as_dict(encoders) or encoders, fusion.modalities)
        self.late = fusion.input_kind == "logits"
        if self.late:  # one expert per modality: its heads are the unimodal heads
            if _as_dict(head) is None or aux_heads is not None:
                raise ValueError("a decision-level fusion needs head={modality: head} (one head "
                                 "per modality) and no aux_heads (those heads are unimodal)")
            check_modalities("head", _as_dict(head) or head, fusion.modalities)
        elif aux_heads is not None:
            check_modalities("aux_heads", _as_dict(aux_heads) or aux_heads, fusion.modalities)
        self.use_aux = aux_weight > 0 or aux_weighting == "uncertainty"
        if self.use_aux and not self.late and aux_heads is None:
            raise ValueError(f"aux_weight={aux_weight!r} / aux_weighting={aux_weighting!r} "
                             "need aux_heads={modality: head}")
        self.modalities, self.fusion = fusion.modalities, fusion
        self.encoders = nn.ModuleDict(encoders)
        self.head = nn.ModuleDict(head) if self.late else head
        self.aux_heads = None if aux_heads is None else nn.ModuleDict(aux_heads)
        self.aux_weight, self.aux_weighting, self.pool = float(aux_weight), aux_weighting, pool
        if aux_weighting == "uncertainty":  # s_k = log σ_k² of the fused task and each modality
            self.log_vars = nn.Parameter(torch.zeros(1 + len(self.modalities)))

    def scores(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The fused scores ``(B, C)`` and the unimodal logits ``{m: (B, C)}`` (if any)."""
        out = {m: encode(self.encoders[m], m, batch) for m in self.modalities}
        present = presence(batch, self.modalities)
        heads = self.head if self.late else self.aux_heads  # unimodal heads, if any
        unimodal = {} if heads is None else {m: heads[m](out[m].pooled) for m in out}  # (B, C)
        if self.late:
            return self.fusion(unimodal, present), unimodal  # log-probabilities (B, C)
        if self.fusion.input_kind == "sequence":
            z = self.fusion({m: o.sequence for m, o in out.items()}, present,
                            token_mask={m: o.mask for m, o in out.items()})  # (B, [T_q,] d)
            if z.dim() == 3:  # one vector per query token (cross-attention): pool them
                z = masked_pool(z, out[self.fusion.query].mask, self.pool)  # (B, d)
        else:
            z = self.fusion({m: o.pooled for m, o in out.items()}, present)  # (B, d)
        return self.head(z), unimodal  # (B, C) logits

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Class scores ``(B, C)``: logits, or log-probabilities for decision-level fusion."""
        return self.scores(batch)[0]

    def loss(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Cross-entropy of the fused prediction, plus the unimodal auxiliary losses.

        ``L = CE(fused) + λ · mean_m CE_m`` where ``CE_m`` is the cross-entropy of modality
        ``m``'s own head over the samples where ``m`` is present (``aux_weight = λ``). With
        ``aux_weighting="uncertainty"``: ``L = Σ_k exp(-s_k) L_k + s_k / 2`` over the fused
        and unimodal losses, ``s_k`` learned (Kendall et al., CVPR 2018).

        For decision-level fusion the fused scores are log-probabilities, and cross-entropy
        (``log_softmax`` then NLL) equals their NLL, since ``log_softmax`` leaves
        log-probabilities unchanged. With ``λ = 0`` the experts learn only through the
        fused loss (joint training); ``λ > 0`` also trains each expert to stand alone.
        """
        return self._loss(*self.scores(batch), batch)

    def _loss(self, fused: Tensor, unimodal: dict[str, Tensor], batch: Mapping[str, Tensor]
              ) -> Tensor:
        y = batch["label"]  # (B,)
        loss = F.cross_entropy(fused, y)
        if not self.use_aux:
            return loss
        present = presence(batch, self.modalities)
        aux = torch.stack([_present_mean(F.cross_entropy(unimodal[m], y, reduction="none"),
                                         present.get(m)) for m in self.modalities])  # (M,)
        if self.aux_weighting == "uncertainty":
            losses = torch.cat([loss[None], aux])  # (1 + M,)
            return (torch.exp(-self.log_vars) * losses + 0.5 * self.log_vars).sum()
        return loss + self.aux_weight * aux.mean()

    def predict(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Predicted class indices ``(B,)``."""
        return self(batch).argmax(dim=-1)

    def loss_and_predict(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(loss(batch), predict(batch))`` from one forward pass (what evaluation needs)."""
        fused, unimodal = self.scores(batch)  # (B, C), {m: (B, C)}
        return self._loss(fused, unimodal, batch), fused.argmax(dim=-1)

    def predict_proba(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Class probabilities ``(B, C)``: ``exp`` of log-probabilities, or softmax of logits."""
        scores = self(batch)  # (B, C)
        return scores.exp() if self.late else scores.softmax(dim=-1)


def _as_dict(modules: object) -> dict[str, object] | None:
    """A plain dict of a mapping or ``nn.ModuleDict`` (``None`` for anything else)."""
    if isinstance(modules, (Mapping, nn.ModuleDict)):
        return dict(modules.items())
    return None


def _present_mean(values: Tensor, present: Tensor | None) -> Tensor:
    """Mean of per-sample ``values`` ``(B,)`` over the samples where ``present`` is True."""
    if present is None:
        return values.mean()
    return (values * present).sum() / present.sum().clamp(min=1)


class UnimodalClassifier(nn.Module):
    """One encoder and a head: the text-only or image-only baseline.

    Args:
        encoder: returns an :class:`~mmtutor.encoders.EncoderOutput`.
        head: pooled vector ``(B, d)`` -> logits ``(B, C)``.
        modality: ``"text"`` (reads ``tokens``, ``token_mask``) or ``"image"`` (reads ``image``).

    Returns:
        ``forward``: ``(B, C)`` logits.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, modality: str = "text") -> None:
        super().__init__()
        self.encoder, self.head, self.modality = encoder, head, modality

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Logits ``(B, C)`` from this modality alone."""
        return self.head(encode(self.encoder, self.modality, batch).pooled)  # (B, C)

    def loss(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Cross-entropy against ``batch["label"]``."""
        return F.cross_entropy(self(batch), batch["label"])

    def predict(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Predicted class indices ``(B,)``."""
        return self(batch).argmax(dim=-1)

    def loss_and_predict(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """``(loss(batch), predict(batch))`` from one forward pass (what evaluation needs)."""
        logits = self(batch)  # (B, C)
        return F.cross_entropy(logits, batch["label"]), logits.argmax(dim=-1)

    def predict_proba(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Class probabilities ``(B, C)``."""
        return self(batch).softmax(dim=-1)


def build_classifier(
    fusion: str = "concat",
    *,
    vocab_size: int | None,
    num_classes: int,
    text_encoder: str = "bag",
    image_encoder: str = "cnn",
    dim: int = 64,
    hidden: int | None = None,
    dropout: float = 0.0,
    aux_weight: float = 0.0,
    aux_weighting: str = "fixed",
    pool: str = "mean",
    text_kwargs: Mapping[str, object] | None = None,
    image_kwargs: Mapping[str, object] | None = None,
    fusion_kwargs: Mapping[str, object] | None = None,
    **more_fusion_kwargs: object,
) -> MultimodalClassifier:
    """Wire the standard encoders, a fusion from :data:`~mmtutor.fusion.FUSIONS` and heads.

    Args:
        fusion: a name of :data:`mmtutor.fusion.FUSIONS` (``"concat"``, ``"gated"``,
            ``"cross_attention"``, ``"average"``...).
        vocab_size: number of token ids (not needed for ``text_encoder="minilm"``).
        num_classes: ``C``.
        text_encoder: ``"bag"``, ``"bilstm"``, ``"transformer"`` or ``"minilm"``.
        image_encoder: ``"cnn"`` or ``"resnet18"``.
        dim: encoder output size (``"bag"``, ``"transformer"``, ``"bilstm"``, ``"cnn"``).
        hidden: hidden size of the heads' MLP (``None``: linear heads).
        dropout: dropout of the heads.
        aux_weight: weight of the unimodal auxiliary losses (adds one head per modality).
        aux_weighting: ``"fixed"`` or ``"uncertainty"`` (Kendall et al. 2018).
        pool: pooling of a cross-attention output, ``"mean"`` or ``"max"``.
        text_kwargs: extra arguments of the text encoder (override the defaults).
        image_kwargs: extra arguments of the image encoder.
        fusion_kwargs: arguments of the fusion class as their own dict (``{"output_dim":
            16}``); each key is checked against the class's signature, so a config or a
            checkpoint cannot reach the builder's other arguments (``image_kwargs``...).
        **more_fusion_kwargs: more fusion arguments, for short calls
            (``build_classifier("gated", ..., output_dim=16)``); checked the same way.

    Raises:
        ValueError: for an unknown fusion or a fusion argument the class does not take.

    Returns:
        A :class:`MultimodalClassifier`.

    Examples:
        >>> model = build_classifier("gated", vocab_size=100, num_classes=3, dim=16)
        >>> type(model.fusion).__name__
        'GatedFusion'
    """
    fusion_kwargs = fusion_arguments(fusion, fusion_kwargs, more_fusion_kwargs)
    encoders = {
        "text": make_text_encoder(text_encoder, vocab_size=vocab_size, dim=dim,
                                  **(text_kwargs or {})),
        "image": make_image_encoder(image_encoder, dim=dim, **(image_kwargs or {})),
    }
    dims = {m: e.output_dim for m, e in encoders.items()}

    def new_head(in_dim: int) -> ClassificationHead:
        return ClassificationHead(in_dim, num_classes, hidden=hidden, dropout=dropout)

    unimodal = {m: new_head(d) for m, d in dims.items()}
    if fusion in FUSIONS and FUSIONS[fusion].input_kind == "logits":  # decision level: one head per modality
        fused = build_fusion(fusion, dict.fromkeys(dims, num_classes), **fusion_kwargs)
        head, aux_heads = unimodal, None
    else:
        fused = build_fusion(fusion, dims, **fusion_kwargs)
        use_aux = aux_weight > 0 or aux_weighting == "uncertainty"
        head, aux_heads = new_head(fused.output_dim), unimodal if use_aux else None
    return MultimodalClassifier(encoders, fused, head, aux_heads=aux_heads, aux_weight=aux_weight,
                                aux_weighting=aux_weighting, pool=pool)


def build_unimodal_classifier(
    modality: str = "text",
    *,
    vocab_size: int | None = None,
    num_classes: int,
    encoder: str | None = None,
    dim: int = 64,
    hidden: int | None = None,
    dropout: float = 0.0,
    **encoder_kwargs: object,
) -> UnimodalClassifier:
    """Wire a text-only or image-only baseline.

    Args:
        modality: ``"text"`` or ``"image"``.
        vocab_size: number of token ids (text encoders but ``"minilm"``).
        num_classes: ``C``.
        encoder: an encoder name (default ``"bag"`` for text, ``"cnn"`` for images).
        dim: encoder output size.
        hidden: hidden size of the head's MLP (``None``: linear head).
        dropout: dropout of the head.
        **encoder_kwargs: extra arguments of the encoder.

    Examples:
        >>> build_unimodal_classifier("image", num_classes=3, dim=16).modality
        'image'
    """
    if modality == "text":
        enc = make_text_encoder(encoder or "bag", vocab_size=vocab_size, dim=dim, **encoder_kwargs)
    elif modality == "image":
        enc = make_image_encoder(encoder or "cnn", dim=dim, **encoder_kwargs)
    else:
        raise ValueError(f"modality must be 'text' or 'image', got {modality!r}")
    head = ClassificationHead(enc.output_dim, num_classes, hidden=hidden, dropout=dropout)
    return UnimodalClassifier(enc, head, modality)
