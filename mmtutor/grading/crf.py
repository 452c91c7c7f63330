"""Checks for the linear-chain CRF: the forward algorithm (``log Z``) and Viterbi decoding.

The reference is :class:`mmtutor.heads.CRF` (``log_partition`` and ``decode``) with the
same start, transition and end scores as the student's function gets.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from mmtutor.grading.checks import (
    Case,
    CheckFailed,
    CheckReport,
    cases_on_devices,
    compare_tensors,
    run_check,
)
from mmtutor.heads import CRF

__all__ = ["check_crf_forward", "check_viterbi"]

# (description, (B, T, K, lengths, scale of the emissions))
_CASES = [
    ("no padding, 2 sequences of 4 tokens, 3 tags", (2, 4, 3, [4, 4], 1.0)),
    ("padded: lengths 5, 2 and 3", (3, 5, 4, [5, 2, 3], 1.0)),
    ("a sequence of a single token", (2, 3, 3, [1, 3], 1.0)),
    ("a single tag (K = 1)", (2, 3, 1, [3, 2], 1.0)),
    ("large scores (about 50 per token): exp would overflow", (2, 6, 3, [6, 4], 50.0)),
]


def _inputs(B, T, K, lengths, scale, *, seed, dtype, device):
    """Emissions ``(B, T, K)``, mask ``(B, T)`` and a CRF with random scores on ``device``."""
    g = torch.Generator().manual_seed(seed)
    emissions = (scale * torch.randn(B, T, K, generator=g, dtype=dtype)).to(device)
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).to(device)  # (B, T)
    crf = CRF(K)
    with torch.no_grad():
        for p in (crf.start_transitions, crf.transitions, crf.end_transitions):
            p.copy_(torch.randn(p.shape, generator=g))  # asymmetric, far from 0
    crf = crf.to(device=device, dtype=dtype)
    return emissions, mask, crf


def _crf_cases(compare: Callable[..., None]) -> list[Case]:
    def run(spec, dtype, device, seed):
        compare(*_inputs(*spec, seed=seed, dtype=dtype, device=device))

    return cases_on_devices(_CASES, run, float64_case=1)


def _scores(crf: CRF) -> tuple[Tensor, Tensor, Tensor]:
    """Copies of ``(start (K,), transitions (K, K), end (K,))`` to hand to a student."""
    return tuple(p.detach().clone() for p in
                 (crf.start_transitions, crf.transitions, crf.end_transitions))


def check_crf_forward(fn: Callable[..., Tensor]) -> CheckReport:
    """Check the forward algorithm against :meth:`mmtutor.heads.CRF.log_partition`.

    Args:
        fn: ``fn(emissions, mask, start, transitions, end) -> Tensor``: ``emissions``
            ``(B, T, K)``, ``mask`` ``(B, T)`` bool (left-aligned, first token real),
            ``start`` ``(K,)``, ``transitions`` ``(K, K)`` (``[i, j]``: tag ``j`` after tag
            ``i``), ``end`` ``(K,)``. The answer is ``log Z`` ``(B,)``: the log-sum-exp of
            the scores of every tag sequence of each sentence's real tokens.

    Returns:
        A :class:`~mmtutor.grading.checks.CheckReport`; raises
        :class:`~mmtutor.grading.checks.CheckFailed` on the first wrong case.
    """

    def compare(emissions, mask, crf):
        want = crf.log_partition(emissions, mask)  # (B,)
        got = fn(emissions.clone(), mask.clone(), *_scores(crf))
        transposed = CRF(crf.num_tags).to(emissions)
        with torch.no_grad():
            transposed.load_state_dict(crf.state_dict())
            transposed.transitions.copy_(crf.transitions.T)
        compare_tensors(got, want, what="log Z", hints=[
            ("log Z with the transition matrix transposed; transitions[i, j] scores tag j "
             "after tag i", transposed.log_partition(emissions, mask)),
            ("the best path's score (max instead of log-sum-exp)",
             _viterbi_score(crf, emissions, mask)),
        ])

    return run_check("check_crf_forward", _crf_cases(compare))


def _viterbi_score(crf: CRF, emissions: Tensor, mask: Tensor) -> Tensor:
    """``(B,)`` score of the best tag sequence (max-product form of the forward pass)."""
    paths = crf.decode(emissions, mask)
    tags = torch.zeros(mask.shape, dtype=torch.long, device=mask.device)  # (B, T)
    for b, p in enumerate(paths):
        tags[b, : len(p)] = torch.tensor(p)
    return crf.score(emissions, tags, mask)  # (B,)


def check_viterbi(fn: Callable[..., list]) -> CheckReport:
    """Check Viterbi decoding against :meth:`mmtutor.heads.CRF.decode`.

    Args:
        fn: ``fn(emissions, mask, start, transitions, end) -> list[list[int]]`` with the
            inputs of :func:`check_crf_forward`; the answer is, for each sentence, the tag
            sequence of highest score over its real tokens (as long as the sentence).

    Returns:
        A :class:`~mmtutor.grading.checks.CheckReport`; raises
        :class:`~mmtutor.grading.checks.CheckFailed` on the first wrong case. The message
        gives how much the best path outscores the one returned, never the path.
    """

    def compare(emissions, mask, crf):
        want = crf.decode(emissions, mask)
        got = fn(emissions.clone(), mask.clone(), *_scores(crf))
        got = got.tolist() if isinstance(got, Tensor) else got
        if not isinstance(got, list | tuple) or len(got) != len(want):
            raise CheckFailed(f"expected a list of {len(want)} paths (one per sentence), got "
                              f"{type(got).__name__} {got!r:.60}")
        for b, (path, best) in enumerate(zip(got, want, strict=True)):
            path = [int(t) for t in path]
            if len(path) != len(best):
                raise CheckFailed(f"sentence {b} has {len(best)} real tokens, so expected a "
                                  f"path of {len(best)} tags, got {len(path)}")
            if any(not 0 <= t < crf.num_tags for t in path):
                raise CheckFailed(f"sentence {b}: tags must lie in [0, {crf.num_tags})")
            if path != best:
                tags = torch.zeros(1, mask.shape[1], dtype=torch.long, device=mask.device)
                tags[0, : len(path)] = torch.tensor(path)
                yours = crf.score(emissions[b : b + 1], tags, mask[b : b + 1])  # (1,)
                top = _viterbi_score(crf, emissions[b : b + 1], mask[b : b + 1])  # (1,)
                raise CheckFailed(
                    f"sentence {b} (length {len(best)}): your path is not the best one; a "
                    f"path scoring {float((top - yours).detach()):.3g} higher exists (an off-by-one in "
                    "the back-pointers? the final end scores forgotten?)"
                )

    return run_check("check_viterbi", _crf_cases(compare))
