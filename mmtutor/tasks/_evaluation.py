"""Scored predictions of a split: :class:`NEREvaluation` (entities) and :class:`ClassifyEvaluation`.

Both hold the gold and predicted labels with their reports (pandas frames) and turn into
plain JSON with ``to_dict`` for ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from mmtutor import metrics as mm
from mmtutor.tasks._run import frame_table

__all__ = ["NEREvaluation", "ClassifyEvaluation"]


def _micro(report: pd.DataFrame, column: str) -> float:
    return float(report.loc["micro avg", column]) if "micro avg" in report.index else 0.0


@dataclass
class NEREvaluation:
    """Gold and predicted tags of a split, with entity-level and token-level reports.

    Entity F1 comes in both seqeval modes (:data:`mmtutor.metrics.ENTITY_MODES`):
    :attr:`entity_f1_conlleval` is the number published CoNLL-2003 and Twitter-2015/2017
    results report (the ``conlleval`` script: an ``I-X`` after ``O`` starts an entity);
    :attr:`entity_f1_strict` gives no credit to ill-formed spans. ``entity_f1`` and
    ``entity_report`` are the strict ones (what training selects epochs on).

    Attributes:
        gold, predicted: one list of IOB2 tags per sentence.
        entity_report: seqeval (strict IOB2) precision, recall, F1 and support per entity
            type, then ``micro avg``, ``macro avg`` and ``weighted avg``.
        token_report: scikit-learn precision, recall and F1 per *tag*, ``O`` included,
            then ``micro avg`` (= token accuracy) and ``macro avg``.
    """

    gold: list[list[str]]
    predicted: list[list[str]]
    entity_report: pd.DataFrame
    token_report: pd.DataFrame

    @classmethod
    def from_tags(cls, gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> NEREvaluation:
        """Score predicted tags against gold tags."""
        gold, predicted = [list(s) for s in gold], [list(s) for s in predicted]
        return cls(gold, predicted, mm.entity_report(gold, predicted), mm.token_report(gold, predicted))

    @cached_property
    def entity_report_conlleval(self) -> pd.DataFrame:
        """The entity report in conlleval mode (the published CoNLL / Twitter measure)."""
        return mm.entity_report(self.gold, self.predicted, mode="conlleval")

    @property
    def entity_f1_strict(self) -> float:
        """Entity-level micro F1, strict IOB2: a span counts only with ``B-``, exact span and type."""
        return _micro(self.entity_report, "f1-score")

    @property
    def entity_f1_conlleval(self) -> float:
        """Entity-level micro F1 as the ``conlleval`` script computes it (seqeval's default mode)."""
        return _micro(self.entity_report_conlleval, "f1-score")

    @property
    def entity_f1(self) -> float:
        """The strict entity F1 (:attr:`entity_f1_strict`)."""
        return self.entity_f1_strict

    @property
    def entity_precision(self) -> float:
        """Entity-level micro precision (strict)."""
        return _micro(self.entity_report, "precision")

    @property
    def entity_recall(self) -> float:
        """Entity-level micro recall (strict)."""
        return _micro(self.entity_report, "recall")

    @property
    def token_f1(self) -> float:
        """Token-level micro F1 over every tag, ``O`` included (equals token accuracy)."""
        return _micro(self.token_report, "f1-score")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: the headline numbers and the reports (row -> column -> value)."""
        return {
            "entity_f1_conlleval": self.entity_f1_conlleval,
            "entity_f1_strict": self.entity_f1_strict,
            "entity_precision_strict": self.entity_precision,
            "entity_recall_strict": self.entity_recall,
            "token_micro_f1_with_O": self.token_f1,
            "n_sentences": len(self.gold),
            "n_tokens": sum(len(s) for s in self.gold),
            "entity_report_strict": frame_table(self.entity_report),
            "entity_report_conlleval": frame_table(self.entity_report_conlleval),
            "token_report": frame_table(self.token_report),
        }

@dataclass
class ClassifyEvaluation:
    """Gold and predicted classes of a split, with the scikit-learn scores.

    Attributes:
        gold, predicted: ``(N,)`` class indices.
        classes: the class labels in index order.
        report: precision, recall, F1 and support per class, then ``accuracy``,
            ``macro avg`` and ``weighted avg`` (:func:`mmtutor.metrics.classification_report_frame`).
    """

    gold: np.ndarray
    predicted: np.ndarray
    classes: list[str | int]
    report: pd.DataFrame

    @classmethod
    def from_indices(cls, gold: Sequence[int], predicted: Sequence[int],
                     classes: Sequence[str | int]) -> ClassifyEvaluation:
        """Score predicted class indices against gold ones (every class reported)."""
        gold, predicted = np.asarray(gold, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
        report = mm.classification_report_frame(gold, predicted, labels=list(range(len(classes))),
                                                target_names=[str(c) for c in classes])
        return cls(gold, predicted, list(classes), report)

    @property
    def accuracy(self) -> float:
        """Fraction of correct predictions."""
        return mm.accuracy(self.gold, self.predicted) if len(self.gold) else float("nan")

    @property
    def macro_f1(self) -> float:
        """Unweighted mean of the per-class F1 scores (every class counts, seen or not)."""
        return float(self.report.loc["macro avg", "f1-score"])

    def confusion(self) -> pd.DataFrame:
        """Counts ``(C, C)``: rows are the gold classes, columns the predicted ones."""
        c = len(self.classes)
        counts = np.zeros((c, c), dtype=np.int64)
        np.add.at(counts, (self.gold, self.predicted), 1)
        names = [str(k) for k in self.classes]
        return pd.DataFrame(counts, index=pd.Index(names, name="gold"),
                            columns=pd.Index(names, name="predicted"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: accuracy, macro-F1, sample count and the per-class report."""
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "n": len(self.gold),
                "report": frame_table(self.report)}


