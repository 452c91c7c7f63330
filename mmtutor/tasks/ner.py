"""Named entity recognition, text-only or with one image per sentence, in one call.

:func:`train_ner` is the whole pipeline the NER chapter and ``python -m mmtutor ner`` share:

1. tables: the word and character vocabularies come from the *training* sentences; with
   pretrained word vectors, the dev and test words that the table holds are added (their
   text, never their tags), as the code released with Lample et al. 2016 does, so a test
   word unseen in training keeps its vector instead of becoming ``<unk>``. The tag map
   holds every tag of the given splits (the label set, so that a type seen only in the
   test file cannot crash the run), ``O`` first;
2. datasets: one :class:`~mmtutor.data.TaggingDataset` per split (words, characters, tags,
   images normalised with the training images' statistics), or, for the pretrained MiniLM
   encoder, sub-word datasets that keep word-level tags: MiniLM pools each word's sub-word
   states to one vector (its first piece, as BERT taggers do, Devlin et al. 2019), so the
   head, the CRF and the fusion see words exactly as with the BiLSTM;
3. the tagger: :func:`mmtutor.models.build_tagger` (BiLSTM, optionally with the character
   CNN of Ma & Hovy 2016; softmax or CRF head, Lample et al. 2016; a fusion from
   :data:`mmtutor.fusion.FUSIONS` when there are images);
4. training: :func:`mmtutor.train.fit`, keeping the epoch with the best *entity-level* F1
   on the development split (seqeval, strict IOB2);
5. evaluation on the test split: entity F1 in both seqeval modes (conlleval's, which
   published CoNLL / Twitter results report, and strict IOB2) and, beside it, the
   token-level report with ``O`` counted (:func:`mmtutor.metrics.token_report`), which is
   always higher.

The result, a :class:`NERRun` (:mod:`mmtutor.tasks._ner_run`), predicts tags for new sentences,
scores them, and saves to / loads from one checkpoint file (weights, vocabularies, tag names,
image statistics, config).

References:
    - Lample et al., "Neural Architectures for Named Entity Recognition", NAACL 2016.
    - Ma and Hovy, "End-to-end Sequence Labeling via Bi-directional LSTM-CNNs-CRF", ACL 2016.
    - Zhang et al., "Adaptive Co-attention Network for Named Entity Recognition in Tweets",
      AAAI 2018 (the Twitter-2015 data format).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
import torch

from mmtutor.data import CharVocab, TaggedSentence, TagMap, make_loaders
from mmtutor.encoders import DEFAULT_ENCODER_LR, init_word_embedding
from mmtutor.tasks._evaluation import NEREvaluation
from mmtutor.tasks._fitted import Images, check_images, image_stats, word_vocab
from mmtutor.tasks._ner_data import (
    NER_ENCODERS,
    NER_FUSIONS,
    NER_HEADS,
    NERConfig,
    check_sentences,
    cpu_threads,
    image_paths,
    write_conll,
)
from mmtutor.tasks._ner_run import NERRun, build_ner_model
from mmtutor.tasks._run import encoder_param_groups, run_device
from mmtutor.train import fit
from mmtutor.utils import seed_everything

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
            :func:`image_paths`). Every split is normalised with the per-channel statistics
            of the training images (arrays, or files resized to ``config.image_size``).
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
    # "auto" word vectors are decided here, and the run (and its checkpoint) keeps the answer
    config = dataclasses.replace(config, word_vectors=config.resolved_word_vectors())
    splits = {"train": check_sentences("train", train)}
    if dev is not None:
        splits["dev"] = check_sentences("dev", dev)
    if test is not None:
        splits["test"] = check_sentences("test", test)
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
            split_images[name] = check_images(f"images for {name}", value, len(splits[name]))
    elif config.fusion is not None:
        raise ValueError(f"fusion={config.fusion!r} needs images; pass images=(train, dev, test) "
                         "or set fusion=None for a text-only tagger")
    device = run_device(config.device)  # fail early on an unavailable device

    tag_map = TagMap.build(s.tags for part in splits.values() for s in part)
    vocab = char_vocab = None
    if config.encoder != "minilm":
        vocab = word_vocab((s.tokens for s in splits["train"]),
                           (s.tokens for k, v in splits.items() if k != "train" for s in v),
                           config.word_vectors)
        char_vocab = CharVocab.build(s.tokens for s in splits["train"])
    mean = std = None
    decoded: dict[int, torch.Tensor] = {}  # training image files, read once for both uses
    if config.fusion is not None:  # fitted on the training images (arrays or files)
        mean, std = image_stats(split_images["train"], image_size=config.image_size,
                                keep=decoded)
    seed_everything(config.seed)  # the same seed gives the same initial weights
    model = build_ner_model(config, tag_map.tags, vocab, char_vocab)
    run = NERRun(config, model, tag_map.tags, vocab, char_vocab, mean, std,
                 sizes={k: len(v) for k, v in splits.items()})
    if config.word_vectors is not None:
        run.word_vector_coverage = init_word_embedding(
            model.text_encoder, config.word_vectors, vocab, freeze=config.freeze_word_vectors)
    train_ds = run.dataset(splits["train"], split_images["train"], train=True, decoded=decoded)
    dev_ds = run.dataset(splits["dev"], split_images["dev"]) if "dev" in splits else None
    loaders = make_loaders(train_ds, dev_ds, batch_size=config.batch_size, seed=config.seed,
                           bucket_by_length=hasattr(train_ds, "lengths"))
    encoder_lr = None  # fine-tuned MiniLM weights get their own (smaller) learning rate
    if config.finetune != "frozen":
        encoder_lr = {"text": config.encoder_lr or DEFAULT_ENCODER_LR}
    # fit anneals every group from its own lr. The fused step updates all weights in one
    # kernel instead of a loop over them: gated fusion on 2,000 generated sentences, 2-core
    # CPU, 3 epochs: 708 -> 754 training sentences/s (text only: 1,351 -> 1,390)
    optimizer = torch.optim.AdamW(encoder_param_groups(model, config.lr, encoder_lr),
                                  weight_decay=0.0, fused=device.type in ("cpu", "cuda"))
    start = time.perf_counter()
    with cpu_threads(config, device):
        run.history = fit(model, loaders.train, loaders.val, epochs=config.epochs, lr=config.lr,
                          optimizer=optimizer, metric="f1", tag_names=tag_map.tags,
                          patience=config.patience if "dev" in splits else None,
                          clip_grad_norm=config.clip_grad_norm,
                          device=device, seed=config.seed, progress=progress)
    run.train_seconds = time.perf_counter() - start
    if "val_f1" in run.history:
        run.dev_f1 = float(run.history["val_f1"].max())
    if "test" in splits:
        run.test = run.evaluate(splits["test"], split_images["test"])
    return run
