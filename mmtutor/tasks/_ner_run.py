"""The result of :func:`mmtutor.tasks.train_ner`: a trained tagger and everything it needs.

:class:`NERRun` predicts IOB2 tags for new sentences (with their images for a multimodal
run), scores them, and saves to / loads from one checkpoint file (weights, vocabularies,
tag names, image statistics, config); :func:`build_ner_model` turns an
:class:`~mmtutor.tasks.NERConfig` into its untrained tagger, for training and for loading.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mmtutor.data import CharVocab, ImageSource, TaggedSentence, TaggingDataset, TagMap, Vocab
from mmtutor.encoders import finetuning_kwargs, word_embedding, word_vector_kwargs
from mmtutor.models import MultimodalTagger, build_tagger
from mmtutor.tasks._evaluation import NEREvaluation
from mmtutor.tasks._fitted import Images, check_images
from mmtutor.tasks._ner_data import NERConfig, SubwordTaggingDataset, check_sentences, cpu_threads
from mmtutor.tasks._run import (
    TrainedRun,
    history_records,
    load_run,
    load_weights,
    run_device,
    save_run,
    vocab_from_table,
    vocab_table,
)
from mmtutor.train import predict

CHECKPOINT_FORMAT = "mmtutor-ner/1"


@dataclass(eq=False)
class NERRun(TrainedRun):
    """A trained tagger with everything needed to use it again.

    Attributes:
        config: the :class:`NERConfig`.
        model: the :class:`~mmtutor.models.MultimodalTagger`.
        tag_names: tag strings by index (``O`` first).
        vocab, char_vocab: word and character vocabularies (``None`` for MiniLM); with word
            vectors, ``vocab`` also holds the dev and test words they cover
            (:func:`~mmtutor.tasks._fitted.word_vocab`).
        image_mean, image_std: per-channel statistics the images are normalised with
            (``None`` for a text-only run).
        dev_f1: the best development entity F1 (the selected epoch's).
        test: the test-split :class:`NEREvaluation`, if a test split was given.
        history, sizes, train_seconds, word_vector_coverage: see
            :class:`~mmtutor.tasks._run.TrainedRun` (keyword-only).
    """

    config: NERConfig
    model: MultimodalTagger
    tag_names: list[str]
    vocab: Vocab | None = None
    char_vocab: CharVocab | None = None
    image_mean: tuple[float, ...] | None = None
    image_std: tuple[float, ...] | None = None
    dev_f1: float | None = None
    test: NEREvaluation | None = None

    @property
    def multimodal(self) -> bool:
        """True if the tagger also reads an image."""
        return self.config.fusion is not None

    # -- data -----------------------------------------------------------------------------
    def dataset(self, sentences: Sequence[TaggedSentence], images: Images = None, *,
                train: bool = False,
                decoded: Mapping[int, torch.Tensor] | None = None) -> Dataset:
        """The dataset this run's model reads: words, or sub-words with word tags for MiniLM.

        Args:
            sentences: :class:`~mmtutor.data.TaggedSentence` objects.
            images: ``(N, 3, H, W)`` floats in ``[0, 1]`` or ``N`` paths (``None`` = missing);
                ignored by a text-only run. Files are decoded and resized once and kept.
            train: the training set: its singletons are read as ``<unk>`` with probability
                ``config.unk_replace`` (word-level encoders).
            decoded: image files already read, ``{index: (3, S, S) uint8}`` (from
                :func:`image_stats`'s ``keep``), so the word-level dataset decodes none twice.
        """
        images = check_images("images", images, len(sentences)) if self.multimodal else None
        mean = self.image_mean if images is not None else None
        std = self.image_std if images is not None else None
        size = self.config.image_size
        if isinstance(images, (np.ndarray, torch.Tensor)):
            size = int(images.shape[-1])
        if self.config.encoder == "minilm":
            source = ImageSource(images, len(sentences), mean=mean, std=std, image_size=size)
            return SubwordTaggingDataset(sentences, self.model.text_encoder,
                                          TagMap(self.tag_names), source)
        return TaggingDataset(sentences, self.vocab, self.char_vocab, TagMap(self.tag_names),
                              images, mean=mean, std=std, image_size=size, cache_images=True,
                              decoded_images=decoded if images is not None else None,
                              unk_replace=self.config.unk_replace if train else 0.0)

    def _loader(self, dataset: Dataset, batch_size: int | None = None) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size or 2 * self.config.batch_size,
                          shuffle=False, collate_fn=dataset.collate)

    # -- use ------------------------------------------------------------------------------
    def predict(self, sentences: Sequence[TaggedSentence] | Sequence[Sequence[str]],
                images: Images = None, *, batch_size: int | None = None) -> list[list[str]]:
        """Predicted IOB2 tags, one list per sentence (as long as the sentence).

        Args:
            sentences: tagged sentences (their tags are not read) or plain token lists.
            images: as in :meth:`dataset`; required for a multimodal run (``None`` entries
                in a path list mark missing images, which the fusion handles).
            batch_size: prediction batch size (default ``2 * config.batch_size``).
        """
        sentences = check_sentences("sentences", sentences, need_tags=False)
        if self.multimodal and images is None:
            raise ValueError(f"this run fuses an image (fusion={self.config.fusion!r}); pass "
                             "images=... (an array or a list of paths, None for a missing image)")
        if not sentences:
            return []
        dataset = self.dataset(sentences, images)
        with cpu_threads(self.config, self.device):
            indices = predict(self.model, self._loader(dataset, batch_size), device=self.device)
        return [[self.tag_names[k] for k in row] for row in indices]  # one tag per word

    def evaluate(self, sentences: Sequence[TaggedSentence], images: Images = None) -> NEREvaluation:
        """Predict and score: seqeval entity report and token-level report (``O`` included)."""
        sentences = check_sentences("sentences", sentences)
        return NEREvaluation.from_tags([s.tags for s in sentences], self.predict(sentences, images))

    def metrics(self) -> dict[str, Any]:
        """A JSON-able summary: config, tags, split sizes, dev F1, test scores, history."""
        return {
            "config": self.config.to_dict(),
            "tag_names": list(self.tag_names),
            "sizes": dict(self.sizes),
            "dev_entity_f1_strict": self.dev_f1,
            "train_seconds": self.train_seconds,
            "word_vector_coverage": self.word_vector_coverage,
            "test": None if self.test is None else self.test.to_dict(),
            "history": history_records(self.history),
        }

    # -- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write one checkpoint file: weights, vocabularies, tag names, image stats, config.

        :meth:`load` reads it back with ``torch.load(weights_only=True)``; the device is
        stored as ``"auto"``. A MiniLM run stores only the MiniLM weights it trained
        (none when frozen): :meth:`load` reads the others from the installed model folder.

        Returns:
            The path written.
        """
        return save_run(
            path, self.model, kind=CHECKPOINT_FORMAT, config=self.config,
            tag_names=list(self.tag_names), vocab=vocab_table(self.vocab),
            char_vocab=vocab_table(self.char_vocab),
            image_mean=None if self.image_mean is None else list(self.image_mean),
            image_std=None if self.image_std is None else list(self.image_std),
            dev_f1=self.dev_f1, sizes=dict(self.sizes))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str | None = None) -> NERRun:
        """Read a checkpoint written by :meth:`save` (safely: ``weights_only=True``).

        Args:
            path: the file.
            device: where to put the model (default ``None``: ``$MMTUTOR_DEVICE``, else
                ``"auto"``); the device stored in the file is never used, so a run
                trained on a GPU loads on a CPU.

        Raises:
            ValueError: naming the file, if it is not an NER checkpoint of this package, is
                corrupt, holds pickled objects, has unknown or ill-typed metadata (e.g.
                fusion arguments the fusion does not take) or weights that do not fit.
        """
        table_hint = dict[str, Any] | None
        state, config, meta = load_run(
            path, kind=CHECKPOINT_FORMAT, config_cls=NERConfig,
            meta={"tag_names": list[str], "vocab": table_hint, "char_vocab": table_hint,
                  "image_mean": list[float] | None, "image_std": list[float] | None,
                  "dev_f1": float | None, "sizes": dict[str, int]})
        config.device = device
        vocab = vocab_from_table(path, Vocab, meta["vocab"])
        char_vocab = vocab_from_table(path, CharVocab, meta["char_vocab"])
        try:
            model = build_ner_model(config, meta["tag_names"], vocab, char_vocab)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: its config does not build a tagger ({err})") from None
        load_weights(path, model, state)
        model.to(run_device(config.device)).eval()
        mean, std = meta["image_mean"], meta["image_std"]
        return cls(config, model, list(meta["tag_names"]), vocab, char_vocab,
                   None if mean is None else tuple(mean), None if std is None else tuple(std),
                   dev_f1=meta["dev_f1"], sizes=meta["sizes"])


def _text_kwargs(config: NERConfig) -> dict[str, object]:
    """The text encoder's arguments the config sets: word vectors, or MiniLM's fine-tuning."""
    if config.encoder == "minilm":
        return {"word_pooling": config.word_pooling,
                **finetuning_kwargs(config.finetune, config.top_layers)}
    return word_vector_kwargs(config.encoder, config.word_vectors, config.dim)


def build_ner_model(config: NERConfig, tag_names: list[str], vocab: Vocab | None,
                 char_vocab: CharVocab | None) -> MultimodalTagger:
    """The tagger of ``config``; pretrained word vectors are copied in by :func:`train_ner`
    only (a checkpoint holds them in its weights)."""
    model = build_tagger(
        vocab_size=len(vocab) if vocab is not None else 2,
        num_tags=len(tag_names),
        char_vocab_size=len(char_vocab) if char_vocab is not None else None,
        fusion=config.fusion,
        head=config.head,
        encoder=config.encoder,
        image_encoder=config.image_encoder,
        dim=config.dim,
        dropout=config.dropout,
        tag_names=tag_names if config.head == "crf" else None,
        fusion_kwargs=config.fusion_kwargs if config.fusion is not None else None,
        text_kwargs=_text_kwargs(config),
    )
    if config.freeze_word_vectors:
        word_embedding(model.text_encoder).weight.requires_grad_(False)
    if model.image_encoder is not None:
        # channels-last convolution weights make the convolutions' outputs channels-last
        # too, a layout oneDNN's CPU kernels run faster: gated fusion, 2,000 generated
        # sentences, 1 CPU thread: 510 -> 591 training sentences/s
        model.image_encoder.to(memory_format=torch.channels_last)
    return model
