"""Tweet-like multimodal NER data where an attached image often disambiguates a name.

``make_mner`` writes short tweets (filler words, @mentions, hashtags, emoji) with one to
three entities of types PER, LOC, ORG and MISC, tagged in IOB2, and draws one image per
tweet. It mirrors what makes multimodal NER on Twitter-2015/2017 (Zhang et al., AAAI 2018;
Lu et al., ACL 2018) worth the image: some names are *ambiguous* from the text alone.

Generative model, per tweet (steps 1 and 2, the words, are in :mod:`mmtutor.data.mner_text`):

1. The number of entities is uniform in {1, 2, 3}. With probability ``ambiguous_rate``
   one of them (at a random position) is an ambiguous mention: a name drawn uniformly from
   :data:`AMBIGUOUS`, each of which can be two types ("Jordan" PER or LOC, "Apple" ORG or
   MISC), with its true type drawn from the name's own prior (e.g. "Paris" is LOC with
   probability 0.65). The other entities are unambiguous names from :data:`LEXICON` of a
   uniformly random type (several are multi-token, e.g. "New York", "Red Cross").
2. Context: the ambiguous mention gets a disambiguating cue of its type (e.g. "flew to"
   for LOC, "shares" for ORG; see :data:`CUES`) with probability ``context_rate``,
   otherwise a neutral phrase or none, drawn independently of the type. Unambiguous
   entities get a cue of their type half of the time.
3. The image: every type has a visual signature, drawn with the shape drawer of
   :mod:`mmtutor.data.shapes` (PER: circle, a face; LOC: triangle, a mountain; ORG:
   square, a building; MISC: cross), with random colours, position and pixel noise. With
   probability ``image_relevance`` it depicts the ambiguous mention's type (or, in a
   tweet without one, a random entity's type); otherwise it is an unrelated image of a
   uniformly random type, as so often on social media.

Ceilings (oracles that know the exact spans, since spans are fixed by the text; only the
ambiguous mention's type is uncertain):

* text: ``argmax_t P(t | name, cue)``: the cue's type if there is a cue, else the name's
  more likely type;
* image: ``argmax_t P(t) P(image | t)`` over the four types, with
  ``P(image = i | t) = r [i = t] + (1 - r) / 4`` (``r = image_relevance``) and ``P(t)`` the
  types' share among ambiguous mentions -- the image alone, given the gold span;
* joint: ``argmax_t P(t | name, cue) P(image | t)``.

``ceilings`` reports accuracy on the ambiguous mentions for all three and entity-level
micro F1 (seqeval, IOB2: every entity counts, only exact span and type match) for text
and joint. There is no image-only F1: an image cannot mark which tokens form a name, so
an image-only tagger is not defined. All are measured on the test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from mmtutor.data._checks import check_count, check_nonnegative, check_probability
from mmtutor.data._splits import GeneratedData, SplitBase
from mmtutor.data.datasets import TaggingDataset
from mmtutor.data.images import channel_stats
from mmtutor.data.mner_text import AMBIGUOUS, CUES, ENTITY_TYPES, LEXICON, pick, write_tweet
from mmtutor.data.shapes import SHAPES, draw_shapes
from mmtutor.data.tags import TaggedSentence, TagMap, spans_to_tags
from mmtutor.data.vocab import CharVocab, Vocab

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ENTITY_TYPES",
    "TYPE_SHAPES",
    "LEXICON",
    "AMBIGUOUS",
    "CUES",
    "MNERSplit",
    "MNERData",
    "make_mner",
]

TYPE_SHAPES: dict[str, str] = {"PER": "circle", "LOC": "triangle", "ORG": "square", "MISC": "cross"}
"""The visual signature of each type."""


@dataclass(eq=False, repr=False)
class MNERSplit(SplitBase):
    """One split of :func:`make_mner` (``N`` tweets).

    Attributes:
        sentences: ``N`` :class:`TaggedSentence` (tokens and IOB2 tags).
        images: ``(N, 3, S, S)`` float32 in ``[0, 1]``.
        entities: per tweet, its entities ``(type, start, end)`` (``end`` exclusive).
        ambiguous_index: ``(N,)`` int64 index into ``entities[i]`` of the ambiguous
            mention, -1 if none.
        ambiguous_type: ``(N,)`` int64 true type of the ambiguous mention (index into
            :data:`ENTITY_TYPES`), -1 if none.
        has_context: ``(N,)`` bool, the ambiguous mention has a disambiguating cue.
        image_relevant: ``(N,)`` bool, the image depicts the relevant type (else unrelated).
        image_type: ``(N,)`` int64 the type the image depicts.
        oracle: ``{"text", "image", "joint"}`` -> ``(N,)`` int64 predicted type of the
            ambiguous mention (-1 where there is none).
    """

    sentences: list[TaggedSentence]
    images: np.ndarray
    entities: list[list[tuple[str, int, int]]]
    ambiguous_index: np.ndarray
    ambiguous_type: np.ndarray
    has_context: np.ndarray
    image_relevant: np.ndarray
    image_type: np.ndarray
    oracle: dict[str, np.ndarray]

    def oracle_tags(self, which: str) -> list[list[str]]:
        """IOB2 tags an oracle predicts: gold spans, the ambiguous one typed by the oracle."""
        out = []
        for i, (sentence, ents) in enumerate(zip(self.sentences, self.entities, strict=True)):
            j = int(self.ambiguous_index[i])
            if j < 0:
                out.append(list(sentence.tags))
                continue
            spans = list(ents)
            spans[j] = (ENTITY_TYPES[int(self.oracle[which][i])], ents[j][1], ents[j][2])
            out.append(spans_to_tags(spans, len(sentence)))
        return out

    def oracle_scores(self) -> dict[str, float]:
        """Entity-level micro F1 (seqeval) and accuracy on the ambiguous mentions of each oracle."""
        from seqeval.metrics import f1_score

        gold = [s.tags for s in self.sentences]
        amb = self.ambiguous_index >= 0
        scores = {f"f1_{k}": float(f1_score(gold, self.oracle_tags(k))) for k in ("text", "joint")}
        for k in ("text", "image", "joint"):
            hits = self.oracle[k][amb] == self.ambiguous_type[amb]
            scores[f"ambiguous_acc_{k}"] = float(hits.mean()) if amb.any() else float("nan")
        return scores


@dataclass(eq=False, repr=False)
class MNERData(GeneratedData):
    """What :func:`make_mner` returns.

    Attributes:
        train, val, test: the splits.
        ceilings: ``{"f1_text", "f1_joint", "ambiguous_acc_text", "ambiguous_acc_image",
            "ambiguous_acc_joint"}`` measured on the test split.
        expected_ceilings: the exact population values of the three ``ambiguous_acc_*``
            (the test-split values scatter around them by sampling error).
        settings: the knob values used.
    """

    train: MNERSplit
    val: MNERSplit
    test: MNERSplit
    ceilings: dict[str, float]
    expected_ceilings: dict[str, float]
    settings: dict[str, Any]

    @cached_property
    def vocab(self) -> Vocab:
        """Word vocabulary of the training tweets (lower-cased)."""
        return Vocab.build(s.tokens for s in self.train.sentences)

    @cached_property
    def char_vocab(self) -> CharVocab:
        """Character vocabulary of the training tweets (case kept: capitals mark names)."""
        return CharVocab.build(s.tokens for s in self.train.sentences)

    @cached_property
    def tag_map(self) -> TagMap:
        """``O`` plus ``B-``/``I-`` of every type in :data:`ENTITY_TYPES`."""
        return TagMap.from_types(ENTITY_TYPES)

    def datasets(self) -> tuple[TaggingDataset, ...]:
        """Train, validation and test datasets, images normalised with the training statistics."""
        mean, std = channel_stats(self.train.images)
        return tuple(
            TaggingDataset(
                s.sentences, self.vocab, self.char_vocab, self.tag_map, s.images, mean=mean, std=std
            )
            for s in (self.train, self.val, self.test)
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per tweet of every split: ``split``, ``text``, ``n_tokens``, ``n_entities``,
        ``ambiguous_name``, ``ambiguous_type``, ``has_context``, ``image_relevant``,
        ``image_type`` and ``oracle_{text,image,joint}`` (type names; None where not ambiguous)."""
        import pandas as pd

        def name(t: int) -> str | None:
            return ENTITY_TYPES[t] if t >= 0 else None

        rows = []
        for split in ("train", "val", "test"):
            s: MNERSplit = getattr(self, split)
            for i, sent in enumerate(s.sentences):
                j = int(s.ambiguous_index[i])
                amb = (
                    " ".join(sent.tokens[s.entities[i][j][1] : s.entities[i][j][2]])
                    if j >= 0
                    else None
                )
                rows.append(
                    {
                        "split": split,
                        "text": " ".join(sent.tokens),
                        "n_tokens": len(sent),
                        "n_entities": len(s.entities[i]),
                        "ambiguous_name": amb,
                        "ambiguous_type": name(int(s.ambiguous_type[i])),
                        "has_context": bool(s.has_context[i]),
                        "image_relevant": bool(s.image_relevant[i]),
                        "image_type": ENTITY_TYPES[int(s.image_type[i])],
                        **{f"oracle_{k}": name(int(v[i])) for k, v in s.oracle.items()},
                    }
                )
        return pd.DataFrame(rows)


