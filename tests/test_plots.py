"""Tests of mmtutor.plots: each figure draws the artists it promises, headless."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402

from mmtutor import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def history(offset: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 0.6, 0.4],
                         "val_loss": [1.1, 0.8, 0.7], "val_accuracy": [0.5, 0.7, 0.8 + offset],
                         "seconds": [0.1, 0.1, 0.1]})


def test_learning_curves_one_and_several_runs():
    ax = plots.plot_learning_curves(history())
    assert len(ax.lines) >= 2  # train_loss, val_loss
    ax = plots.plot_learning_curves({"concat": history(), "gated": history(0.1)},
                                    columns=["val_accuracy"])
    drawn = [line for line in ax.lines if len(line.get_xdata()) == 3]
    assert len(drawn) == 2
    assert ax.get_ylabel() == "val_accuracy"
    with pytest.raises(ValueError, match="missing"):
        plots.plot_learning_curves(history(), columns=["val_f1"])


def test_confusion_matrix_counts():
    fig, ax = plt.subplots()
    out = plots.plot_confusion_matrix([0, 1, 1, 2], [0, 1, 0, 2], labels=["a", "b", "c"], ax=ax)
    assert out is ax
    mesh = next(c for c in ax.collections if isinstance(c, QuadMesh))
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(3, 3),
                                  [[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert len(ax.texts) == 9  # one count per cell


def test_vs_ceiling_bars_and_dashed_lines():
    results = pd.DataFrame({"method": ["concat"] * 3 + ["late"] * 3,
                            "seed": [0, 1, 2] * 2, "score": [0.8, 0.82, 0.81, 0.7, 0.72, 0.71]})
    ceilings = {"text only": 0.72, "both": 0.9}
    ax = plots.plot_vs_ceiling(results, ceilings)
    assert len(ax.patches) == 2
    assert ax.patches[0].get_height() == pytest.approx(0.81)
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert sorted(line.get_ydata()[0] for line in dashed) == [0.72, 0.9]
    assert len(ax.get_legend().get_texts()) == 2


def test_attention_heat_map():
    weights = np.full((2, 3), 1 / 3)
    ax = plots.plot_attention(weights, ["r1", "r2", "r3"], ["tok1", "tok2"])
    mesh = next(c for c in ax.collections if isinstance(c, QuadMesh))
    assert np.asarray(mesh.get_array()).size == 6
    assert [t.get_text() for t in ax.get_yticklabels()] == ["tok1", "tok2"]
    with pytest.raises(ValueError, match="x_labels must have 3 entries"):
        plots.plot_attention(weights, ["r1"], None)
    with pytest.raises(ValueError, match=r"\(T_q, T_k\)"):
        plots.plot_attention(np.ones((2, 2, 2)))


def test_robustness_one_line_per_method():
    df = pd.DataFrame({"missing_rate": [0.0, 0.5, 1.0] * 2, "score": [0.9, 0.8, 0.5, 0.85, 0.8, 0.7],
                       "method": ["concat"] * 3 + ["late"] * 3})
    ax = plots.plot_robustness(df)
    drawn = [line for line in ax.lines if len(line.get_xdata()) == 3]
    assert len(drawn) == 2
    with pytest.raises(ValueError, match="missing"):
        plots.plot_robustness(df, x="noise")


def test_reliability_diagram():
    probs = np.array([[0.95, 0.05], [0.85, 0.15], [0.3, 0.7], [0.35, 0.65], [0.55, 0.45]])
    ax = plots.plot_reliability(probs, [0, 0, 0, 1, 1], n_bins=5)
    assert len(ax.patches) == 5
    assert [p.get_height() for p in ax.patches] == pytest.approx([0, 0, 0, 0.5, 1.0])
    assert ax.get_title().startswith("ECE = ")
    assert any(line.get_linestyle() == "--" for line in ax.lines)
