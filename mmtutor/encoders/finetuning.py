"""How much of a pretrained text encoder trains: the settings, checked in one place.

A pretrained encoder is used frozen (a fixed feature extractor), with its top layers
trained, or with every weight trained (fine-tuning, Devlin et al. 2019). The task configs
(``NERConfig``) hold the choice; :func:`check_finetuning` refuses settings that would be
silently ignored and :func:`finetuning_kwargs` turns the choice into
:class:`~mmtutor.encoders.PretrainedTextEncoder` arguments.

References:
    Devlin, J., Chang, M.-W., Lee, K. & Toutanova, K. (2019). BERT: Pre-training of Deep
    Bidirectional Transformers for Language Understanding. NAACL.
"""

from __future__ import annotations

__all__ = ["FINETUNING", "DEFAULT_TOP_LAYERS", "DEFAULT_ENCODER_LR", "check_finetuning",
           "finetuning_kwargs"]

FINETUNING = ("frozen", "top", "all")
"""What of the pretrained encoder trains: nothing, its top layers, or every weight."""
DEFAULT_TOP_LAYERS = 2
DEFAULT_ENCODER_LR = 5e-5
"""Learning rate of fine-tuned pretrained weights: BERT's fine-tuning range is 2e-5 to 5e-5
(Devlin et al., 2019, appendix A.3); the 1e-3 steps that suit a fresh head would overwrite
what pretraining learned."""


def check_finetuning(encoder: str, *, word_pooling: str, finetune: str,
                     top_layers: int | None, encoder_lr: float | None) -> None:
    """Refuse pretrained-encoder settings that would be silently ignored (one rule, one place).

    Args:
        encoder: the text encoder's name; only ``"minilm"`` is pretrained.
        word_pooling: ``"first"`` (the default) or ``"mean"``.
        finetune: one of :data:`FINETUNING`.
        top_layers: layers trained with ``finetune="top"`` (``None``: 2).
        encoder_lr: learning rate of the trained pretrained weights (``None``: 5e-5).

    Raises:
        ValueError: naming the field, for a setting the chosen encoder does not use.
    """
    if encoder != "minilm":
        for name, value, default in (("word_pooling", word_pooling, "first"),
                                     ("finetune", finetune, "frozen")):
            if value != default:
                raise ValueError(f"{name}={value!r} needs the pretrained encoder "
                                 f"(encoder='minilm'), got encoder {encoder!r}")
    if top_layers is not None and finetune != "top":
        raise ValueError(f"top_layers={top_layers} needs finetune='top' (train the top layers "
                         f"of encoder='minilm'), got finetune={finetune!r}, encoder={encoder!r}")
    if encoder_lr is not None and finetune == "frozen":
        raise ValueError(f"encoder_lr={encoder_lr} needs finetune='top' or 'all' with "
                         f"encoder='minilm' (a frozen encoder trains nothing), got "
                         f"finetune='frozen', encoder={encoder!r}")


def finetuning_kwargs(finetune: str, top_layers: int | None) -> dict[str, object]:
    """:class:`PretrainedTextEncoder` arguments for a :data:`FINETUNING` choice.

    Examples:
        >>> finetuning_kwargs("top", None)
        {'freeze': False, 'top_layers': 2}
    """
    if finetune not in FINETUNING:
        raise ValueError(f"finetune must be one of {FINETUNING}, got {finetune!r}")
    if finetune == "top":
        return {"freeze": False, "top_layers": DEFAULT_TOP_LAYERS if top_layers is None
                else top_layers}
    return {"freeze": finetune == "frozen", "top_layers": None}
