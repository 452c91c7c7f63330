"""Sequence taggers for (multimodal) named entity recognition: text encoder, fusion, head.

One class covers the text-only baseline (BiLSTM-CRF, Lample et al. 2016; CNN-BiLSTM-CRF,
Ma & Hovy 2016) and its multimodal variants, in which every token also sees the image:

* feature / model level, vector fusion (``concat``, ``gated``, ``film``...): the image's
  pooled vector is copied to every position, ``(B, d_img) -> (B, T, d_img)``, and fused with
  each token's vector ``(B, T, d_txt)``;
* model level, ``cross_attention``: each token attends over the image regions
  (``.sequence``, ``(B, R, d_img)``), as in the adaptive co-attention of Zhang et al.
  (AAAI 2018) and the visual attention of Lu et al. (ACL 2018);
* decision level (``average``, ``weighted_vote``, ``product_of_experts``): two experts that
  never see each other's modality. The text expert scores the tags of every token from its
  state ``h_t`` alone, ``(B, T, d_txt) -> (B, T, K)``; the image expert scores the tags from
  the image vector ``v`` alone, ``(B, d_img) -> (B, K)``, one distribution per sentence that
  is broadcast over its tokens (a prior over tags from the image: it can say *which type* of
  entity the picture suggests, never *where* an entity is). The decision fusion combines the
  two per-token distributions, e.g. the log-linear ``log_softmax(log p_text + log p_image)``
  of a product of experts. (An expert that read ``[h_t; v]`` would be feature-level fusion
  inside an expert, not late fusion.)

Then a softmax head (cross-entropy per token) or a CRF scores the tags.

References:
    - Lample et al., "Neural Architectures for Named Entity Recognition", NAACL 2016.
    - Ma and Hovy, "End-to-end Sequence Labeling via Bi-directional LSTM-CNNs-CRF", ACL 2016.
    - Moon, Neves and Carvalho, "Multimodal Named Entity Recognition for Short Social Media
      Posts", NAACL 2018.
    - Zhang, Fu, Liu and Huang, "Adaptive Co-attention Network for Named Entity Recognition in
      Tweets", AAAI 2018.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from mmtutor.fusion import FUSIONS, Fusion, build_fusion
from mmtutor.heads import CRF, ClassificationHead, TokenClassificationHead
from mmtutor.models.common import (
    encode,
    fusion_arguments,
    make_image_encoder,
    make_text_encoder,
    presence,
)

__all__ = ["MultimodalTagger", "build_tagger"]

IGNORE_INDEX = -100  # the tag of padding (the softmax loss skips it)


class MultimodalTagger(nn.Module):
    """Tag every token, from the text alone or from the text and the image.

    Args:
        text_encoder: returns an :class:`~mmtutor.encoders.EncoderOutput` whose
            ``sequence (B, T, d_txt)`` has one vector per token.
        image_encoder: an image encoder, or ``None`` for the text-only tagger.
        fusion: ``None`` (text only), or a fusion over ``{"text", "image"}``: a vector
            fusion (``input_dims`` = the encoders' sizes), a cross-attention fusion with
            ``query="text"``, or a decision-level fusion (``input_dims`` = ``num_tags``).
        num_tags: ``K``.
        head: ``"softmax"`` (independent per-token decisions) or ``"crf"``.
        fusion_level: optional check of ``fusion.level`` (``"feature"``, ``"model"``,
            ``"decision"``); the fusion itself decides how the image enters.
        dropout: dropout before the emission heads.
        tag_names: with ``head="crf"``, forbid the moves BIO rules out
            (:meth:`~mmtutor.heads.CRF.constrain_bio`).

    Inputs:
        batch: ``tokens``, ``token_mask`` ``(B, T)`` (left-aligned), ``chars`` ``(B, T, L)``
            if the encoder reads characters (a word-pooling MiniLM reads ``subword_ids``,
            ``subword_mask``, ``word_ids`` ``(B, S)`` instead of ``tokens``; ``T`` still
            counts words), ``image`` ``(B, 3, H, W)`` and
            ``image_present`` ``(B,)`` for the multimodal tagger; for ``loss``, ``tags``
            ``(B, T)`` with ``-100`` at padding.

    Returns:
        ``forward``: emissions ``(B, T, K)``: logits, or log-probabilities at decision level.
    """

    def __init__(
        self,
        text_encoder: nn.Module,
        image_encoder: nn.Module | None = None,
        fusion: Fusion | None = None,
        *,
        num_tags: int,
        head: str = "crf",
        fusion_level: str | None = None,
        dropout: float = 0.0,
        tag_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if (image_encoder is None) != (fusion is None):
            raise ValueError("give both image_encoder and fusion (multimodal) or neither "
                             f"(text only), got image_encoder={type(image_encoder).__name__}, "
                             f"fusion={type(fusion).__name__}")
        if head not in ("softmax", "crf"):
            raise ValueError(f"head must be 'softmax' or 'crf', got {head!r}")
        level = None if fusion is None else fusion.level
        if fusion_level is not None and fusion_level != level:
            raise ValueError(f"fusion_level={fusion_level!r} does not match the fusion "
                             f"{type(fusion).__name__}, whose level is {level!r}")
        if fusion is not None and set(fusion.modalities) != {"image", "text"}:
            raise ValueError(f"fusion must combine the modalities ['image', 'text'], "
                             f"got {list(fusion.modalities)}")
        self.kind = "text" if fusion is None else fusion.input_kind
        if self.kind == "sequence" and getattr(fusion, "query", None) != "text":
            raise ValueError(f"a tagger needs one vector per token: a sequence fusion must be "
                             f"cross-attention with query='text'; {type(fusion).__name__} is not")
        d_txt = text_encoder.output_dim
        self.text_encoder, self.image_encoder, self.fusion = text_encoder, image_encoder, fusion
        if self.kind == "logits":  # decision level: one expert per modality, each sees only it
            self.experts = nn.ModuleDict({
                "text": TokenClassificationHead(d_txt, num_tags, dropout=dropout),  # h_t -> K
                "image": ClassificationHead(image_encoder.output_dim, num_tags,
                                            dropout=dropout),  # v -> K, once per sentence
            })
        else:
            d = d_txt if fusion is None else fusion.output_dim
            self.emissions = TokenClassificationHead(d, num_tags, dropout=dropout)
        self.crf = CRF(num_tags) if head == "crf" else None
        if self.crf is not None and tag_names is not None:
            self.crf.constrain_bio(tag_names)
        self.num_tags, self.head = num_tags, head

    def forward(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Per-token tag scores (emissions) ``(B, T, K)``."""
        text = encode(self.text_encoder, "text", batch)  # sequence (B, T, d_txt)
        T = batch["token_mask"].shape[1]
        if text.sequence.shape[1] != T:  # a word-pooling encoder lost (or made up) a word
            raise ValueError(f"the text encoder gave {text.sequence.shape[1]} vectors per "
                             f"sentence, but token_mask has shape {tuple(batch['token_mask'].shape)}"
                             "; every word needs a vector (check word_ids)")
        if self.fusion is None:
            return self.emissions(text.sequence)  # (B, T, K)
        image = encode(self.image_encoder, "image", batch)  # pooled (B, d_img)
        present = presence(batch, self.fusion.modalities)
        if self.kind == "logits":
            experts = self._expert_logits(text.sequence, image.pooled)
            return self.fusion(experts, present)  # (B, T, K) log-probabilities
        image_per_token = image.pooled.unsqueeze(1).expand(-1, T, -1)  # (B, T, d_img)
        if self.kind == "sequence":  # every token attends over the image regions
            z = self.fusion({"text": text.sequence, "image": image.sequence}, present,
                            token_mask={"text": text.mask, "image": image.mask})  # (B, T, d)
        else:
            z = self.fusion({"text": text.sequence, "image": image_per_token}, present)
        return self.emissions(z)  # (B, T, K)

    def _expert_logits(self, h: Tensor, v: Tensor) -> dict[str, Tensor]:
        """Decision level: each expert's tag logits from its own modality only."""
        T = h.shape[1]
        per_sentence = self.experts["image"](v)  # (B, K): a tag prior from the image alone
        return {"text": self.experts["text"](h),  # (B, T, K), from h_t alone
                "image": per_sentence.unsqueeze(1).expand(-1, T, -1)}  # (B, T, K)

    def expert_logits(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """The two experts' tag logits of a decision-level tagger, before they are fused.

        Returns:
            ``{"text": (B, T, K), "image": (B, T, K)}``. The text expert reads only the
            token states, the image expert only the image vector (its ``K`` scores are the
            same at every token of a sentence).

        Raises:
            ValueError: if the tagger's fusion is not decision-level.
        """
        if self.kind != "logits":
            raise ValueError(f"expert_logits needs a decision-level tagger (fusion 'average', "
                             f"'weighted_vote' or 'product_of_experts'), got fusion "
                             f"{type(self.fusion).__name__}")
        text = encode(self.text_encoder, "text", batch)  # sequence (B, T, d_txt)
        image = encode(self.image_encoder, "image", batch)  # pooled (B, d_img)
        return self._expert_logits(text.sequence, image.pooled)

    def loss(self, batch: Mapping[str, Tensor]) -> Tensor:
        """Mean per-token cross-entropy (softmax head) or mean per-sentence CRF NLL.

        Tags equal to ``-100`` are ignored by the softmax head; the CRF needs a tag at every
        real token (it scores whole sequences).
        """
        return self._loss(self(batch), batch)

    def predict(self, batch: Mapping[str, Tensor]) -> list[list[int]]:
        """The best tag sequence of each sentence, as long as its real tokens."""
        return self._decode(self(batch), batch["token_mask"])

    def loss_and_predict(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, list[list[int]]]:
        """``(loss(batch), predict(batch))`` from one forward pass (what evaluation needs)."""
        emissions = self(batch)  # (B, T, K)
        return self._loss(emissions, batch), self._decode(emissions, batch["token_mask"])

    def _loss(self, emissions: Tensor, batch: Mapping[str, Tensor]) -> Tensor:
        tags = batch["tags"]  # (B, T)
        if self.crf is None:
            return F.cross_entropy(emissions.flatten(0, 1), tags.flatten(),
                                   ignore_index=IGNORE_INDEX)
        return self.crf(emissions, tags, batch["token_mask"])  # -log p(tags | x), mean over B

    def _decode(self, emissions: Tensor, mask: Tensor) -> list[list[int]]:
        """Best tags per sentence from emissions ``(B, T, K)`` and the token mask ``(B, T)``."""
        if self.crf is not None:
            return self.crf.decode(emissions, mask)  # Viterbi
        best = emissions.argmax(dim=-1).tolist()  # B lists of T ints
        return [row[:n] for row, n in zip(best, mask.sum(dim=1).tolist(), strict=True)]


def build_tagger(
    *,
    vocab_size: int,
    num_tags: int,
    char_vocab_size: int | None = None,
    fusion: str | None = None,
    head: str = "crf",
    encoder: str = "bilstm",
    image_encoder: str = "cnn",
    dim: int = 64,
    dropout: float = 0.0,
    tag_names: Sequence[str] | None = None,
    text_kwargs: Mapping[str, object] | None = None,
    image_kwargs: Mapping[str, object] | None = None,
    fusion_kwargs: Mapping[str, object] | None = None,
    **more_fusion_kwargs: object,
) -> MultimodalTagger:
    """Wire a (multimodal) tagger from short names.

    Args:
        vocab_size: number of word ids.
        num_tags: ``K``.
        char_vocab_size: number of character ids, for ``encoder="cnn-bilstm"``.
        fusion: ``None`` (text only) or a name of :data:`mmtutor.fusion.FUSIONS` that can
            give one vector per token: ``"concat"``, ``"weighted_sum"``, ``"gated"``,
            ``"film"``, ``"cross_attention"``, ``"low_rank"``, ``"tensor"``, or a
            decision-level ``"average"``, ``"weighted_vote"``, ``"product_of_experts"``.
        head: ``"crf"`` or ``"softmax"``.
        encoder: ``"bilstm"``, ``"cnn-bilstm"`` (with ``char_vocab_size``),
            ``"transformer"`` or ``"minilm"`` (pooled to words, ``word_pooling="first"``
            unless ``text_kwargs`` says otherwise; batches from ``SubwordTaggingDataset``).
        image_encoder: ``"cnn"`` or ``"resnet18"``.
        dim: size of the token vectors (BiLSTM: two directions of ``dim // 2``) and of the
            image vectors (``"cnn"``).
        dropout: dropout of the text encoder (a BiLSTM drops its input embeddings and its
            output states, Ma & Hovy 2016) and of the emission heads; a text-only BiLSTM
            tagger's head adds none, since its input is the states already dropped.
        tag_names: with ``head="crf"``, restrict the CRF to valid BIO sequences.
        text_kwargs: extra arguments of the text encoder.
        image_kwargs: extra arguments of the image encoder.
        fusion_kwargs: arguments of the fusion class as their own dict, each key checked
            against the class's signature (a config or checkpoint cannot reach
            ``image_kwargs`` and the other builder arguments).
        **more_fusion_kwargs: more fusion arguments, for short calls; checked the same way.

    Returns:
        A :class:`MultimodalTagger`.

    Examples:
        >>> tagger = build_tagger(vocab_size=100, num_tags=9, fusion="gated", dim=16)
        >>> type(tagger.fusion).__name__, tagger.head
        ('GatedFusion', 'crf')
    """
    text_kw = {"char_vocab_size": char_vocab_size} if encoder == "cnn-bilstm" else {}
    if encoder == "minilm":  # one vector per word, as the BiLSTM gives; no sub-word is cut
        text_kw = {"word_pooling": "first", "max_length": 512}
    if encoder in ("bilstm", "cnn-bilstm"):
        text_kw["dropout"] = dropout
    text = make_text_encoder(encoder, vocab_size=vocab_size, dim=dim,
                             **{**text_kw, **(text_kwargs or {})})
    image, fused = None, None
    if fusion is None and (fusion_kwargs or more_fusion_kwargs):
        raise ValueError(f"fusion arguments {sorted({**(fusion_kwargs or {}), **more_fusion_kwargs})} "
                         "were given but fusion is None (text only)")
    if fusion is not None:
        image = make_image_encoder(image_encoder, dim=dim, **(image_kwargs or {}))
        dims = {"text": text.output_dim, "image": image.output_dim}
        if fusion in FUSIONS and FUSIONS[fusion].input_kind == "logits":
            dims = dict.fromkeys(dims, num_tags)
        fused = build_fusion(fusion, dims, **fusion_arguments(fusion, fusion_kwargs,
                                                              more_fusion_kwargs))
    # A text-only BiLSTM's states are dropped by the encoder; a second mask on the same
    # vectors would keep only (1 - p)^2 of them (a quarter at p = 0.5), not 1 - p.
    head_dropout = 0.0 if fusion is None and encoder in ("bilstm", "cnn-bilstm") else dropout
    return MultimodalTagger(text, image, fused, num_tags=num_tags, head=head,
                            dropout=head_dropout, tag_names=tag_names)
