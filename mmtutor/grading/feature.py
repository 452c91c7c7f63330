"""Checks for feature-level fusion: concatenation and the weighted sum with projections.

The references are :class:`mmtutor.fusion.ConcatFusion` and
:class:`mmtutor.fusion.WeightedSumFusion` (``alpha="per_modality"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from mmtutor.fusion import ConcatFusion, WeightedSumFusion
from mmtutor.grading.checks import (
    Case,
    CheckFailed,
    CheckReport,
    cases_on_devices,
    compare_tensors,
    run_check,
)

__all__ = ["check_concat_fusion", "check_weighted_sum", "random_features"]


def random_features(
    dims: Mapping[str, int], lead: tuple[int, ...], *, seed: int, dtype: torch.dtype,
    device: str,
) -> dict[str, Tensor]:
    """``{m: (*lead, d_m)}`` standard-normal features, in the order ``dims`` lists them."""
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(*lead, d, generator=g, dtype=dtype).to(device) for m, d in dims.items()}


def _present(pattern: Mapping[str, list[bool]], device: str) -> dict[str, Tensor]:
    return {m: torch.tensor(v, device=device) for m, v in pattern.items()}


# (description, (dims in the order the dict is given, leading dims, present pattern or None))
_VECTOR_CASES = [
    ("two modalities, batch of 4", ({"image": 3, "text": 5}, (4,), None)),
    ("dict given in unsorted order", ({"text": 2, "image": 6}, (3,), None)),
    ("three modalities, per-token features (B, T, d)",
     ({"text": 4, "image": 3, "audio": 2}, (2, 5), None)),
    ("image missing for samples 1 and 3",
     ({"image": 3, "text": 4}, (4,), {"image": [True, False, True, False]})),
    ("text missing for sample 0, image for sample 2",
     ({"image": 2, "text": 3}, (3,), {"image": [True, True, False], "text": [False, True, True]})),
    ("no modality present for sample 1",
     ({"image": 2, "text": 3}, (2,), {"image": [True, False], "text": [True, False]})),
]


def _vector_cases(compare: Callable[..., None]) -> list[Case]:
    """Every vector case on every device (the first also in float64)."""

    def run(spec, dtype, device, seed):
        dims, lead, present = spec
        x = random_features(dims, lead, seed=seed, dtype=dtype, device=device)
        flags = None if present is None else _present(present, device)
        compare(dims, x, flags)

    return cases_on_devices(_VECTOR_CASES, run)


def check_concat_fusion(fn: Callable[..., Tensor]) -> CheckReport:
    """Check a concatenation fusion against :class:`~mmtutor.fusion.ConcatFusion`.

    Args:
        fn: ``fn(features, present=None) -> Tensor``; ``features`` is ``{m: (..., d_m)}``,
            ``present`` optional ``{m: (B,)}`` bool. The answer concatenates the modalities
            in sorted order along the last dim, a missing modality's block set to zero:
            ``(..., sum_m d_m)``, same dtype and device as the inputs.

    Returns:
        A :class:`~mmtutor.grading.checks.CheckReport`; raises
        :class:`~mmtutor.grading.checks.CheckFailed` on the first wrong case.
    """

    def compare(dims, x, present):
        want = ConcatFusion(dims).to(next(iter(x.values())).device)(x, present)  # (..., sum d)
        got = fn(x) if present is None else fn(x, present)
        hints = []
        if list(dims) != sorted(dims):
            hints.append(("the concatenation in the dict's order; sort the modality names",
                          torch.cat([x[m] for m in dims], dim=-1)))
        if present is not None:
            hints.append(("the concatenation with the missing modalities left in; zero the "
                          "block of a missing modality", torch.cat([x[m] for m in sorted(dims)],
                                                                   dim=-1)))
        compare_tensors(got, want, hints=hints)

    return run_check("check_concat_fusion", _vector_cases(compare))


def check_weighted_sum(module_cls: Callable[..., nn.Module]) -> CheckReport:
    """Check a weighted-sum fusion module against :class:`~mmtutor.fusion.WeightedSumFusion`.

    Args:
        module_cls: ``module_cls(input_dims, output_dim)`` builds an ``nn.Module`` with
            ``proj``, an ``nn.ModuleList`` of one ``nn.Linear(d_m, output_dim)`` per modality
            in sorted order, and ``weight_logits``, an ``nn.Parameter`` of shape ``(M,)``.
            Its ``forward(features, present=None)`` returns
            ``z = sum_m w_m proj_m(x_m)`` with ``w = softmax(weight_logits)`` renormalised
            over each sample's present modalities (``z = 0`` when none is present):
            ``(..., output_dim)``.

    Returns:
        A :class:`~mmtutor.grading.checks.CheckReport`; raises
        :class:`~mmtutor.grading.checks.CheckFailed` on the first wrong case.
    """
    output_dim = 4

    def build(dims, device, dtype):
        torch.manual_seed(0)
        ref = WeightedSumFusion(dims, output_dim=output_dim, alpha="per_modality")
        with torch.no_grad():  # distinct weights: uniform ones would hide a wrong weighting
            ref.weight_logits.copy_(torch.linspace(-1.0, 1.5, len(dims)))
        ref = ref.to(device=device, dtype=dtype)
        student = module_cls(dims, output_dim)
        if not isinstance(student, nn.Module):
            raise CheckFailed(f"expected an nn.Module, got {type(student).__name__}")
        want = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
        have = {k: tuple(v.shape) for k, v in student.state_dict().items()}
        if want != have:
            raise CheckFailed(
                f"expected the parameters {want} (proj.j for the j-th modality in sorted "
                f"order), got {have}"
            )
        student.load_state_dict(ref.state_dict())
        return ref, student.to(device=device, dtype=dtype)

    def compare(dims, x, present):
        device, dtype = next(iter(x.values())).device, next(iter(x.values())).dtype
        ref, student = build(dims, device, dtype)
        want = ref(x, present)  # (..., output_dim)
        got = student(x) if present is None else student(x, present)
        raw = sum(w * p(x[m]) for w, p, m in  # non-convex: raw logits as weights
                  zip(ref.weight_logits, ref.proj, sorted(dims), strict=True))
        compare_tensors(got, want, hints=[
            ("weights that are the raw weight_logits; they must be non-negative and sum to 1",
             raw),
        ])
        got.float().sum().backward()
        if student.weight_logits.grad is None or not student.weight_logits.grad.abs().sum() > 0:
            raise CheckFailed("weight_logits got no gradient: the weights must be computed "
                              "from weight_logits inside forward, so training can change them")

    return run_check("check_weighted_sum", _vector_cases(compare))