def _posteriors(
    name: str, has_cue: bool, kind: str, image_type: int, relevance: float
) -> dict[str, np.ndarray]:
    """Unnormalised posteriors over :data:`ENTITY_TYPES` for the three oracles."""
    k = len(ENTITY_TYPES)
    text = np.zeros(k)
    if has_cue:  # a cue names the type outright
        text[ENTITY_TYPES.index(kind)] = 1.0
    else:  # a neutral context is as likely under either type: the prior stays
        for t, p in AMBIGUOUS[name].items():
            text[ENTITY_TYPES.index(t)] = p
    likelihood = np.full(k, (1.0 - relevance) / k)  # P(image type | true type)
    likelihood[image_type] += relevance
    return {"text": text, "image": _AMBIGUOUS_PRIOR * likelihood, "joint": text * likelihood}


def _ambiguous_prior() -> np.ndarray:
    prior = np.zeros(len(ENTITY_TYPES))
    for probs in AMBIGUOUS.values():
        for t, p in probs.items():
            prior[ENTITY_TYPES.index(t)] += p / len(AMBIGUOUS)
    return prior


_AMBIGUOUS_PRIOR = _ambiguous_prior()


def _expected_accuracies(context_rate: float, relevance: float) -> dict[str, float]:
    """Exact expected oracle accuracies on ambiguous mentions, by enumerating every case."""
    k = len(ENTITY_TYPES)
    hits = dict.fromkeys(("text", "image", "joint"), 0.0)
    for name, probs in AMBIGUOUS.items():
        for kind, p_kind in probs.items():
            truth = ENTITY_TYPES.index(kind)
            for cue, p_cue in ((True, context_rate), (False, 1.0 - context_rate)):
                for shown in range(k):
                    p_shown = (1.0 - relevance) / k + relevance * (shown == truth)
                    post = _posteriors(name, cue, kind, shown, relevance)
                    weight = p_kind * p_cue * p_shown / len(AMBIGUOUS)
                    for key in hits:
                        hits[key] += weight * (int(np.argmax(post[key])) == truth)
    return {f"ambiguous_acc_{key}": v for key, v in hits.items()}


