"""Image + caption classification data with known ceilings (Bayes rates) per modality.

``make_classification`` draws small RGB images of a shape (see :mod:`mmtutor.data.shapes`)
paired with short captions. The label ``y`` is one of ``C`` shape classes. How the label
reaches each modality is set by four knobs, after the taxonomy of interactions in Liang,
Zadeh & Morency, *Foundations and Trends in Multimodal Machine Learning* (ACM Computing
Surveys 2024): *uniqueness* (one modality alone carries it), *redundancy* (both carry it)
and *synergy* (only their combination does).

Generative model, per sample:

1. ``y ~ Uniform{0..C-1}``.
2. A hidden mode ``m`` with probabilities proportional to
   ``(image_unique, text_unique, redundancy, synergy)``:

   * ``image``: intended shape ``s0 = y``; the caption is uninformative;
   * ``text``: caption key class ``k0 = y``; the image is uninformative;
   * ``redundant``: ``s0 = k0 = y``;
   * ``synergy``: ``s0 = a`` and ``k0 = b`` uniform and ``y = (a + b) mod C`` -- the label is
     a relation between the two, so each modality alone is at chance.

   An *uninformative* modality shows no class at all by default (``uninformative="blank"``:
   a background-only image, a caption of filler words), so a model can tell that it is
   silent; with ``uninformative="random"`` it shows a uniformly random class instead (a
   distractor that contradicts the other modality, and caps even the joint ceiling).
3. Noise destroys information: with probability ``image_noise`` a drawn shape ``s`` is
   replaced by a uniformly random class, else ``s = s0``; likewise ``text_noise`` for the
   caption's key class ``k``. (A blank stays blank.)
4. The image shows shape ``s`` (random size, position, colours, Gaussian ``pixel_noise``:
   nuisances only). The caption has 6 to 14 tokens: filler words and, unless blank, one
   key word, a synonym of class ``k`` (e.g. circle: "circle", "disc", "round", "dot").
5. Missing modalities: with probability ``missing_image`` the image is absent (all zeros,
   ``image_present`` False), with probability ``missing_text`` the caption is (empty list,
   ``text_present`` False); never both for the same sample.

Ceilings: the exact table ``P(y, s, k)`` (:func:`joint_table`) and the Bayes oracles that
read it are in :mod:`mmtutor.data.classification_ceilings`. Each split records every
oracle's predictions (``split.oracle``); ``ceilings`` holds their accuracies on the test
split and ``expected_ceilings`` the exact population values. The captions' words and their
writer are in :mod:`mmtutor.data.classification_text`.

Each split is drawn from its own child of ``numpy.random.default_rng(seed)``, so the test
split does not change when ``n_train`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from mmtutor.data._checks import check_count, check_nonnegative, check_probability
from mmtutor.data._splits import GeneratedData, SplitBase
from mmtutor.data.classification_ceilings import (
    MODES,
    check_uninformative,
    expected_ceilings,
    joint_table,
    oracle_predictions,
    oracle_rules,
)
from mmtutor.data.classification_text import SYNONYMS, write_captions
from mmtutor.data.datasets import ClassificationDataset
from mmtutor.data.images import channel_stats
from mmtutor.data.shapes import SHAPES, draw_shapes
from mmtutor.data.vocab import Vocab

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MODES",
    "SYNONYMS",
    "ClassificationSplit",
    "ClassificationData",
    "joint_table",
    "make_classification",
]


@dataclass(eq=False, repr=False)
class ClassificationSplit(SplitBase):
    """One split of :func:`make_classification` (``N`` samples).

    Attributes:
        images: ``(N, 3, S, S)`` float32 in ``[0, 1]``; all zeros where the image is missing.
        captions: ``N`` token lists; empty where the text is missing.
        labels: ``(N,)`` int64 class indices.
        image_present: ``(N,)`` bool.
        text_present: ``(N,)`` bool.
        mode: ``(N,)`` int64 hidden mode, an index into :data:`MODES`.
        shape_class: ``(N,)`` int64 class of the drawn shape (after noise), -1 for a blank image.
        key_class: ``(N,)`` int64 class named by the caption's key word (after noise), -1
            for a caption without one.
        oracle: ``{"image", "text", "joint"}`` -> ``(N,)`` int64 Bayes oracle predictions.
    """

    images: np.ndarray
    captions: list[list[str]]
    labels: np.ndarray
    image_present: np.ndarray
    text_present: np.ndarray
    mode: np.ndarray
    shape_class: np.ndarray
    key_class: np.ndarray
    oracle: dict[str, np.ndarray]

    def oracle_accuracy(self) -> dict[str, float]:
        """Accuracy of each oracle on this split (``nan`` for an empty split)."""
        if len(self) == 0:
            return {k: float("nan") for k in self.oracle}
        return {k: float(np.mean(p == self.labels)) for k, p in self.oracle.items()}


@dataclass(eq=False, repr=False)
class ClassificationData(GeneratedData):
    """What :func:`make_classification` returns.

    Attributes:
        train, val, test: the splits.
        class_names: ``C`` names (shape names), ``class_names[y]``.
        ceilings: ``{"text", "image", "joint", "chance"}``: Bayes-oracle accuracies on the
            test split.
        expected_ceilings: the same, exact population values.
        table: ``(C, C + 1, C + 1)`` the joint distribution ``P(y, s, k)`` (present
            modalities; index ``C`` = no class shown).
        settings: the knob values used.
    """

    train: ClassificationSplit
    val: ClassificationSplit
    test: ClassificationSplit
    class_names: tuple[str, ...]
    ceilings: dict[str, float]
    expected_ceilings: dict[str, float]
    table: np.ndarray
    settings: dict[str, Any]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @cached_property
    def vocab(self) -> Vocab:
        """The word vocabulary of the training captions (built once)."""
        return Vocab.build(self.train.captions)

    def datasets(self, vocab: Vocab | None = None) -> tuple[ClassificationDataset, ...]:
        """Train, validation and test datasets, images normalised with the training statistics."""
        vocab = vocab or self.vocab
        mean, std = channel_stats(self.train.images, self.train.image_present)
        return tuple(
            ClassificationDataset(
                s.images,
                s.captions,
                s.labels,
                vocab,
                s.image_present,
                s.text_present,
                mean=mean,
                std=std,
            )
            for s in (self.train, self.val, self.test)
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per sample of every split, for pandas / seaborn analysis.

        Columns: ``split``, ``label``, ``label_name``, ``mode``, ``shape_class``, ``key_class``,
        ``image_present``, ``text_present``, ``caption``, ``n_tokens`` and
        ``oracle_{image,text,joint}``.
        """
        import pandas as pd

        frames = []
        for name in ("train", "val", "test"):
            s = getattr(self, name)
            frames.append(
                pd.DataFrame(
                    {
                        "split": name,
                        "label": s.labels,
                        "label_name": [self.class_names[y] for y in s.labels],
                        "mode": [MODES[m] for m in s.mode],
                        "shape_class": s.shape_class,
                        "key_class": s.key_class,
                        "image_present": s.image_present,
                        "text_present": s.text_present,
                        "caption": [" ".join(c) for c in s.captions],
                        "n_tokens": [len(c) for c in s.captions],
                        **{f"oracle_{k}": v for k, v in s.oracle.items()},
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)


def _split(
    rng: np.random.Generator, n: int, cfg: dict[str, Any], rules: dict[str, np.ndarray]
) -> ClassificationSplit:
    c = cfg["num_classes"]
    y = rng.integers(0, c, n)
    mode = rng.choice(len(MODES), size=n, p=cfg["weights"])
    a = rng.integers(0, c, n)  # the synergy's first factor (or a distractor shape)
    b = rng.integers(0, c, n)  # the synergy's second factor (or a distractor key)
    synergy = mode == MODES.index("synergy")
    y = np.where(synergy, (a + b) % c, y)
    if cfg["uninformative"] == "blank":  # -1: no class shown
        a = np.where(synergy, a, -1)
        b = np.where(synergy, b, -1)
    s0 = np.where(np.isin(mode, [MODES.index("image"), MODES.index("redundant")]), y, a)
    k0 = np.where(np.isin(mode, [MODES.index("text"), MODES.index("redundant")]), y, b)
    shape = np.where((rng.random(n) < cfg["image_noise"]) & (s0 >= 0), rng.integers(0, c, n), s0)
    key = np.where((rng.random(n) < cfg["text_noise"]) & (k0 >= 0), rng.integers(0, c, n), k0)
    u = rng.random(n)  # one draw decides both, so both are never missing together
    image_present = ~(u < cfg["missing_image"])
    text_present = ~((u >= cfg["missing_image"]) & (u < cfg["missing_image"] + cfg["missing_text"]))

    images = draw_shapes(
        shape, rng=rng, image_size=cfg["image_size"], pixel_noise=cfg["pixel_noise"]
    )
    images[~image_present] = 0.0
    captions = write_captions(key, text_present, cfg["class_names"], rng)

    return ClassificationSplit(
        images=images,
        captions=captions,
        labels=y.astype(np.int64),
        image_present=image_present,
        text_present=text_present,
        mode=mode.astype(np.int64),
        shape_class=shape.astype(np.int64),
        key_class=key.astype(np.int64),
        oracle=oracle_predictions(rules, shape, key, image_present, text_present),
    )


def make_classification(
    n_train: int = 2000,
    n_val: int = 500,
    n_test: int = 1000,
    *,
    image_unique: float = 0.3,
    text_unique: float = 0.3,
    redundancy: float = 0.2,
    synergy: float = 0.2,
    image_noise: float = 0.0,
    text_noise: float = 0.0,
    missing_image: float = 0.0,
    missing_text: float = 0.0,
    uninformative: str = "blank",
    pixel_noise: float = 0.1,
    image_size: int = 32,
    num_classes: int = 4,
    seed: int = 0,
) -> ClassificationData:
    """Generate image + caption classification data with known per-modality ceilings.

    See the module docstring for the generative model.

    Args:
        n_train, n_val, n_test: split sizes (``n_train, n_test >= 1``).
        image_unique: weight of samples whose label only the image shows.
        text_unique: weight of samples whose label only the caption says.
        redundancy: weight of samples where both show the label.
        synergy: weight of samples whose label is ``(shape + key) mod C``.
        image_noise: probability that the drawn shape is replaced by a random class.
        text_noise: probability that the caption's key word is replaced by a random class's.
        missing_image: probability that a sample has no image.
        missing_text: probability that a sample has no caption (``missing_image +
            missing_text <= 1``; never both missing).
        uninformative: what the modality that does not carry the label shows: ``"blank"``
            (no class: a background-only image, a caption without key word) or
            ``"random"`` (a random class, a distractor).
        pixel_noise: standard deviation of the Gaussian pixel noise (a nuisance only).
        image_size: image side ``S`` (>= 8).
        num_classes: ``C`` in ``[2, 6]``; the classes are the first ``C`` of :data:`SHAPES`.
        seed: the random seed; the same seed gives identical data.

    Returns:
        A :class:`ClassificationData` with the splits, ``ceilings`` and ``expected_ceilings``.

    Raises:
        ValueError: naming the argument that is out of range.

    Examples:
        >>> data = make_classification(200, 50, 100, seed=0)
        >>> sorted(data.ceilings)
        ['chance', 'image', 'joint', 'text']
        >>> train_dl, val_dl, test_dl = data.loaders(batch_size=32)
    """
    sizes = (
        check_count("n_train", n_train, 1),
        check_count("n_val", n_val, 0),
        check_count("n_test", n_test, 1),
    )
    knobs = {
        "image_unique": image_unique,
        "text_unique": text_unique,
        "redundancy": redundancy,
        "synergy": synergy,
    }
    weights = np.array([check_nonnegative(k, v) for k, v in knobs.items()])
    if weights.sum() <= 0:
        raise ValueError(f"at least one of {list(knobs)} must be > 0, got {knobs}")
    probs = {
        k: check_probability(k, v)
        for k, v in {
            "image_noise": image_noise,
            "text_noise": text_noise,
            "missing_image": missing_image,
            "missing_text": missing_text,
        }.items()
    }
    if probs["missing_image"] + probs["missing_text"] > 1.0:
        raise ValueError(
            f"missing_image + missing_text must be <= 1 (a sample never loses both), got "
            f"{missing_image} + {missing_text}"
        )
    c = check_count("num_classes", num_classes, 2)
    if c > len(SHAPES):
        raise ValueError(
            f"num_classes must be in [2, {len(SHAPES)}] (one shape per class), got {num_classes}"
        )
    check_count("seed", seed, 0)
    check_uninformative(uninformative)
    cfg: dict[str, Any] = {
        **probs,
        "uninformative": uninformative,
        "weights": weights / weights.sum(),
        "num_classes": c,
        "class_names": SHAPES[:c],
        "image_size": check_count("image_size", image_size, 8),
        "pixel_noise": check_nonnegative("pixel_noise", pixel_noise),
    }

    table = joint_table(
        tuple(weights),
        num_classes=c,
        image_noise=probs["image_noise"],
        text_noise=probs["text_noise"],
        uninformative=uninformative,
    )
    rules = oracle_rules(table)
    rngs = np.random.default_rng(seed).spawn(3)
    train, val, test = (_split(r, n, cfg, rules) for r, n in zip(rngs, sizes, strict=True))
    ceilings = {**test.oracle_accuracy(), "chance": 1.0 / c}
    ceilings = {k: ceilings[k] for k in ("text", "image", "joint", "chance")}
    settings = {
        **knobs,
        **probs,
        "uninformative": uninformative,
        "pixel_noise": pixel_noise,
        "image_size": image_size,
        "num_classes": c,
        "seed": seed,
        "n_train": sizes[0],
        "n_val": sizes[1],
        "n_test": sizes[2],
    }
    return ClassificationData(
        train=train,
        val=val,
        test=test,
        class_names=SHAPES[:c],
        ceilings=ceilings,
        expected_ceilings=expected_ceilings(table, probs["missing_image"], probs["missing_text"]),
        table=table,
        settings=settings,
    )
