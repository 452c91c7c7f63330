"""The words of :func:`~mmtutor.data.make_mner`'s tweets and the writer of one tweet.

Entity types, unambiguous names per type (:data:`LEXICON`), ambiguous names with the prior
of their two types (:data:`AMBIGUOUS`), context phrases that reveal a type (:data:`CUES`)
or say nothing (:data:`NEUTRAL`), and the tweet furniture (filler words, hashtags, emoji,
@mentions). :func:`write_tweet` is steps 1 and 2 of the generative model described in
:mod:`mmtutor.data.mner`; the image and the oracles are drawn there.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "ENTITY_TYPES",
    "LEXICON",
    "AMBIGUOUS",
    "CUES",
    "NEUTRAL",
    "FILLER",
    "HASHTAGS",
    "EMOJI",
    "MENTIONS",
    "Phrase",
    "pick",
    "write_tweet",
]

ENTITY_TYPES: tuple[str, ...] = ("PER", "LOC", "ORG", "MISC")
"""Entity types; ``image_type`` and the oracle arrays hold indices into this tuple."""

LEXICON: dict[str, tuple[str, ...]] = {
    "PER": (
        "Maria Lopez", "John Carter", "Aisha Khan", "Lena Fischer", "Kofi Mensah", "Yuki Tanaka",
        "Tom Baker", "Priya Nair", "Oliver Grant", "Sofia Rossi", "Mateo Silva", "Hannah Berg",
    ),
    "LOC": (
        "New York", "Berlin", "Cape Town", "Lisbon", "Nairobi", "Kyoto", "Rio de Janeiro",
        "Lake Tahoe", "Oslo", "Buenos Aires", "Mount Kenya", "Toronto",
    ),
    "ORG": (
        "Red Cross", "United Nations", "Greenpeace", "Northwind Bank", "City Council", "BBC",
        "FC Porto", "Boeing", "Acme Corp", "World Health Organization", "Unicef", "Fifa",
    ),
    "MISC": (
        "World Cup", "Olympics", "Super Bowl", "iPhone", "Coachella", "Christmas", "Grammy Awards",
        "Tour de France", "Oscars", "Eurovision", "Ramadan", "Champions League",
    ),
}  # fmt: skip
"""Unambiguous names per type."""

AMBIGUOUS: dict[str, dict[str, float]] = {
    "Jordan": {"PER": 0.6, "LOC": 0.4},
    "Paris": {"LOC": 0.65, "PER": 0.35},
    "Georgia": {"LOC": 0.55, "PER": 0.45},
    "Chelsea": {"PER": 0.6, "LOC": 0.4},
    "Victoria": {"PER": 0.55, "LOC": 0.45},
    "Florence": {"LOC": 0.6, "PER": 0.4},
    "Austin": {"LOC": 0.6, "PER": 0.4},
    "Savannah": {"PER": 0.55, "LOC": 0.45},
    "Apple": {"ORG": 0.65, "MISC": 0.35},
    "Jaguar": {"MISC": 0.55, "ORG": 0.45},
    "Amazon": {"ORG": 0.6, "MISC": 0.4},
    "Corona": {"MISC": 0.6, "ORG": 0.4},
    "Mars": {"MISC": 0.55, "ORG": 0.45},
    "Puma": {"ORG": 0.6, "MISC": 0.4},
    "Dove": {"MISC": 0.55, "ORG": 0.45},
    "Oracle": {"ORG": 0.65, "MISC": 0.35},
}
"""Ambiguous names and the prior of each of their two types."""

Phrase = tuple[tuple[str, ...], tuple[str, ...]]  # (words before the name, words after it)

CUES: dict[str, tuple[Phrase, ...]] = {
    "PER": ((("met",), ()), (("interview", "with"), ()), ((), ("said",)), (("congrats", "to"), ())),
    "LOC": (
        (("flew", "to"), ()),
        (("visited",), ()),
        (("weather", "in"), ()),
        (("live", "from"), ()),
    ),
    "ORG": (
        ((), ("shares",)),
        (("CEO", "of"), ()),
        (("stock", "of"), ()),
        ((), ("announced", "layoffs")),
    ),
    "MISC": (
        (("drinking",), ()),
        (("the", "new"), ("model",)),
        (("bought", "a"), ()),
        (("unboxing",), ()),
    ),
}
"""Context phrases that reveal a type."""

NEUTRAL: tuple[Phrase, ...] = (
    ((), ()), ((), ()), (("omg",), ()), (("about",), ()), ((), ("today",)),
    (("look", "at"), ()), (("all", "about"), ()), ((), ("!",)),
)  # fmt: skip
"""Context that says nothing about the type (an empty phrase included)."""

FILLER: tuple[str, ...] = (
    "what", "a", "day", "in", "and", "the", "lol", "wow", "really", "just", "now", "is",
    "amazing", "tonight", "again", "finally", "time", "love", "this", "can't", "wait", "for",
    "more", "news", "check", "out", "best", "ever", "pic", "here", "we", "go", "yes", "no",
    "way", "happy", "friday", "crazy", "morning", "so", "good", "with", "our", "team",
)  # fmt: skip
"""Filler words of a tweet; none of them is part of a name."""

HASHTAGS = ("#travel", "#news", "#tbt", "#love", "#weekend", "#live", "#music", "#sport", "#photo")
EMOJI = (":)", ":D", "<3", "😂", "🔥", "🙌", "😍", "👍")
MENTIONS = ("@maria_l", "@newsdesk", "@jk88", "@travelbug", "@sam_w", "@dailypics")


def pick(rng: np.random.Generator, options: tuple | list) -> Any:
    """One element of ``options``, uniformly at random (one draw from ``rng``)."""
    return options[int(rng.integers(len(options)))]


def write_tweet(
    rng: np.random.Generator, ambiguous_rate: float, context_rate: float
) -> tuple[list[str], list[tuple[str, int, int]], int, str | None, bool]:
    """One tweet, drawn from ``rng`` (steps 1 and 2 of the model in :mod:`mmtutor.data.mner`).

    Args:
        rng: the split's generator (read in a fixed order, so a seed gives one result).
        ambiguous_rate: probability that one entity is an ambiguous mention.
        context_rate: probability that the ambiguous mention gets a cue of its type.

    Returns:
        ``(tokens, spans, amb_index, amb_name, has_cue)``: the tokens; the entities
        ``(type, start, end)`` (``end`` exclusive); the index into ``spans`` of the ambiguous
        mention, or -1; its name, or None; whether it has a cue.
    """
    n_entities = int(rng.integers(1, 4))
    amb_index = int(rng.integers(n_entities)) if rng.random() < ambiguous_rate else -1
    tokens: list[str] = []
    if rng.random() < 0.25:
        tokens += ["RT", pick(rng, MENTIONS) + ":"]
    spans: list[tuple[str, int, int]] = []
    amb_name, has_cue = None, False
    for e in range(n_entities):
        n_filler = int(rng.integers(0 if e == 0 else 1, 4))  # entities never touch
        tokens += [pick(rng, FILLER) for _ in range(n_filler)]
        if e == amb_index:
            amb_name = pick(rng, list(AMBIGUOUS))
            types, probs = zip(*AMBIGUOUS[amb_name].items(), strict=True)
            kind = types[int(rng.random() >= probs[0])]
            name = amb_name
            cue = has_cue = bool(rng.random() < context_rate)
        else:
            kind = pick(rng, ENTITY_TYPES)
            name = pick(rng, LEXICON[kind])
            cue = bool(rng.random() < 0.5)
        before, after = pick(rng, CUES[kind]) if cue else pick(rng, NEUTRAL)
        tokens += before
        words = name.split()
        spans.append((kind, len(tokens), len(tokens) + len(words)))
        tokens += words
        tokens += after
    tokens += [pick(rng, FILLER) for _ in range(int(rng.integers(0, 4)))]
    for _ in range(int(rng.integers(0, 3))):
        tokens.append(pick(rng, HASHTAGS + EMOJI + MENTIONS))
    return tokens, spans, amb_index, amb_name, has_cue