def _split(rng: np.random.Generator, n: int, cfg: dict[str, Any]) -> MNERSplit:
    k = len(ENTITY_TYPES)
    sentences, entities, amb_index, amb_type, has_context, relevant, image_type = (
        [],
        [],
        [],
        [],
        [],
        [],
        [],
    )
    oracle: dict[str, list[int]] = {"text": [], "image": [], "joint": []}
    for _ in range(n):
        tokens, spans, j, name, cue = write_tweet(rng, cfg["ambiguous_rate"], cfg["context_rate"])
        sentences.append(TaggedSentence(tokens, spans_to_tags(spans, len(tokens))))
        entities.append(spans)
        is_relevant = bool(rng.random() < cfg["image_relevance"])
        if is_relevant:
            shown = spans[j][0] if j >= 0 else pick(rng, spans)[0]
            shown_index = ENTITY_TYPES.index(shown)
        else:
            shown_index = int(rng.integers(k))
        amb_index.append(j)
        amb_type.append(ENTITY_TYPES.index(spans[j][0]) if j >= 0 else -1)
        has_context.append(cue)
        relevant.append(is_relevant)
        image_type.append(shown_index)
        if j >= 0:
            post = _posteriors(name or "", cue, spans[j][0], shown_index, cfg["image_relevance"])
            for key in oracle:
                oracle[key].append(int(np.argmax(post[key])))
        else:
            for key in oracle:
                oracle[key].append(-1)
    shapes = np.array(
        [SHAPES.index(TYPE_SHAPES[ENTITY_TYPES[t]]) for t in image_type], dtype=np.int64
    )
    images = draw_shapes(
        shapes, rng=rng, image_size=cfg["image_size"], pixel_noise=cfg["pixel_noise"]
    )
    return MNERSplit(
        sentences=sentences,
        images=images,
        entities=entities,
        ambiguous_index=np.array(amb_index, dtype=np.int64),
        ambiguous_type=np.array(amb_type, dtype=np.int64),
        has_context=np.array(has_context, dtype=bool),
        image_relevant=np.array(relevant, dtype=bool),
        image_type=np.array(image_type, dtype=np.int64),
        oracle={key: np.array(v, dtype=np.int64) for key, v in oracle.items()},
    )


