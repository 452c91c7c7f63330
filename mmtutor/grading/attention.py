"""Check for masked scaled dot-product attention, the core of cross-modal attention.

The reference is :func:`torch.nn.functional.scaled_dot_product_attention`, the call
:class:`mmtutor.fusion.CrossAttentionFusion` makes, with its convention for a query that has
no key at all (a missing modality): the output is 0, not NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from mmtutor.grading.checks import (
    CheckFailed,
    CheckReport,
    cases_on_devices,
    compare_tensors,
    run_check,
)

__all__ = ["check_masked_cross_attention"]


def _reference(q: Tensor, k: Tensor, v: Tensor, key_mask: Tensor, *, scale: bool = True,
               mask_dim: int = -1) -> Tensor:
    """``softmax(q k^T / sqrt(d)) v`` over the unmasked keys; 0 for a query without keys.

    ``scale=False`` and ``mask_dim=-2`` (needs ``T_q == S``) give two classic mistakes,
    used as hints.
    """
    has_key = key_mask.any(dim=1)  # (B,)
    scores = q @ k.transpose(-2, -1) / (math.sqrt(q.shape[-1]) if scale else 1.0)  # (B, Tq, S)
    if mask_dim == -1:
        attn_mask = (key_mask | ~has_key[:, None])[:, None, :]  # (B, 1, S)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                             scale=None if scale else 1.0)  # (B, Tq, dv)
        return torch.where(has_key[:, None, None], out, 0)  # (B, Tq, dv)
    weights = torch.softmax(scores.masked_fill(~key_mask[:, :, None], -1e9), dim=-1)
    return weights @ v  # (B, Tq, dv): the mask applied to the query axis instead


# (description, (B, Tq, S, d, dv, key mask pattern per sample or None for all real))
_CASES = [
    ("no padding: every key real", (2, 3, 4, 8, 8, None)),
    ("padded keys: the last 2 keys of sample 1 masked",
     (2, 3, 5, 8, 8, [[True] * 5, [True, True, True, False, False]])),
    ("as many queries as keys, sample 0 padded",
     (2, 4, 4, 16, 16, [[True, True, False, False], [True] * 4])),
    ("values of another width (d = 8, d_v = 3)",
     (3, 2, 4, 8, 3, [[True] * 4, [True, False, True, False], [False, False, False, True]])),
    ("a missing modality: sample 1 has no key at all (expect 0, not NaN)",
     (2, 3, 4, 8, 8, [[True] * 4, [False] * 4])),
]


def check_masked_cross_attention(fn: Callable[..., Tensor]) -> CheckReport:
    """Check masked scaled dot-product attention.

    Args:
        fn: ``fn(q, k, v, key_mask) -> Tensor`` with queries ``q`` ``(B, T_q, d)``, keys
            ``k`` ``(B, S, d)``, values ``v`` ``(B, S, d_v)`` and ``key_mask`` ``(B, S)``
            bool (True = a real key). The answer is ``softmax(q k^T / sqrt(d)) v`` where
            masked keys get weight 0, ``(B, T_q, d_v)``; a sample without any real key gets
            zeros.

    Returns:
        A :class:`~mmtutor.grading.checks.CheckReport`; raises
        :class:`~mmtutor.grading.checks.CheckFailed` on the first wrong case.
    """

    def run(spec, dtype, device, seed):
        B, Tq, S, d, dv, pattern = spec
        g = torch.Generator().manual_seed(seed)
        q, k = (torch.randn(B, t, d, generator=g, dtype=dtype).to(device) for t in (Tq, S))
        v = torch.randn(B, S, dv, generator=g, dtype=dtype).to(device)
        mask = (torch.ones(B, S, dtype=torch.bool) if pattern is None
                else torch.tensor(pattern)).to(device)  # (B, S)
        want = _reference(q, k, v, mask)  # (B, Tq, dv)
        got = fn(q, k, v, mask)
        if (~mask).any() and isinstance(got, Tensor) and got.shape == want.shape:
            # checked first: what sits at masked keys must not matter
            noise = torch.randn(k.shape, generator=g, dtype=dtype).to(device) * 10
            hide = ~mask[..., None]  # (B, S, 1)
            again = fn(torch.clone(q), torch.where(hide, noise, k),
                       torch.where(hide, noise[..., :1].expand_as(v), v), mask)
            if not torch.allclose(again, got.detach(), atol=1e-5, rtol=1e-4, equal_nan=True):
                raise CheckFailed(
                    "changing the keys and values at masked positions (key_mask False) "
                    "changed the output: masked keys must get attention weight 0"
                )
        hints = [("attention without the 1/sqrt(d) scaling of the scores",
                  _reference(q, k, v, mask, scale=False))]
        if Tq == S:  # a query-axis mask only fits when the axes have one size
            hints.append(("the mask applied to the query axis; it must hide keys (the last "
                          "axis of the scores)", _reference(q, k, v, mask, mask_dim=-2)))
        compare_tensors(got, want, hints=hints)

    cases = cases_on_devices(_CASES, run, float64_case=1)
    return run_check("check_masked_cross_attention", cases)
