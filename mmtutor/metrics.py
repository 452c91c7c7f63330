"""Evaluation measures: thin wrappers around scikit-learn and seqeval, plus calibration.

Classification uses scikit-learn. Named entity recognition uses seqeval, which scores
whole **entities** (a predicted span counts only if its type and both boundaries match),
in one of two modes (:data:`ENTITY_MODES`): ``"conlleval"``, seqeval's default, which
matches the ``conlleval`` script of the CoNLL shared tasks (Tjong Kim Sang & De Meulder,
CoNLL 2003) -- the measure behind published CoNLL-2003 and Twitter-2015/2017 results -- and
reads an ``I-X`` after ``O`` (or after another type) as the start of an entity; and
``"strict"`` (IOB2 scheme), which counts a span only when it starts with ``B-`` and so
gives no credit for ill-formed tag sequences. On well-formed predictions (a CRF's) the two
agree; a softmax head that emits ``O I-PER`` scores higher under conlleval.
:func:`token_report` gives the per-token numbers *with* the ``O`` tag next to it, so the
book can show how token-level micro-F1 inflates a tagger's score.

The one measure written out by hand is the expected calibration error (Guo et al., *On
Calibration of Modern Neural Networks*, ICML 2017), because the book teaches it; so is
:func:`fit_temperature`, their remedy (temperature scaling).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from seqeval import metrics as seqeval_metrics
from seqeval.scheme import IOB2
from sklearn import metrics as sk_metrics

__all__ = [
    "accuracy",
    "macro_f1",
    "classification_report_frame",
    "ENTITY_MODES",
    "entity_f1",
    "entity_report",
    "token_report",
    "reliability_table",
    "expected_calibration_error",
    "fit_temperature",
]


def _as_array(values: object, name: str) -> np.ndarray:
    """Turn a list, NumPy array or (CPU or GPU) tensor into a NumPy array."""
    if hasattr(values, "detach"):  # a torch.Tensor, maybe on a GPU
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim == 0:
        raise ValueError(f"{name} must be a sequence of values, got a scalar {array!r}")
    return array


def _check_same_length(y_true: Sequence, y_pred: Sequence) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred must have the same length, got {len(y_true)} and {len(y_pred)}"
        )


def accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    """Fraction of predictions equal to the labels (``sklearn.metrics.accuracy_score``).

    Args:
        y_true: labels, shape ``(N,)``.
        y_pred: predictions, shape ``(N,)``.
    """
    y_true, y_pred = _as_array(y_true, "y_true"), _as_array(y_pred, "y_pred")
    _check_same_length(y_true, y_pred)
    return float(sk_metrics.accuracy_score(y_true, y_pred))


def macro_f1(y_true: Sequence, y_pred: Sequence) -> float:
    """Unweighted mean of the per-class F1 scores (``sklearn.metrics.f1_score``).

    Args:
        y_true: labels, shape ``(N,)``.
        y_pred: predictions, shape ``(N,)``.
    """
    y_true, y_pred = _as_array(y_true, "y_true"), _as_array(y_pred, "y_pred")
    _check_same_length(y_true, y_pred)
    return float(sk_metrics.f1_score(y_true, y_pred, average="macro", zero_division=0))


def _report_to_frame(report: dict) -> pd.DataFrame:
    """Turn an ``output_dict=True`` report into one row per class or average."""
    frame = pd.DataFrame(report).T
    if "support" in frame:
        frame["support"] = frame["support"].astype(int)
    return frame


def classification_report_frame(
    y_true: Sequence,
    y_pred: Sequence,
    labels: Sequence | None = None,
    target_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support as a DataFrame.

    Args:
        y_true: labels, shape ``(N,)``.
        y_pred: predictions, shape ``(N,)``.
        labels: the label values to report, in order (default: every value seen).
        target_names: display names of ``labels`` (e.g. class names for integer labels).

    Returns:
        One row per class, then ``macro avg`` and ``weighted avg`` (and ``accuracy``
        when every class is reported); columns precision, recall, f1-score, support.
    """
    y_true, y_pred = _as_array(y_true, "y_true"), _as_array(y_pred, "y_pred")
    _check_same_length(y_true, y_pred)
    report = sk_metrics.classification_report(
        y_true, y_pred, labels=labels, target_names=target_names, output_dict=True, zero_division=0
    )
    if "accuracy" in report:  # a bare float; give it the shape of the other rows
        value = report["accuracy"]
        report["accuracy"] = {"precision": value, "recall": value, "f1-score": value,
                              "support": len(y_true)}
    return _report_to_frame(report)


