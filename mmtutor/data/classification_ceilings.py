"""The exact distribution behind :func:`~mmtutor.data.make_classification` and its Bayes oracles.

Enumerating the hidden modes gives the exact table ``P(y, s, k)`` of label, drawn shape and
caption key class (:func:`joint_table`, with ``s, k = C`` meaning "no class shown"). The
Bayes oracle predicts ``argmax_y`` of the posterior given what it observes: ``s`` (or
"missing") for the image ceiling, ``k`` for the text ceiling, both for the joint ceiling
(:func:`oracle_rules`, applied per sample by :func:`oracle_predictions`). No model can beat
the oracle on average, so its accuracy *on the test split* is the ceiling each trained model
is compared with; :func:`expected_ceilings` gives the exact population values (the
test-split values scatter around them by sampling error). With the defaults of
``make_classification`` the single-modality ceilings are 0.625 and the joint one 0.9625: the
gap is what fusion can win; late fusion (which combines two unimodal predictions) cannot
learn the synergy part of it.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MODES",
    "UNINFORMATIVE",
    "check_uninformative",
    "joint_table",
    "oracle_rules",
    "oracle_predictions",
    "expected_ceilings",
]

MODES: tuple[str, ...] = ("image", "text", "redundant", "synergy")
"""Names of the hidden modes; ``split.mode`` holds indices into this tuple."""

UNINFORMATIVE: tuple[str, ...] = ("blank", "random")
"""What a modality that does not carry the label may show: no class, or a random one."""


def check_uninformative(value: object) -> str:
    """``value`` if it is one of :data:`UNINFORMATIVE`; else ``ValueError``."""
    if value not in UNINFORMATIVE:
        wanted = " or ".join(repr(u) for u in UNINFORMATIVE)
        raise ValueError(f"uninformative must be {wanted}, got {value!r}")
    return str(value)


def joint_table(
    mode_weights: tuple[float, float, float, float],
    *,
    num_classes: int,
    image_noise: float = 0.0,
    text_noise: float = 0.0,
    uninformative: str = "blank",
) -> np.ndarray:
    """The exact joint distribution ``P(y, s, k)`` of label, drawn shape and caption key class.

    ``P(y, s, k) = sum_m P(m) sum_{s0, k0} P(y, s0, k0 | m) N_img(s | s0) N_txt(k | k0)``
    where ``N(x | x0) = (1 - eps) [x = x0] + eps / C`` for a class ``x0`` (a blank stays blank).

    Args:
        mode_weights: ``(image_unique, text_unique, redundancy, synergy)``, normalised here.
        num_classes: ``C``.
        image_noise, text_noise: the replacement probabilities.
        uninformative: ``"blank"`` or ``"random"``, as in
            :func:`~mmtutor.data.make_classification`.

    Returns:
        ``(C, C + 1, C + 1)`` array indexed ``[y, s, k]`` that sums to 1; index ``C`` of ``s``
        or ``k`` means "no class shown".
    """
    check_uninformative(uninformative)
    w = np.asarray(mode_weights, dtype=np.float64)
    w = w / w.sum()
    c = int(num_classes)
    eye = np.eye(c + 1)[:c]  # (C, C+1): [y, x] = 1 if x == y
    silent = np.zeros(c + 1)  # distribution of an uninformative modality's class
    if uninformative == "blank":
        silent[c] = 1.0
    else:
        silent[:c] = 1.0 / c
    y, a, b = np.meshgrid(np.arange(c), np.arange(c + 1), np.arange(c + 1), indexing="ij")
    per_mode = {  # P(y, s0, k0 | m), each (C, C+1, C+1)
        "image": eye[:, :, None] * silent[None, None, :] / c,  # s0 = y
        "text": eye[:, None, :] * silent[None, :, None] / c,  # k0 = y
        "redundant": eye[:, :, None] * eye[:, None, :] / c,  # s0 = k0 = y
        "synergy": ((a < c) & (b < c) & (y == (a + b) % c)) / c**2,  # y = (s0 + k0) mod C
    }
    clean = sum(wi * per_mode[m] for wi, m in zip(w, MODES, strict=True))  # (C, C+1, C+1)

    def channel(eps: float) -> np.ndarray:  # [x0, x]
        m = np.zeros((c + 1, c + 1))
        m[:c, :c] = (1.0 - eps) * np.eye(c) + eps / c
        m[c, c] = 1.0
        return m

    return np.einsum("yab,as,bk->ysk", clean, channel(image_noise), channel(text_noise))


def oracle_rules(table: np.ndarray) -> dict[str, np.ndarray]:
    """Argmax-posterior decisions from a :func:`joint_table` ``(C, C+1, C+1)``.

    Returns:
        ``{"image": (C+1,), "text": (C+1,), "joint": (C+1, C+1), "prior": ()}``: the best
        label per shown shape, per key class, per pair, and with nothing observed.
    """
    return {
        "image": table.sum(axis=2).argmax(axis=0),  # P(y, s) -> best y per s
        "text": table.sum(axis=1).argmax(axis=0),  # P(y, k) -> best y per k
        "joint": table.argmax(axis=0),  # P(y, s, k) -> best y per (s, k)
        "prior": np.asarray(table.sum(axis=(1, 2)).argmax()),
    }


def oracle_predictions(
    rules: dict[str, np.ndarray],
    shape: np.ndarray,
    key: np.ndarray,
    image_present: np.ndarray,
    text_present: np.ndarray,
) -> dict[str, np.ndarray]:
    """Each oracle's prediction per sample from what it observes.

    Args:
        rules: :func:`oracle_rules` of the table.
        shape: ``(N,)`` int class of the drawn shape, -1 for a blank image.
        key: ``(N,)`` int class of the caption's key word, -1 for none.
        image_present, text_present: ``(N,)`` bool; a missing modality is not observed.

    Returns:
        ``{"image", "text", "joint"}`` -> ``(N,)`` int64 predicted labels; an oracle that
        observes nothing predicts the prior's mode.
    """
    c = len(rules["image"]) - 1
    s_index, k_index = np.where(shape < 0, c, shape), np.where(key < 0, c, key)  # blank -> C
    prior = np.full(len(shape), int(rules["prior"]))  # (N,)
    by_image = np.where(image_present, rules["image"][s_index], prior)  # (N,)
    by_text = np.where(text_present, rules["text"][k_index], prior)  # (N,)
    both = rules["joint"][s_index, k_index]  # (N,)
    joint = np.where(image_present & text_present, both, np.where(image_present, by_image, by_text))
    return {"image": by_image, "text": by_text, "joint": joint}


def expected_ceilings(
    table: np.ndarray, missing_image: float, missing_text: float
) -> dict[str, float]:
    """Exact population accuracies of the oracles: ``{"text", "image", "joint", "chance"}``.

    Args:
        table: the :func:`joint_table` ``(C, C+1, C+1)`` of the present modalities.
        missing_image, missing_text: probabilities that a sample lacks that modality (never
            both): the oracle then falls back to the prior or to the other modality.
    """
    image = float(table.sum(axis=2).max(axis=0).sum())
    text = float(table.sum(axis=1).max(axis=0).sum())
    joint = float(table.max(axis=0).sum())
    chance = float(table.sum(axis=(1, 2)).max())
    both = 1.0 - missing_image - missing_text
    return {
        "text": (1 - missing_text) * text + missing_text * chance,
        "image": (1 - missing_image) * image + missing_image * chance,
        "joint": both * joint + missing_image * text + missing_text * image,
        "chance": chance,
    }
