"""What a fusion module costs: parameters, FLOPs and time of one step, measured on random input.

Import it as ``from mmtutor.fusion.cost import measure_fusion``. Chapters 6 and 10 measure a few fusions live with :func:`measure_fusion`;
``benchmarks/fusion_cost.py`` (``make bench``) runs it over every fusion, width and device
and adds peak memory. FLOPs are counted by :class:`torch.utils.flop_counter.FlopCounterMode`,
which counts matrix products, convolutions and attention kernels, not element-wise work
(such as the outer product of tensor fusion).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from mmtutor.fusion import FUSION_LEVELS, Fusion, build_fusion

__all__ = ["fusion_inputs", "median_seconds", "measure_fusion"]


def fusion_inputs(fusion: Fusion, width: int, *, batch: int, seq_len: int = 16,
                  device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Random inputs of the fusion's kind that require gradients (as behind an encoder).

    Returns:
        Per modality ``(batch, width)`` for vector and logit fusions, ``(batch, seq_len,
        width)`` for sequence fusions (no padding).
    """
    g = torch.Generator().manual_seed(0)
    shape = (batch, seq_len, width) if fusion.input_kind == "sequence" else (batch, width)
    return {m: torch.randn(*shape, generator=g).to(device).requires_grad_()
            for m in fusion.modalities}


def _sync(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)  # CUDA runs asynchronously: wait before reading the clock


def median_seconds(fn: Callable[[], object], *, device: str | torch.device = "cpu",
                   repeats: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls.

    The median ignores the odd slow call (a busy machine, a garbage collection).
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats!r}, "
                         f"warmup={warmup!r}")
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_fusion(name: str, width: int, *, batch: int = 256, seq_len: int = 16,
                   repeats: int = 3, warmup: int = 1, device: str | torch.device = "cpu",
                   **options: Any) -> dict[str, Any]:
    """Cost of the fusion ``name`` with both modalities of size ``width``.

    Args:
        name: a key of :data:`mmtutor.fusion.FUSIONS`.
        width: ``d``, the size of each modality's features (the number of classes ``C``
            for decision-level fusions).
        batch, seq_len: input size (``seq_len`` only for sequence fusions).
        repeats, warmup: as in :func:`median_seconds`.
        device: where to run.
        **options: passed to :func:`~mmtutor.fusion.build_fusion` (``output_dim=64``,
            ``rank=4``, ...).

    Returns:
        ``fusion``, ``level``, ``input`` (kind), ``width``, ``params``, ``fwd MFLOP``,
        ``fwd+bwd MFLOP``, ``fwd ms`` (under ``no_grad``) and ``fwd+bwd ms`` (forward, then
        backward of ``out.sum()``).
    """
    torch.manual_seed(0)
    fusion = build_fusion(name, {"text": width, "image": width}, **options).to(device)
    x = fusion_inputs(fusion, width, batch=batch, seq_len=seq_len, device=device)

    def forward() -> None:
        with torch.no_grad():
            fusion(x)

    def forward_backward() -> None:
        fusion(x).sum().backward()  # output (B, out) or (B, T, out), summed to a scalar

    flops = {}
    for label, fn in (("fwd", forward), ("fwd+bwd", forward_backward)):
        with FlopCounterMode(display=False) as counter:
            fn()
        flops[label] = counter.get_total_flops()
    row = {
        "fusion": name,
        "level": FUSION_LEVELS[name],
        "input": fusion.input_kind,
        "width": width,
        "params": sum(p.numel() for p in fusion.parameters()),
        "fwd MFLOP": flops["fwd"] / 1e6,
        "fwd+bwd MFLOP": flops["fwd+bwd"] / 1e6,
        "fwd ms": 1e3 * median_seconds(forward, device=device, repeats=repeats, warmup=warmup),
        "fwd+bwd ms": 1e3 * median_seconds(forward_backward, device=device, repeats=repeats,
                                           warmup=warmup),
    }
    fusion.zero_grad(set_to_none=True)
    return row
