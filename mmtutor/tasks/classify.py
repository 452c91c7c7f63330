"""Image + text classification in one call: the twin of :mod:`mmtutor.tasks.ner`.

:func:`train_classifier` is the pipeline the book's classification chapters, the experiment
grid (:func:`mmtutor.experiments.run_grid`) and ``python -m mmtutor classify`` share:

1. inputs: a JSONL manifest read with :func:`~mmtutor.data.read_manifest` (image *files*;
   an absent ``text`` or ``image`` key is a missing modality), or a generated split of
   :func:`~mmtutor.data.make_classification` (image *arrays*);
2. tables: the class list comes from the *training* labels (a dev or test label outside it is
   an error naming the file and line), the word vocabulary from the training texts, the
   image statistics (per-channel mean and standard deviation) from the training images;
3. the model: :func:`~mmtutor.models.build_classifier` (encoders -> a fusion of
   :data:`~mmtutor.fusion.FUSIONS` -> head) or, with ``modality="text"``/``"image"``,
   the unimodal baseline :func:`~mmtutor.models.build_unimodal_classifier`;
4. training: :func:`mmtutor.train.fit` after :func:`~mmtutor.utils.seed_everything`,
   keeping the epoch with the best development score;
5. evaluation: accuracy, macro-F1 and the per-class report (scikit-learn).

The result, a :class:`ClassifierRun`, predicts, scores, and saves to / loads from one
checkpoint file (weights, vocabulary, classes, image statistics, config; read back with
``torch.load(weights_only=True)``, nothing downloaded or executed).

References:
    - Baltrušaitis, Ahuja and Morency, "Multimodal Machine Learning: A Survey and Taxonomy",
      TPAMI 2019 (the fusion levels).
    - Kiela et al., "Supervised Multimodal Bitransformers for Classifying Images and Text",
      2019 (image + text classification as a task).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from mmtutor.data import (
    ClassificationData,
    ClassificationDataset,
    ClassificationSplit,
    ManifestExample,
    Vocab,
    make_loaders,
)
from mmtutor.encoders import init_word_embedding
from mmtutor.tasks._classify_config import (
    CLASSIFY_MODALITIES,
    CLASSIFY_TEXT_ENCODERS,
    ClassifyConfig,
    build_model,
    text_encoder_of,
)
from mmtutor.tasks._evaluation import ClassifyEvaluation
from mmtutor.tasks._fitted import image_stats, word_vocab
from mmtutor.tasks._inputs import Examples, classes_of, encode_labels, examples
from mmtutor.tasks._run import (
    TrainedRun,
    encoder_param_groups,
    history_records,
    load_run,
    load_weights,
    run_device,
    save_run,
    vocab_from_table,
    vocab_table,
)
from mmtutor.train import fit, predict_proba
from mmtutor.utils import seed_everything

__all__ = ["CLASSIFY_TEXT_ENCODERS", "CLASSIFY_MODALITIES", "ClassifyConfig",
           "ClassifyEvaluation", "ClassifierRun", "train_classifier", "encoder_param_groups"]

CHECKPOINT_FORMAT = "mmtutor-classify/1"

Inputs = ClassificationSplit | Sequence[ManifestExample]


@dataclass(eq=False)
class ClassifierRun(TrainedRun):
    """A trained classifier with everything needed to use it again.

    Attributes:
        config: the :class:`ClassifyConfig`.
        model: the classifier (``MultimodalClassifier`` or ``UnimodalClassifier``).
        classes: class labels in index order (names, or indices for a manifest of integers).
        vocab: the word vocabulary of the training texts (with word vectors, then the dev and
            test words they cover: :func:`~mmtutor.tasks._fitted.word_vocab`).
        image_mean, image_std: the training images' per-channel statistics.
        dev_score: the best development score (``config.metric``), if a dev split was given.
        test: the test-split :class:`ClassifyEvaluation`, if a test split was given.
        history, sizes, train_seconds, word_vector_coverage: see
            :class:`~mmtutor.tasks._run.TrainedRun` (keyword-only).
    """

    config: ClassifyConfig
    model: nn.Module
    classes: list[str | int]
    vocab: Vocab
    image_mean: tuple[float, ...]
    image_std: tuple[float, ...]
    dev_score: float | None = None
    test: ClassifyEvaluation | None = None

    def dataset(self, inputs: Inputs, labels: np.ndarray | None = None) -> ClassificationDataset:
        """The dataset this run's model reads (images normalised with the training statistics).

        Args:
            inputs: a generated split or a list of manifest examples.
            labels: ``(N,)`` class indices (default: zeros, for prediction).
        """
        split = examples("inputs", inputs) if not isinstance(inputs, Examples) else inputs
        n = len(split.captions)
        images = None if self.config.modality == "text" else split.images  # no files to read
        size = int(images.shape[-1]) if isinstance(images, np.ndarray) else self.config.image_size
        return ClassificationDataset(
            images, split.captions, np.zeros(n, dtype=np.int64) if labels is None else labels,
            self.vocab, None if images is None else split.image_present, split.text_present,
            mean=self.image_mean, std=self.image_std, image_size=size)

    def _loader(self, inputs: Inputs, batch_size: int | None) -> DataLoader:
        ds = self.dataset(inputs)
        return DataLoader(ds, batch_size=batch_size or 2 * self.config.batch_size, shuffle=False,
                          collate_fn=ds.collate)

    def predict_proba(self, inputs: Inputs, *, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities ``(N, C)``, in the order of ``inputs``."""
        return predict_proba(self.model, self._loader(inputs, batch_size), device=self.device)

    def predict(self, inputs: Inputs, *, batch_size: int | None = None) -> np.ndarray:
        """Predicted class indices ``(N,)`` (``run.classes[i]`` is the label)."""
        return self.predict_proba(inputs, batch_size=batch_size).argmax(axis=1)

    def predict_labels(self, inputs: Inputs, *, batch_size: int | None = None) -> list[str | int]:
        """Predicted class labels (names, or the manifest's integers)."""
        return [self.classes[i] for i in self.predict(inputs, batch_size=batch_size)]

    def evaluate(self, inputs: Inputs, *, batch_size: int | None = None) -> ClassifyEvaluation:
        """Predict and score: accuracy, macro-F1 and the per-class report.

        Raises:
            ValueError: ``file:line`` of a label that is not one of :attr:`classes`.
        """
        split = examples("inputs", inputs)
        gold = encode_labels(split, self.classes)
        return ClassifyEvaluation.from_indices(gold, self.predict(inputs, batch_size=batch_size),
                                               self.classes)

    def metrics(self) -> dict[str, Any]:
        """A JSON-able summary: config, classes, sizes, dev score, test scores, history."""
        return {"config": self.config.to_dict(), "classes": list(self.classes),
                "sizes": dict(self.sizes), f"dev_{self.config.metric}": self.dev_score,
                "train_seconds": self.train_seconds,
                "word_vector_coverage": self.word_vector_coverage,
                "test": None if self.test is None else self.test.to_dict(),
                "history": history_records(self.history)}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write one checkpoint: weights, vocabulary, classes, image statistics, config.

        Returns:
            The path written.
        """
        return save_run(path, self.model, kind=CHECKPOINT_FORMAT, config=self.config,
                        classes=list(self.classes),
                        vocab=vocab_table(self.vocab),
                        image_mean=list(self.image_mean), image_std=list(self.image_std),
                        dev_score=self.dev_score, sizes=dict(self.sizes))

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str | None = None) -> ClassifierRun:
        """Read a checkpoint written by :meth:`save` (``torch.load(weights_only=True)``).

        Args:
            path: the file.
            device: where to run (default ``"auto"``: the stored device is never trusted,
                so a run trained on a GPU loads on a CPU).

        Raises:
            ValueError: naming the file, if it is not a classification checkpoint, is
                corrupt, holds pickled objects, has unknown or ill-typed metadata (e.g.
                fusion arguments the fusion does not take), or weights that do not fit.
        """
        state, config, meta = load_run(path, kind=CHECKPOINT_FORMAT, config_cls=ClassifyConfig,
                                       meta={"classes": list[str | int], "vocab": dict[str, Any],
                                             "image_mean": list[float], "image_std": list[float],
                                             "dev_score": float | None, "sizes": dict[str, int]})
        config.device = "auto" if device is None else device
        if len(meta["image_mean"]) != 3 or len(meta["image_std"]) != 3 or not meta["classes"]:
            raise ValueError(f"{path}: image statistics need 3 channels and classes one entry")
        vocab = vocab_from_table(path, Vocab, meta["vocab"])
        try:
            model = build_model(config, len(vocab), len(meta["classes"]))
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: its config does not build a model ({err})") from None
        load_weights(path, model, state)
        model.to(run_device(config.device)).eval()
        return cls(config, model, list(meta["classes"]), vocab, tuple(meta["image_mean"]),
                   tuple(meta["image_std"]), dev_score=meta["dev_score"], sizes=meta["sizes"])


def train_classifier(
    train: Inputs | ClassificationData,
    dev: Inputs | None = None,
    test: Inputs | None = None,
    *,
    config: ClassifyConfig | None = None,
    class_names: Sequence[str] | None = None,
    progress: bool = False,
) -> ClassifierRun:
    """Train an image + text (or unimodal) classifier, select its epoch on dev, score on test.

    Args:
        train: the training split: a list of :class:`~mmtutor.data.ManifestExample` (from
            :func:`~mmtutor.data.read_manifest`), a generated
            :class:`~mmtutor.data.ClassificationSplit`, or a whole
            :class:`~mmtutor.data.ClassificationData` (then ``dev``/``test`` default to its
            ``val``/``test`` splits and ``class_names`` to its own).
        dev: the development split (same kind), or ``None`` to keep the last epoch.
        test: the test split, or ``None``.
        config: the :class:`ClassifyConfig` (default: concat fusion, bag of words + CNN).
        class_names: names of the classes of a generated split (its labels are indices);
            default ``"0"``, ``"1"``... A manifest's classes are its sorted training labels.
        progress: show a tqdm bar over the epochs.

    Returns:
        A :class:`ClassifierRun` (``run.test`` holds the test scores when ``test`` is given).

    Raises:
        ValueError: for a split of the wrong kind, a dev/test label that is not a training
            class (naming ``file:line``), or any invalid setting.

    Examples:
        >>> data = make_classification(300, 100, 200, image_size=16, seed=0)  # doctest: +SKIP
        >>> run = train_classifier(data, config=ClassifyConfig(fusion="gated", epochs=5))  # doctest: +SKIP
        >>> run.test.accuracy, run.test.macro_f1  # doctest: +SKIP
    """
    config = ClassifyConfig() if config is None else config
    if not isinstance(config, ClassifyConfig):
        raise ValueError(f"config must be a ClassifyConfig, got {type(config).__name__}")
    if isinstance(train, ClassificationData):
        dev = train.val if dev is None and len(train.val) else dev
        test = train.test if test is None else test
        class_names = train.class_names if class_names is None else class_names
        train = train.train
    splits = {"train": examples("train", train)}
    if not splits["train"].captions:
        raise ValueError("train is empty; expected at least one example")
    for name, value in (("dev", dev), ("test", test)):
        if value is not None:
            splits[name] = examples(name, value)
    device = run_device(config.device)  # fail early on an unavailable device
    first = splits["train"]
    if class_names is not None:
        classes: list[str | int] = [str(c) for c in class_names]
    elif all(isinstance(y, int) for y in first.labels) and isinstance(train, ClassificationSplit):
        classes = [str(i) for i in range(max(max(s.labels) for s in splits.values()) + 1)]
    else:
        classes = classes_of(first)
    labels = {name: encode_labels(split, classes) for name, split in splits.items()}
    vocab = word_vocab(first.captions, (c for k, v in splits.items() if k != "train"
                                         for c in v.captions), config.word_vectors)
    mean, std = image_stats(None if config.modality == "text" else first.images,
                            first.image_present, image_size=config.image_size)
    seed_everything(config.seed)  # the same seed gives the same initial weights
    model = build_model(config, len(vocab), len(classes))
    run = ClassifierRun(config, model, classes, vocab, mean, std,
                        sizes={k: len(v.captions) for k, v in splits.items()})
    if config.word_vectors is not None:
        run.word_vector_coverage = init_word_embedding(
            text_encoder_of(model), config.word_vectors, vocab, freeze=config.freeze_word_vectors)
    datasets = {k: run.dataset(v, labels[k]) for k, v in splits.items() if k != "test"}
    loaders = make_loaders(datasets["train"], datasets.get("dev"), batch_size=config.batch_size,
                           seed=config.seed)
    optimizer = torch.optim.AdamW(encoder_param_groups(model, config.lr, config.encoder_lr),
                                  weight_decay=config.weight_decay)
    start = time.perf_counter()
    run.history = fit(model, loaders.train, loaders.val, epochs=config.epochs, lr=config.lr,
                      optimizer=optimizer, metric=config.metric, patience=config.patience,
                      device=device, seed=config.seed, progress=progress)
    run.train_seconds = time.perf_counter() - start
    column = f"val_{config.metric}"
    if column in run.history:
        run.dev_score = float(run.history[column].max())
    model.eval()
    if "test" in splits:
        run.test = ClassifyEvaluation.from_indices(labels["test"], run.predict(splits["test"]),
                                                   classes)
    return run
