"""Tests of mmtutor.metrics against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmtutor.metrics import (
    accuracy,
    classification_report_frame,
    entity_f1,
    entity_report,
    expected_calibration_error,
    fit_temperature,
    macro_f1,
    reliability_table,
    token_report,
)

# Four sentences, mostly O. The tagger finds every entity's start but cuts two-token
# entities short, and calls one LOC a PER: most tokens are right, few entities are.
TRUE = [
    ["B-PER", "I-PER", "O", "O", "O", "O", "O", "O"],
    ["O", "O", "O", "B-LOC", "I-LOC", "O", "O", "O"],
    ["O", "O", "O", "O", "O", "O", "B-ORG", "I-ORG"],
    ["B-LOC", "O", "O", "O", "O", "O", "O", "O"],
]
PRED = [
    ["B-PER", "O", "O", "O", "O", "O", "O", "O"],
    ["O", "O", "O", "B-LOC", "O", "O", "O", "O"],
    ["O", "O", "O", "O", "O", "O", "B-ORG", "O"],
    ["B-PER", "O", "O", "O", "O", "O", "O", "O"],
]


def test_token_micro_f1_with_o_far_above_entity_f1():
    # Entities: 4 gold, 4 predicted, 0 exact matches -> entity F1 = 0.
    assert entity_f1(TRUE, PRED) == 0.0
    report = token_report(TRUE, PRED)
    # Tokens: 32, of which 4 wrong (3 missed I- tags, 1 LOC->PER) -> micro F1 = 28 / 32.
    assert report.loc["micro avg", "f1-score"] == pytest.approx(28 / 32)
    assert report.loc["micro avg", "support"] == 32
    assert "O" in report.index
    assert report.loc["O", "support"] == 25
    assert report.loc["O", "precision"] == pytest.approx(25 / 28)  # 3 I- tags predicted as O


def test_entity_report_and_strict_iob2():
    report = entity_report(TRUE, TRUE)
    assert report.loc["micro avg", "f1-score"] == 1.0
    assert set(report.index) >= {"LOC", "ORG", "PER", "micro avg", "macro avg"}
    assert report.loc["LOC", "support"] == 2
    # Strict IOB2: an entity that starts with I- is not an entity at all.
    assert entity_f1([["B-PER", "I-PER"]], [["I-PER", "I-PER"]]) == 0.0
    with pytest.raises(ValueError, match="sentence 0"):
        entity_f1([["O", "O"]], [["O"]])


def test_classification_helpers():
    y_true, y_pred = [0, 1, 1, 2], [0, 1, 0, 2]
    assert accuracy(y_true, y_pred) == 0.75
    assert accuracy(torch.tensor(y_true), np.array(y_pred)) == 0.75
    assert macro_f1(y_true, y_pred) == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    frame = classification_report_frame(y_true, y_pred, target_names=["a", "b", "c"])
    assert list(frame.index[:3]) == ["a", "b", "c"]
    assert frame.loc["accuracy", "f1-score"] == 0.75
    assert frame.loc["b", "recall"] == 0.5
    with pytest.raises(ValueError, match="same length"):
        accuracy([0, 1], [0])


def test_ece_matches_hand_computation():
    probs = np.array([
        [0.95, 0.05],  # conf 0.95, right
        [0.85, 0.15],  # conf 0.85, right
        [0.30, 0.70],  # conf 0.70, wrong
        [0.35, 0.65],  # conf 0.65, right
        [0.55, 0.45],  # conf 0.55, wrong
    ])
    y = np.array([0, 0, 0, 1, 1])
    # 5 bins of width 0.2: (0.4, 0.6] holds {0.55}; (0.6, 0.8] holds {0.70, 0.65};
    # (0.8, 1.0] holds {0.95, 0.85}.
    hand = (1 / 5) * abs(0.0 - 0.55) + (2 / 5) * abs(0.5 - 0.675) + (2 / 5) * abs(1.0 - 0.90)
    assert expected_calibration_error(probs, y, n_bins=5) == pytest.approx(hand)
    table = reliability_table(probs, y, n_bins=5)
    assert table["count"].tolist() == [0, 0, 1, 2, 2]
    assert np.isnan(table.loc[0, "accuracy"])
    # Perfect confidence and always right: calibrated.
    assert expected_calibration_error(np.eye(3), [0, 1, 2]) == 0.0


def test_ece_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"probs must have shape \(N, C\)"):
        expected_calibration_error(np.ones(4), [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"y must have shape \(2,\)"):
        expected_calibration_error(np.ones((2, 2)) / 2, [0, 1, 1])
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(np.ones((2, 2)) / 2, [0, 1], n_bins=0)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _calibrated_sample(n=20000, c=4, seed=0):
    """Logits ``z`` and labels drawn from ``softmax(z)``: calibrated by construction."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(n, c))
    p = _softmax(z)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return z, y


@pytest.mark.parametrize("scale", [1.0, 3.0, 0.5])
def test_fit_temperature_recovers_the_scale(scale):
    z, y = _calibrated_sample()
    assert fit_temperature(scale * z, y) == pytest.approx(scale, rel=0.08)


def test_fit_temperature_matches_a_grid_search_and_lowers_ece():
    z, y = _calibrated_sample(n=4000, seed=1)
    logits = 2.5 * z  # overconfident
    t = fit_temperature(logits, y)

    def nll(temp):
        p = _softmax(logits / temp)
        return -np.mean(np.log(p[np.arange(len(y)), y]))

    grid = np.exp(np.linspace(np.log(0.1), np.log(10), 2001))
    best = grid[np.argmin([nll(g) for g in grid])]
    assert t == pytest.approx(best, rel=0.01)
    assert nll(t) <= nll(best) + 1e-9
    before = expected_calibration_error(_softmax(logits), y)
    after = expected_calibration_error(_softmax(logits / t), y)
    assert after < before / 2


def test_fit_temperature_accepts_tensors_and_rejects_bad_input():
    z, y = _calibrated_sample(n=500)
    assert fit_temperature(torch.tensor(z), torch.tensor(y)) == pytest.approx(
        fit_temperature(z, y))
    with pytest.raises(ValueError, match="shape"):
        fit_temperature(z[:, 0], y)
    with pytest.raises(ValueError, match="finite"):
        fit_temperature(np.array([[0.0, -np.inf], [0.0, 1.0]]), [0, 1])
    with pytest.raises(ValueError, match="class indices"):
        fit_temperature(z, np.full(len(z), 7))
    with pytest.raises(ValueError, match="bounds"):
        fit_temperature(z, y, bounds=(2.0, 1.0))
