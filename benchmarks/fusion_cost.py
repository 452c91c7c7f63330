"""What fusion costs: parameters, FLOPs, time and memory of every fusion in ``FUSIONS``.

Both modalities get the same width ``d`` (32 ... 512), batch 256, every fusion maps to an
output of 64 (``output_dim=64``; the attention fusions have ``d_model=64``):

* vector fusions (feature level, GMU, FiLM) take ``(B, d)`` per modality;
* sequence fusions (cross-attention, fusion transformer) take ``(B, T, d)`` with
  ``T = 16`` tokens per modality (``--seq-len``), no padding;
* decision fusions take per-modality logits ``(B, d)``, i.e. ``C = d`` classes, and output
  ``C`` log-probabilities (their output is not 64).

Per fusion, width and device it measures: parameters; FLOPs counted by
``torch.utils.flop_counter.FlopCounterMode`` (it counts matrix products, convolutions and
attention kernels, not element-wise work such as TFN's outer product); the median time of a
forward pass (under ``torch.no_grad``) and of forward + backward of ``out.sum()`` (the inputs
require gradients, as they do behind an encoder); and the peak memory of forward + backward
(see ``_common.MEMORY_NOTE``). Then the check of issue 16: at widths 128 and 128 with output
64, ``LowRankFusion`` (rank 4) against ``TensorFusion``, as ratios.

    python benchmarks/fusion_cost.py                       # the full table (minutes)
    python benchmarks/fusion_cost.py --widths 8 --repeats 1 --devices cpu   # a smoke run

It prints markdown and writes ``benchmarks/results/fusion_cost.md`` and ``fusion_cost.png``.
A benchmark, not a test: the times depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from _common import (
    MEMORY_NOTE,
    add_run_arguments,
    apply_threads,
    devices,
    machine_header,
    markdown_table,
    peak_memory_bytes,
    write_report,
)

from mmtutor.fusion import FUSIONS, build_fusion
from mmtutor.fusion.cost import fusion_inputs, measure_fusion

OUTPUT_DIM = 64
RANK = 4
CHECK_WIDTH = 128
PARAM_RATIO_MIN, TIME_RATIO_MIN = 10.0, 3.0

# name -> keyword arguments; every fusion of FUSIONS needs an entry (checked in main)
CONFIGS: dict[str, dict] = {
    "concat": {"output_dim": OUTPUT_DIM},
    "weighted_sum": {"output_dim": OUTPUT_DIM},
    "tensor": {"output_dim": OUTPUT_DIM},
    "low_rank": {"output_dim": OUTPUT_DIM, "rank": RANK},
    "gated": {"output_dim": OUTPUT_DIM},
    "film": {"output_dim": OUTPUT_DIM},
    "cross_attention": {"d_model": OUTPUT_DIM, "num_heads": 4},
    "transformer": {"d_model": OUTPUT_DIM, "num_heads": 4},
    "average": {},
    "weighted_vote": {},
    "product_of_experts": {},
}

COLUMNS = ["device", "fusion", "level", "input", "width", "params", "fwd MFLOP",
           "fwd+bwd MFLOP", "fwd ms", "fwd+bwd ms", "peak MiB"]


def measure(name: str, width: int, device: str, *, batch: int, seq_len: int, repeats: int,
            warmup: int) -> dict:
    """One row of the table: :func:`mmtutor.fusion.cost.measure_fusion`, plus peak memory."""
    row = measure_fusion(name, width, batch=batch, seq_len=seq_len, repeats=repeats,
                         warmup=warmup, device=device, **CONFIGS[name])
    torch.manual_seed(0)
    fusion = build_fusion(name, {"text": width, "image": width}, **CONFIGS[name]).to(device)
    x = fusion_inputs(fusion, width, batch=batch, seq_len=seq_len, device=device)
    row["peak MiB"] = peak_memory_bytes(lambda: fusion(x).sum().backward(), device) / 2**20
    return {"device": device, **row}


def lmf_vs_tfn(table: pd.DataFrame, device: str, **kw) -> dict:
    """Issue 16's check at width ``CHECK_WIDTH``: TFN / LMF parameters and fwd+bwd time."""
    rows = {}
    for name in ("tensor", "low_rank"):
        hit = table[(table.device == device) & (table.fusion == name)
                    & (table.width == CHECK_WIDTH)]
        rows[name] = hit.iloc[0] if len(hit) else measure(name, CHECK_WIDTH, device, **kw)
    params = rows["tensor"]["params"] / rows["low_rank"]["params"]
    time = rows["tensor"]["fwd+bwd ms"] / rows["low_rank"]["fwd+bwd ms"]
    return {"device": device, "param ratio": params, "param check": _mark(params, PARAM_RATIO_MIN),
            "fwd+bwd time ratio": time, "time check": _mark(time, TIME_RATIO_MIN)}


