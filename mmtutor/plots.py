"""The book's figures, drawn with seaborn and matplotlib.

Every function draws on ``ax`` (a new figure when ``ax=None``) and returns the ``Axes``;
none calls ``plt.show()``, so they work under the non-interactive ``Agg`` backend and in
notebooks alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from sklearn.metrics import confusion_matrix

from mmtutor.metrics import _as_array, expected_calibration_error, reliability_table

__all__ = [
    "plot_learning_curves",
    "plot_confusion_matrix",
    "plot_vs_ceiling",
    "plot_attention",
    "plot_robustness",
    "plot_reliability",
]


def _axes(ax: Axes | None, figsize: tuple[float, float] = (5.0, 3.5)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _check_columns(name: str, frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} must have the columns {list(columns)}; missing {missing}, "
                         f"it has {list(frame.columns)}")


def plot_learning_curves(
    history: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    columns: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Plot columns of one or several ``fit`` histories against the epoch.

    Args:
        history: the DataFrame returned by :func:`mmtutor.train.fit`, or a dict
            ``{run name: DataFrame}`` to compare runs (one colour per run).
        columns: the columns to plot (default: ``train_loss`` and ``val_loss``, those
            present); each gets its own line style.
        ax: where to draw.

    Returns:
        The ``Axes``, one line per (run, column).
    """
    histories = {"": history} if isinstance(history, pd.DataFrame) else dict(history)
    if not histories:
        raise ValueError("history must be a DataFrame or a non-empty dict of DataFrames, got {}")
    if columns is None:
        first = next(iter(histories.values()))
        columns = [c for c in ("train_loss", "val_loss") if c in first.columns]
    long = []
    for run, frame in histories.items():
        _check_columns(f"history[{run!r}]" if run else "history", frame, ["epoch", *columns])
        part = frame.melt(id_vars="epoch", value_vars=list(columns), var_name="curve")
        long.append(part.assign(run=run))
    data = pd.concat(long, ignore_index=True)
    ax = _axes(ax)
    several = len(histories) > 1
    sns.lineplot(data=data, x="epoch", y="value", hue="run" if several else "curve",
                 style="curve" if several else None, marker="o", ax=ax)
    ax.set_ylabel(columns[0] if len(columns) == 1 else "value")
    return ax