def make_mner(
    n_train: int = 1500,
    n_val: int = 300,
    n_test: int = 600,
    *,
    ambiguous_rate: float = 0.6,
    context_rate: float = 0.4,
    image_relevance: float = 0.85,
    pixel_noise: float = 0.1,
    image_size: int = 32,
    seed: int = 0,
) -> MNERData:
    """Generate tweet-like multimodal NER data with known text, image and joint ceilings.

    See the module docstring for the generative model and the oracles.

    Args:
        n_train, n_val, n_test: split sizes (``n_train, n_test >= 1``).
        ambiguous_rate: fraction of tweets with one ambiguous mention.
        context_rate: probability that an ambiguous mention has a disambiguating cue.
        image_relevance: probability that the image depicts the relevant entity type.
        pixel_noise: standard deviation of the Gaussian pixel noise.
        image_size: image side ``S`` (>= 8).
        seed: the random seed; the same seed gives identical data.

    Returns:
        An :class:`MNERData` with the splits, the test-split ``ceilings`` and the exact
        ``expected_ceilings``.

    Raises:
        ValueError: naming the argument that is out of range.

    Examples:
        >>> data = make_mner(100, 20, 50, seed=0)
        >>> data.train.sentences[0].tags[:3]  # doctest: +SKIP
        ['O', 'B-LOC', 'I-LOC']
        >>> train_dl, val_dl, test_dl = data.loaders(batch_size=16)
    """
    sizes = (
        check_count("n_train", n_train, 1),
        check_count("n_val", n_val, 0),
        check_count("n_test", n_test, 1),
    )
    cfg: dict[str, Any] = {
        "ambiguous_rate": check_probability("ambiguous_rate", ambiguous_rate),
        "context_rate": check_probability("context_rate", context_rate),
        "image_relevance": check_probability("image_relevance", image_relevance),
        "pixel_noise": check_nonnegative("pixel_noise", pixel_noise),
        "image_size": check_count("image_size", image_size, 8),
    }
    check_count("seed", seed, 0)
    rngs = np.random.default_rng(seed).spawn(3)
    train, val, test = (_split(r, n, cfg) for r, n in zip(rngs, sizes, strict=True))
    settings = {**cfg, "seed": seed, "n_train": sizes[0], "n_val": sizes[1], "n_test": sizes[2]}
    return MNERData(
        train=train,
        val=val,
        test=test,
        ceilings=test.oracle_scores(),
        expected_ceilings=_expected_accuracies(cfg["context_rate"], cfg["image_relevance"]),
        settings=settings,
    )