def _mark(ratio: float, minimum: float) -> str:
    return f"PASS (>= {minimum:g}x)" if ratio >= minimum else f"FAIL (< {minimum:g}x)"


def plot(table: pd.DataFrame, path: Path) -> Path:
    """Parameters, FLOPs, fwd+bwd time and peak memory against width (log scales)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    long = table.melt(id_vars=["device", "fusion", "width"],
                      value_vars=["params", "fwd MFLOP", "fwd+bwd ms", "peak MiB"],
                      var_name="cost", value_name="value")
    long = long[long.value > 0]  # log scale: parameter-free fusions have 0 params / FLOPs
    grid = sns.relplot(data=long, x="width", y="value", hue="fusion", style="device",
                       palette=sns.color_palette("tab20", long.fusion.nunique()),
                       col="cost", kind="line", marker="o", facet_kws={"sharey": False},
                       height=3.2, aspect=1.0)
    widths = sorted(table.width.unique())
    for ax in grid.axes.flat:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.minorticks_off()
    grid.set_titles("{col_name}")
    grid.figure.suptitle("Cost of each fusion against modality width (batch "
                         f"{table.attrs.get('batch', '?')}, both modalities of width d)",
                         y=1.03)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.figure.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(grid.figure)
    return path


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """Measure, print the markdown, write the report and the figure; return the table.

    The returned frame has one row per device x fusion x width (``COLUMNS``) and the
    LMF-vs-TFN check in ``frame.attrs["check"]`` (one dict per device).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    parser.add_argument("--fusions", nargs="+", default=list(FUSIONS), choices=list(FUSIONS))
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=16, help="tokens per modality (16)")
    add_run_arguments(parser, "fusion_cost.md/.png")
    parser.add_argument("--no-figure", action="store_true")
    args = parser.parse_args(argv)
    apply_threads(args.threads)
    missing = set(FUSIONS) - set(CONFIGS)
    if missing:
        raise SystemExit(f"benchmarks/fusion_cost.py: CONFIGS lacks {sorted(missing)}")

    device_list = devices(args.devices)
    kw = {"batch": args.batch, "seq_len": args.seq_len, "repeats": args.repeats,
          "warmup": args.warmup}
    rows = [measure(name, width, device, **kw)
            for device in device_list for name in args.fusions for width in args.widths]
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs["batch"] = args.batch
    table.attrs["check"] = [lmf_vs_tfn(table, device, **kw) for device in device_list]

    check_cols = ["device", "param ratio", "param check", "fwd+bwd time ratio", "time check"]
    text = "\n".join([
        machine_header("Fusion cost against modality width", device_list),
        f"Batch {args.batch}; both modalities of width d; output 64 (`output_dim=64`, "
        f"attention `d_model=64`, 4 heads); sequence fusions on {args.seq_len} tokens per "
        "modality; decision fusions on logits with C = d classes. Forward time under "
        f"`torch.no_grad`; forward+backward of `out.sum()`; median of {args.repeats} calls "
        f"after {args.warmup} warm-up calls. FLOPs from `FlopCounterMode` (matrix products "
        "and attention only; element-wise work such as TFN's outer product is not counted). "
        + MEMORY_NOTE,
        "",
        markdown_table(rows, COLUMNS),
        "",
        f"## Issue 16's check: LowRankFusion (rank {RANK}) vs TensorFusion, widths "
        f"{CHECK_WIDTH} and {CHECK_WIDTH}, output {OUTPUT_DIM}",
        "",
        "Ratios are TensorFusion / LowRankFusion.",
        "",
        markdown_table(table.attrs["check"], check_cols),
    ])
    print(text)
    path = write_report("fusion_cost.md", text, args.results)
    print(f"\nwrote {path}")
    if not args.no_figure:
        folder = args.results if args.results is not None else path.parent
        print(f"wrote {plot(table, Path(folder) / 'fusion_cost.png')}")
    return table


if __name__ == "__main__":
    main()
