"""Scaled dot-product attention: PyTorch's fused kernel against the formula written out.

``mmtutor.fusion.CrossAttentionFusion`` calls
``torch.nn.functional.scaled_dot_product_attention`` (SDPA) on its fast path and computes
``softmax(Q K^T / sqrt(d_k)) V`` step by step when asked to return the attention weights.
This script measures both ways at a few sequence lengths (queries ``T_q`` = keys ``S``):

1. the bare kernels on random ``Q (B, h, T, d_k)``, ``K, V (B, h, S, d_k)``, with a boolean key
   mask as the module passes it: the naive formula below against SDPA;
2. the module itself: ``CrossAttentionFusion`` on its SDPA path against its explicit path
   (``return_attention=True``), on text and image sequences of the same length.

For each it asserts that the outputs agree (``torch.testing.assert_close``) and reports the
median forward and forward + backward time, on CPU and on CUDA when present.

    python benchmarks/attention_sdpa.py
    python benchmarks/attention_sdpa.py --lengths 8 --repeats 1 --devices cpu   # smoke run

It prints markdown and writes ``benchmarks/results/attention_sdpa.md``. A benchmark, not a
test: the times depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from _common import (
    add_run_arguments,
    apply_threads,
    devices,
    machine_header,
    markdown_table,
    median_seconds,
    write_report,
)

from mmtutor.fusion import CrossAttentionFusion

COLUMNS = ["device", "what", "T = S", "max abs diff", "naive fwd ms", "sdpa fwd ms",
           "fwd speed-up", "naive fwd+bwd ms", "sdpa fwd+bwd ms", "fwd+bwd speed-up"]


def naive_attention(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
                    key_mask: torch.Tensor) -> torch.Tensor:
    """``softmax(Q K^T / sqrt(d_k)) V`` with masked keys left out, written out step by step.

    Args:
        Q: ``(B, h, T, d_k)``; K, V: ``(B, h, S, d_k)``.
        key_mask: ``(B, 1, 1, S)`` bool, True for keys that may be attended to.

    Returns:
        ``(B, h, T, d_k)``.
    """
    scores = Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1])  # (B, h, T, S)
    A = torch.softmax(scores.masked_fill(~key_mask, float("-inf")), dim=-1)  # (B, h, T, S)
    return A @ V  # (B, h, T, d_k)


def _pair_times(naive: Callable[[], torch.Tensor], fast: Callable[[], torch.Tensor],
                leaves: Sequence[torch.Tensor], device: str, repeats: int,
                warmup: int) -> dict:
    """Check ``naive() ≈ fast()``; time forward (no_grad) and forward+backward of each."""
    with torch.no_grad():
        a, b = naive(), fast()
    tol = {"atol": 1e-4, "rtol": 1e-4}  # fused kernels sum in another order (TF32 off)
    torch.testing.assert_close(b, a, **tol)
    row = {"max abs diff": (a - b).abs().max().item()}
    for label, fn in (("naive", naive), ("sdpa", fast)):
        def forward(fn=fn) -> None:
            with torch.no_grad():
                fn()

        def forward_backward(fn=fn) -> None:
            fn().sum().backward()
            for t in leaves:
                t.grad = None

        row[f"{label} fwd ms"] = 1e3 * median_seconds(forward, device, repeats=repeats,
                                                      warmup=warmup)
        row[f"{label} fwd+bwd ms"] = 1e3 * median_seconds(forward_backward, device,
                                                          repeats=repeats, warmup=warmup)
    row["fwd speed-up"] = row["naive fwd ms"] / row["sdpa fwd ms"]
    row["fwd+bwd speed-up"] = row["naive fwd+bwd ms"] / row["sdpa fwd+bwd ms"]
    return row


def kernel_row(length: int, device: str, *, batch: int, heads: int, d_k: int, repeats: int,
               warmup: int) -> dict:
    """The bare kernels: naive formula vs SDPA, one padded key per sample masked out."""
    g = torch.Generator().manual_seed(0)
    Q, K, V = (torch.randn(batch, heads, length, d_k, generator=g).to(device).requires_grad_()
               for _ in range(3))
    key_mask = torch.ones(batch, 1, 1, length, dtype=torch.bool, device=device)  # (B,1,1,S)
    key_mask[..., -1] = length == 1  # mask the last key (unless it is the only one)
    row = _pair_times(lambda: naive_attention(Q, K, V, key_mask),
                      lambda: F.scaled_dot_product_attention(Q, K, V, attn_mask=key_mask),
                      (Q, K, V), device, repeats, warmup)
    return {"device": device, "what": f"kernel, B={batch} h={heads} d_k={d_k}",
            "T = S": length, **row}


def module_row(length: int, device: str, *, batch: int, heads: int, d_k: int, repeats: int,
               warmup: int) -> dict:
    """``CrossAttentionFusion``: its SDPA path vs its explicit path (return_attention)."""
    torch.manual_seed(0)
    d_model = heads * d_k
    fusion = CrossAttentionFusion({"text": d_model, "image": d_model}, d_model=d_model,
                                  num_heads=heads).to(device)
    g = torch.Generator().manual_seed(1)
    x = {m: torch.randn(batch, length, d_model, generator=g).to(device).requires_grad_()
         for m in fusion.modalities}
    row = _pair_times(lambda: fusion(x, return_attention=True)[0], lambda: fusion(x),
                      [*x.values(), *fusion.parameters()], device, repeats, warmup)
    return {"device": device, "what": f"CrossAttentionFusion, B={batch} d_model={d_model}",
            "T = S": length, **row}


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """Measure, print the markdown, write the report; return the table (``COLUMNS``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--d-k", type=int, default=16, help="width per head (16)")
    add_run_arguments(parser, "attention_sdpa.md")
    args = parser.parse_args(argv)
    apply_threads(args.threads)

    device_list = devices(args.devices)
    kw = {"batch": args.batch, "heads": args.heads, "d_k": args.d_k, "repeats": args.repeats,
          "warmup": args.warmup}
    # float32 everywhere; no TF32, so the CUDA comparison is float32 against float32
    torch.backends.cuda.matmul.allow_tf32 = False
    rows = [make(length, device, **kw) for device in device_list
            for make in (kernel_row, module_row) for length in args.lengths]
    text = "\n".join([
        machine_header("Cross-attention: scaled_dot_product_attention vs the naive formula",
                       device_list),
        "`naive` is `softmax(Q K^T / sqrt(d_k)) V` written out (for the module: "
        "`CrossAttentionFusion(..., return_attention=True)`, its explicit path); `sdpa` is "
        "`torch.nn.functional.scaled_dot_product_attention` (the module's default path). "
        "Queries and keys have the same length; float32; outputs agree within 1e-4 "
        "(asserted). Forward under `torch.no_grad`; forward+backward of `out.sum()`; median "
        f"of {args.repeats} calls after {args.warmup} warm-up calls. Speed-up = naive / sdpa.",
        "",
        markdown_table(rows, COLUMNS),
    ])
    print(text)
    print(f"\nwrote {write_report('attention_sdpa.md', text, args.results)}")
    return pd.DataFrame(rows, columns=COLUMNS)


if __name__ == "__main__":
    main()