def _check_tag_sequences(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]):
    _check_same_length(true_tags, pred_tags)
    for i, (t, p) in enumerate(zip(true_tags, pred_tags, strict=True)):
        if len(t) != len(p):
            raise ValueError(
                f"sentence {i}: true_tags has {len(t)} tags but pred_tags has {len(p)}; "
                "each predicted sentence must have one tag per token"
            )


ENTITY_MODES = ("strict", "conlleval")
"""Entity-matching modes: strict IOB2, or the ``conlleval`` script's (seqeval's default)."""


def _seqeval_options(mode: str) -> dict[str, object]:
    """seqeval keyword arguments of an entity mode (``"strict"`` or ``"conlleval"``)."""
    if mode == "strict":  # a span must start with B- and every tag match
        return {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    if mode == "conlleval":  # lenient: an I-X after O or another type starts an entity
        return {"mode": None, "zero_division": 0}
    raise ValueError(f"mode must be one of {ENTITY_MODES}, got {mode!r}")


def entity_f1(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]], *,
              mode: str = "strict") -> float:
    """Entity-level micro F1 (seqeval), strict IOB2 matching or conlleval's.

    Args:
        true_tags: gold BIO tags, one list of strings per sentence (``"B-PER"``, ``"O"``...).
        pred_tags: predicted tags, same lengths.
        mode: ``"strict"`` (a span must start with ``B-``) or ``"conlleval"`` (the CoNLL
            script's rule, used by published CoNLL-2003 and Twitter-2015/2017 results:
            an ``I-X`` after ``O`` starts an entity).

    Returns:
        The F1 of exact entity matches (type and both boundaries), in ``[0, 1]``.

    Examples:
        >>> entity_f1([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
        0.0
        >>> entity_f1([["B-PER", "O"]], [["I-PER", "O"]]), entity_f1(
        ...     [["B-PER", "O"]], [["I-PER", "O"]], mode="conlleval")
        (0.0, 1.0)
    """
    options = _seqeval_options(mode)
    _check_tag_sequences(true_tags, pred_tags)
    return float(seqeval_metrics.f1_score(list(true_tags), list(pred_tags), **options))


def entity_report(
    true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]], *,
    mode: str = "strict",
) -> pd.DataFrame:
    """Per-entity-type precision, recall, F1 and support (seqeval; ``mode`` as in :func:`entity_f1`).

    Returns:
        One row per entity type (``LOC``, ``PER``...), then ``micro avg``, ``macro avg``
        and ``weighted avg``; columns precision, recall, f1-score, support.
    """
    options = _seqeval_options(mode)
    _check_tag_sequences(true_tags, pred_tags)
    report = seqeval_metrics.classification_report(
        list(true_tags), list(pred_tags), output_dict=True, **options
    )
    return _report_to_frame(report)


def token_report(
    true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]
) -> pd.DataFrame:
    """Token-level precision, recall and F1 per tag, ``O`` included, with the micro average.

    This is the number behind inflated "97 % F1" claims: most tokens are ``O`` and easy,
    so the micro average over tokens is far above the entity F1 of :func:`entity_f1`.

    Returns:
        One row per tag (``B-LOC``, ..., ``O``), then ``micro avg`` (over every token,
        ``O`` included; equal to token accuracy) and ``macro avg``.
    """
    _check_tag_sequences(true_tags, pred_tags)
    flat_true = [tag for sentence in true_tags for tag in sentence]
    flat_pred = [tag for sentence in pred_tags for tag in sentence]
    labels = sorted(set(flat_true) | set(flat_pred))
    precision, recall, f1, support = sk_metrics.precision_recall_fscore_support(
        flat_true, flat_pred, labels=labels, zero_division=0
    )
    frame = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1-score": f1, "support": support},
        index=labels,
    )
    for average in ("micro", "macro"):
        p, r, f, _ = sk_metrics.precision_recall_fscore_support(
            flat_true, flat_pred, labels=labels, average=average, zero_division=0
        )
        frame.loc[f"{average} avg"] = [p, r, f, len(flat_true)]
    frame["support"] = frame["support"].astype(int)
    return frame