def plot_confusion_matrix(
    y_true: Sequence,
    y_pred: Sequence,
    labels: Sequence[str] | None = None,
    *,
    normalize: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Heat map of the confusion matrix (rows: true class, columns: predicted class).

    Args:
        y_true: labels, shape ``(N,)``.
        y_pred: predictions, shape ``(N,)``.
        labels: class names. With integer labels, ``labels[i]`` names class ``i``; with
            string labels, they give the order. Default: the sorted values seen.
        normalize: ``None`` (counts), ``"true"`` (rows sum to 1), ``"pred"`` or ``"all"``,
            as in ``sklearn.metrics.confusion_matrix``.
        ax: where to draw.

    Returns:
        The ``Axes`` holding the heat map.
    """
    y_true, y_pred = _as_array(y_true, "y_true"), _as_array(y_pred, "y_pred")
    if labels is None:
        values = names = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    elif np.issubdtype(y_true.dtype, np.integer):
        values, names = list(range(len(labels))), list(labels)
    else:
        values = names = list(labels)
    matrix = confusion_matrix(y_true, y_pred, labels=values, normalize=normalize)
    ax = _axes(ax, figsize=(1.0 + 0.6 * len(names), 0.6 + 0.6 * len(names)))
    sns.heatmap(matrix, annot=True, fmt="d" if normalize is None else ".2f", cmap="Blues",
                xticklabels=names, yticklabels=names, square=True, cbar=False, ax=ax)
    ax.set(xlabel="predicted", ylabel="true")
    return ax


def plot_vs_ceiling(
    results: pd.DataFrame,
    ceilings: Mapping[str, float],
    *,
    x: str = "method",
    y: str = "score",
    ax: Axes | None = None,
) -> Axes:
    """Bars of each method's score (mean and spread over seeds) under the known ceilings.

    Args:
        results: one row per (method, seed) run, with columns ``x`` and ``y``.
        ceilings: e.g. ``{"text only": 0.71, "image only": 0.64, "both (Bayes)": 0.93}``;
            each is drawn as a dashed horizontal line with a label in the legend.
        x: the column naming the method.
        y: the column with the score.
        ax: where to draw.

    Returns:
        The ``Axes``: one bar per method (error bars: standard deviation over the rows of
        that method), the individual runs as dots, one dashed line per ceiling.
    """
    _check_columns("results", results, [x, y])
    ax = _axes(ax, figsize=(1.5 + 0.8 * results[x].nunique(), 3.5))
    sns.barplot(data=results, x=x, y=y, errorbar="sd", color="0.8", ax=ax)
    sns.stripplot(data=results, x=x, y=y, color="0.2", size=4, ax=ax)
    palette = sns.color_palette("dark", n_colors=max(len(ceilings), 1))
    for i, (name, value) in enumerate(ceilings.items()):
        ax.axhline(value, linestyle="--", color=palette[i], label=f"{name} ({value:.3f})")
    if ceilings:
        ax.legend(loc="lower right", fontsize=9)  # 9 pt: legible at the column width
    ax.tick_params(axis="x", labelrotation=30)
    return ax


def plot_attention(
    weights: object,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    *,
    ax: Axes | None = None,
) -> Axes:
    """Heat map of attention weights: row ``i`` shows where query ``i`` looks.

    Args:
        weights: attention weights, shape ``(T_q, T_k)`` (rows sum to 1 after a softmax).
        x_labels: names of the ``T_k`` keys (e.g. image regions).
        y_labels: names of the ``T_q`` queries (e.g. tokens).
        ax: where to draw.

    Returns:
        The ``Axes`` holding the heat map.
    """
    weights = _as_array(weights, "weights")
    if weights.ndim != 2:
        raise ValueError(f"weights must have shape (T_q, T_k), got {weights.shape}; "
                         "pick one sample and one head first")
    for name, names, size in (("x_labels", x_labels, weights.shape[1]),
                              ("y_labels", y_labels, weights.shape[0])):
        if names is not None and len(names) != size:
            raise ValueError(f"{name} must have {size} entries to match weights "
                             f"{weights.shape}, got {len(names)}")
    ax = _axes(ax, figsize=(1.5 + 0.4 * weights.shape[1], 1.0 + 0.35 * weights.shape[0]))
    sns.heatmap(weights, vmin=0.0, cmap="viridis", ax=ax,
                xticklabels=x_labels if x_labels is not None else "auto",
                yticklabels=y_labels if y_labels is not None else "auto")
    ax.set(xlabel="key", ylabel="query")
    return ax


def plot_robustness(
    df: pd.DataFrame,
    *,
    x: str = "missing_rate",
    y: str = "score",
    hue: str = "method",
    ax: Axes | None = None,
) -> Axes:
    """Score against a corruption level (missing rate, noise), one line per method.

    Args:
        df: one row per run, with columns ``x``, ``y`` and ``hue``; several rows with the
            same (``hue``, ``x``) (seeds) are drawn as mean and a band of one standard
            deviation.
        x: the column with the corruption level.
        y: the column with the score.
        hue: the column naming the method.
        ax: where to draw.

    Returns:
        The ``Axes``, one line per method.
    """
    _check_columns("df", df, [x, y, hue])
    ax = _axes(ax)
    sns.lineplot(data=df, x=x, y=y, hue=hue, style=hue, marker="o", errorbar="sd", ax=ax)
    return ax


def plot_reliability(probs: object, y: object, *, n_bins: int = 15,
                     ax: Axes | None = None) -> Axes:
    """Reliability diagram (Guo et al., ICML 2017): accuracy against confidence per bin.

    Args:
        probs: predicted class probabilities, shape ``(N, C)``.
        y: true class indices, shape ``(N,)``.
        n_bins: number of equal-width confidence bins.
        ax: where to draw.

    Returns:
        The ``Axes``: one bar per bin (height: accuracy in the bin), the diagonal of
        perfect calibration, and the ECE in the title.
    """
    table = reliability_table(probs, y, n_bins)
    ax = _axes(ax, figsize=(3.5, 3.5))
    width = 1.0 / n_bins
    ax.bar(table["lower"], table["accuracy"].fillna(0.0), width=width, align="edge",
           edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    ece = expected_calibration_error(probs, y, n_bins)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy",
           title=f"ECE = {ece:.3f}")
    ax.legend(loc="upper left", fontsize=9)  # 9 pt: legible at the column width
    return ax
