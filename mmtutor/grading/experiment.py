"""Check for the fusion-level experiment: the gain of each fusion over the best single modality.

The table is the one :func:`mmtutor.experiments.run_grid` returns (one row per setting,
seed and method, with ``level`` and ``accuracy``); the reference is :func:`fusion_gain`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from mmtutor.grading.checks import Case, CheckFailed, CheckReport, run_check

__all__ = ["check_fusion_gain", "fusion_gain"]


def fusion_gain(frame: pd.DataFrame) -> pd.Series:
    """Mean accuracy of each fused method minus that of the setting's best unimodal method.

    Args:
        frame: columns ``setting``, ``seed``, ``method``, ``level``, ``accuracy``.

    Returns:
        A Series indexed by ``(setting, method)`` over the methods whose ``level`` is not
        ``"unimodal"``; the means are over seeds, and the best unimodal method is the one
        with the highest mean accuracy in that setting.
    """
    mean = frame.groupby(["setting", "method", "level"])["accuracy"].mean().reset_index()
    uni = mean[mean["level"] == "unimodal"].groupby("setting")["accuracy"].max()
    fused = mean[mean["level"] != "unimodal"].set_index(["setting", "method"])["accuracy"]
    return (fused - uni.reindex(fused.index.get_level_values("setting")).to_numpy()).rename("gain")


def _frame(settings: int, seeds: int, seed: int) -> pd.DataFrame:
    """A results table of random accuracies for ``settings`` settings and ``seeds`` seeds."""
    rng = np.random.default_rng(seed)
    methods = {"text only": "unimodal", "image only": "unimodal", "concat": "feature",
               "cross_attention": "model", "average": "decision"}
    rows = [{"setting": f"setting {s}", "seed": r, "method": m, "level": lvl,
             "accuracy": float(rng.uniform(0.3, 0.95))}
            for s in range(settings) for r in range(seeds) for m, lvl in methods.items()]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed)  # rows in no order


def check_fusion_gain(fn: Callable[[pd.DataFrame], pd.Series]) -> CheckReport:
    """Check ``fn(frame) -> Series``, the gain of every fusion, against :func:`fusion_gain`.

    Args:
        fn: takes a results table (columns ``setting``, ``seed``, ``method``, ``level``,
            ``accuracy``) and returns a Series indexed by ``(setting, method)`` of the fused
            methods: mean accuracy over seeds minus the best unimodal mean of the setting.

    Returns:
        A :class:`~mmtutor.grading.checks.CheckReport`; raises
        :class:`~mmtutor.grading.checks.CheckFailed` on the first wrong case.
    """

    def run(settings: int, seeds: int, seed: int) -> None:
        frame = _frame(settings, seeds, seed)
        want = fusion_gain(frame)
        got = fn(frame.copy())
        if not isinstance(got, pd.Series):
            raise CheckFailed(f"expected a pandas Series, got {type(got).__name__}")
        if set(got.index) != set(want.index):
            extra, missing = set(got.index) - set(want.index), set(want.index) - set(got.index)
            raise CheckFailed(
                f"expected one entry per (setting, fused method), {len(want)} in all; got "
                f"{len(got)}, with {len(extra)} unexpected (unimodal rows? a wrong index?) "
                f"and {len(missing)} missing"
            )
        diff = (got.reindex(want.index).astype(float) - want).abs()
        if not (diff < 1e-9).all():
            raise CheckFailed(
                f"{int((diff >= 1e-9).sum())} of {len(want)} gains differ from the reference "
                "(means over seeds? the best unimodal method of the same setting?)"
            )

    cases = [Case(f"{a} setting(s), {b} seed(s)", lambda a=a, b=b, s=s: run(a, b, s))
             for a, b, s in ((1, 1, 0), (2, 3, 1), (3, 2, 2))]
    return run_check("check_fusion_gain", cases)
