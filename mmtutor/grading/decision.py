"""Checks for decision-level fusion: learned late-fusion weights and leak-free stacking folds.

The reference of the weighted vote is :class:`mmtutor.fusion.WeightedVoteFusion` (learnable
weights ``w = softmax(a)``). Stacking (Wolpert 1992, :class:`mmtutor.fusion.Stacking`) must
fit its meta-classifier on predictions the experts made for samples they were not trained
on: :func:`check_out_of_fold_splits` checks the folds that give those predictions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from mmtutor.fusion import WeightedVoteFusion
from mmtutor.grading.checks import (
    Case,
    CheckFailed,
    CheckReport,
    cases_on_devices,
    compare_tensors,
    run_check,
)
from mmtutor.grading.feature import random_features

__all__ = ["check_late_fusion_weights", "check_out_of_fold_splits"]

# (description, (modalities, leading dims, present pattern or None))
_CASES = [
    ("two modalities, 3 classes, batch of 4", (("image", "text"), (4,), None)),
    ("three modalities, per-token logits (B, T, C)",
     (("audio", "image", "text"), (2, 3), None)),
    ("image missing for sample 1: renormalise over the present ones",
     (("image", "text"), (3,), {"image": [True, False, True]})),
    ("no modality present for sample 0: expect the uniform distribution",
     (("image", "text"), (2,), {"image": [False, True], "text": [False, True]})),
]


def check_late_fusion_weights(fn: Callable[..., Tensor]) -> CheckReport:
    """Check a weighted vote with learned weights against the package's ``WeightedVoteFusion``.

    Args:
        fn: ``fn(logits, weight_logits, present=None) -> Tensor`` with ``logits``
            ``{m: (..., C)}``, ``weight_logits`` ``(M,)`` (one per modality, sorted order)
            and ``present`` optional ``{m: (B,)}`` bool. The answer is the log of the
            mixture ``sum_m w_m softmax(logits_m)`` with ``w = softmax(weight_logits)``
            renormalised over each sample's present modalities (none present: the uniform
            distribution), as log-probabilities ``(..., C)``.

    Returns:
        A :class:`~mmtutor.grading.checks.CheckReport`; raises
        :class:`~mmtutor.grading.checks.CheckFailed` on the first wrong case.
    """
    C = 3

    def run(spec, dtype, device, seed):
        names, lead, pattern = spec
        logits = random_features(dict.fromkeys(names, C), lead, seed=seed, dtype=dtype,
                                 device=device)
        logits = {m: 3 * x for m, x in logits.items()}  # confident experts
        a = torch.linspace(-1.0, 1.0, len(names), dtype=dtype, device=device)  # (M,)
        present = None if pattern is None else {
            m: torch.tensor(v, device=device) for m, v in pattern.items()}
        ref = WeightedVoteFusion(dict.fromkeys(names, C)).to(device=device, dtype=dtype)
        with torch.no_grad():
            ref.weight_logits.copy_(a)
        want = ref(logits, present)  # (..., C)
        got = fn(logits, a.clone(), present) if present else fn(logits, a.clone())
        if isinstance(got, Tensor) and got.shape == want.shape:
            total = got.detach().double().logsumexp(dim=-1)  # (...,) log of sum_c p_c
            if not torch.allclose(total, torch.zeros_like(total), atol=1e-4):
                raise CheckFailed(
                    "the output must be log-probabilities (exp of each row sums to 1), but "
                    f"the rows sum to between {float(total.exp().min()):.3g} and "
                    f"{float(total.exp().max()):.3g}"
                )
        w = torch.softmax(a, dim=0)  # (M,)
        mixed_logits = sum(w[j] * logits[m] for j, m in enumerate(sorted(names)))  # (..., C)
        compare_tensors(got, want, hints=[
            ("log_softmax of the weighted sum of logits; mix the probabilities instead",
             torch.log_softmax(mixed_logits, dim=-1)),
        ])

    cases = cases_on_devices(_CASES, run)
    return run_check("check_late_fusion_weights", cases)


def check_out_of_fold_splits(fn: Callable[..., list]) -> CheckReport:
    """Check folds for out-of-fold predictions: no sample predicted by a model it trained.

    Args:
        fn: ``fn(n_samples, n_folds, seed) -> list`` of ``n_folds`` pairs
            ``(fit_index, held_out_index)`` of integer arrays: the held-out parts cover every
            sample exactly once, and no fold fits on a sample it holds out.

    Returns:
        A :class:`~mmtutor.grading.checks.CheckReport`; raises
        :class:`~mmtutor.grading.checks.CheckFailed` on the first wrong case.
    """

    def run(n: int, k: int, seed: int) -> None:
        folds = list(fn(n, k, seed))
        if len(folds) != k:
            raise CheckFailed(f"expected {k} folds, got {len(folds)}")
        held_count = np.zeros(n, dtype=int)
        for i, pair in enumerate(folds):
            if len(pair) != 2:
                raise CheckFailed(f"fold {i}: expected a pair (fit_index, held_out_index), "
                                  f"got {len(pair)} items")
            fit, held = (np.asarray(p).ravel() for p in pair)
            for what, idx in (("fit_index", fit), ("held_out_index", held)):
                if idx.size and (not np.issubdtype(idx.dtype, np.integer)
                                 or idx.min() < 0 or idx.max() >= n):
                    raise CheckFailed(f"fold {i}: {what} must hold integers in [0, {n})")
            leak = np.intersect1d(fit, held)
            if leak.size:
                raise CheckFailed(
                    f"fold {i} fits on {leak.size} of the samples it holds out: their "
                    "predictions would leak the labels into the meta-classifier"
                )
            if np.union1d(fit, held).size != n:
                raise CheckFailed(f"fold {i}: fit and held-out parts together must cover all "
                                  f"{n} samples, got {np.union1d(fit, held).size}")
            np.add.at(held_count, held, 1)
        if (held_count != 1).any():
            raise CheckFailed(
                f"every sample must be held out exactly once; {int((held_count == 0).sum())} "
                f"never are and {int((held_count > 1).sum())} are more than once"
            )
        if sorted(map(str, fn(n, k, seed))) != sorted(map(str, folds)):
            raise CheckFailed("the same seed must give the same folds")

    cases = [Case(f"{n} samples, {k} folds, seed {s}", lambda n=n, k=k, s=s: run(n, k, s))
             for n, k, s in ((20, 5, 0), (23, 4, 1), (10, 2, 2))]
    return run_check("check_out_of_fold_splits", cases)