def _check_probs(probs: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    probs, y = _as_array(probs, "probs"), _as_array(y, "y")
    if probs.ndim != 2:
        raise ValueError(f"probs must have shape (N, C), got {probs.shape}")
    if y.shape != (probs.shape[0],):
        raise ValueError(f"y must have shape ({probs.shape[0]},) to match probs, got {y.shape}")
    return probs.astype(np.float64), y.astype(np.int64)


def reliability_table(probs: object, y: object, n_bins: int = 15) -> pd.DataFrame:
    """Confidence and accuracy per confidence bin: the data of a reliability diagram.

    Args:
        probs: predicted class probabilities, shape ``(N, C)``.
        y: true class indices, shape ``(N,)``.
        n_bins: number of equal-width bins over ``[0, 1]``.

    Returns:
        One row per bin: ``lower``, ``upper``, ``count``, ``confidence`` (mean top
        probability), ``accuracy`` (fraction correct); empty bins have NaN means.
    """
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    probs, y = _check_probs(probs, y)
    confidence = probs.max(axis=1)  # (N,) probability of the predicted class
    correct = probs.argmax(axis=1) == y  # (N,)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bins are (lower, upper]; a confidence of exactly 0 cannot happen (max over C >= 1).
    bin_index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        in_bin = bin_index == b
        count = int(in_bin.sum())
        rows.append({
            "lower": edges[b],
            "upper": edges[b + 1],
            "count": count,
            "confidence": confidence[in_bin].mean() if count else np.nan,
            "accuracy": correct[in_bin].mean() if count else np.nan,
        })
    return pd.DataFrame(rows)


def expected_calibration_error(probs: object, y: object, n_bins: int = 15) -> float:
    """Expected calibration error (Guo et al., ICML 2017).

    Group the samples by their confidence (top probability) into ``n_bins`` equal-width
    bins ``B_1..B_M``; then

        ECE = sum_m |B_m| / N * |accuracy(B_m) - confidence(B_m)|

    A perfectly calibrated model (80 % right when it says 80 %) has ECE 0.

    Args:
        probs: predicted class probabilities, shape ``(N, C)``.
        y: true class indices, shape ``(N,)``.
        n_bins: number of bins (15 as in Guo et al.).

    Returns:
        The ECE, in ``[0, 1]``.

    Examples:
        >>> round(expected_calibration_error([[0.9, 0.1], [0.6, 0.4]], [0, 1], n_bins=10), 4)
        0.35
    """
    table = reliability_table(probs, y, n_bins)
    table = table[table["count"] > 0]
    gaps = (table["accuracy"] - table["confidence"]).abs()
    return float((table["count"] / table["count"].sum() * gaps).sum())


def fit_temperature(
    logits: object, y: object, *, bounds: tuple[float, float] = (0.01, 100.0)
) -> float:
    """Temperature scaling (Guo et al., ICML 2017): the ``T`` that best calibrates ``logits``.

    Finds the ``T > 0`` that minimises the negative log-likelihood of ``softmax(logits / T)``
    on held-out data (a validation split, never the training split):

        T* = argmin_T  -1/N sum_i log softmax(z_i / T)[y_i]

    ``T > 1`` softens overconfident predictions, ``T < 1`` sharpens underconfident ones;
    the argmax, hence the accuracy, does not change. Log-probabilities work as logits
    (``softmax(log p) = p``).

    Args:
        logits: unnormalised scores or log-probabilities, shape ``(N, C)``, finite.
        y: true class indices, shape ``(N,)``.
        bounds: the range searched for ``T``.

    Returns:
        The temperature ``T``; calibrated probabilities are ``softmax(logits / T)``.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> z = rng.normal(size=(5000, 3))
        >>> y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in z])
        >>> round(fit_temperature(4 * z, y))  # four times too confident
        4
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    z, y = _as_array(logits, "logits").astype(np.float64), _as_array(y, "y").astype(np.int64)
    if z.ndim != 2 or y.shape != (z.shape[0],):
        raise ValueError(f"logits must have shape (N, C) and y shape (N,), got {z.shape} and "
                         f"{y.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits must be finite; for probabilities p use "
                         "np.log(np.clip(p, 1e-12, 1)) (a probability of 0 gives -inf)")
    if len(y) == 0 or y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"y must hold class indices in [0, {z.shape[1]}) for {z.shape[1]} "
                         f"columns of logits, got values in [{y.min(initial=0)}, "
                         f"{y.max(initial=0)}] ({len(y)} samples)")
    low, high = bounds
    if not 0 < low < high:
        raise ValueError(f"bounds must be (low, high) with 0 < low < high, got {bounds!r}")
    true = z[np.arange(len(y)), y]  # (N,)

    def nll(log_t: float) -> float:
        scaled = np.exp(-log_t)  # 1 / T
        return float(np.mean(logsumexp(z * scaled, axis=1) - true * scaled))

    # The NLL is convex in 1 / T, so a bounded 1-D search over log T finds the optimum.
    result = minimize_scalar(nll, bounds=(np.log(low), np.log(high)), method="bounded",
                             options={"xatol": 1e-6})
    return float(np.exp(result.x))
