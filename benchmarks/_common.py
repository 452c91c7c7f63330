"""What the benchmark scripts share: the machine description, timing, memory, markdown.

The scripts in ``benchmarks/`` import this module as ``_common`` (run as
``python benchmarks/<name>.py``, the folder is on ``sys.path``). Benchmarks are not tests:
they measure and print; nothing in ``make test`` depends on the numbers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from mmtutor.fusion.cost import median_seconds as _median_seconds

RESULTS = Path(__file__).resolve().parent / "results"
# The profiler (CPU peak memory) logs a harmless "gpuGetDeviceCount failed" on machines
# without a GPU; keep its log to real failures.
os.environ.setdefault("KINETO_LOG_LEVEL", "5")


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else :func:`platform.processor`."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def devices(requested: Sequence[str] | None = None) -> list[str]:
    """``requested``, or by default ``["cpu"]`` plus ``"cuda"`` when a GPU is visible."""
    if requested:
        return list(requested)
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def add_run_arguments(parser: argparse.ArgumentParser, report: str) -> None:
    """The options every measuring script takes: devices, repeats, warm-up, results folder."""
    parser.add_argument("--devices", nargs="+", default=None,
                        help="default: cpu, and cuda when present")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls, median (7)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (2)")
    parser.add_argument("--results", type=Path, default=None,
                        help=f"folder for {report} (benchmarks/results)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice); 1 is steadier on "
                        "a machine busy with other work, where threads wait for each other")


def apply_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads in torch (``None``: leave torch's default)."""
    if threads is not None:
        torch.set_num_threads(threads)


def machine_header(title: str, device_list: Sequence[str]) -> str:
    """A markdown heading and a bullet list describing the machine and the software."""
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    lines = [
        f"# {title}",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores "
        f"(torch uses {torch.get_num_threads()} threads)",
        f"- GPU: {', '.join(gpus) if gpus else 'none visible'}",
        f"- python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.system()} {platform.release()}",
        f"- devices measured: {', '.join(device_list)}",
        f"- load average when started: {', '.join(f'{x:.1f}' for x in _loadavg())}",
        "",
    ]
    return "\n".join(lines)


def _loadavg() -> tuple[float, ...]:
    try:
        return os.getloadavg()
    except OSError:
        return ()


def sync(device: str) -> None:
    """Wait for the device's queued work (CUDA kernels run asynchronously)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: str, *, repeats: int, warmup: int) -> float:
    """:func:`mmtutor.fusion.cost.median_seconds` (one definition for the book and the benchmarks)."""
    return _median_seconds(fn, device=device, repeats=repeats, warmup=warmup)


MEMORY_NOTE = (
    "Peak memory is the most memory the step allocated on top of what existed before it "
    "(inputs and parameters). CUDA: `torch.cuda.max_memory_allocated` after "
    "`reset_peak_memory_stats`, minus `memory_allocated` before. CPU: the PyTorch profiler "
    "with `profile_memory=True` records every CPU allocation and free of the step; the peak "
    "of their running sum. (tracemalloc does not see PyTorch's allocator, and the process "
    "RSS high-water mark only ever grows, so neither fits.)"
)


def peak_memory_bytes(fn: Callable[[], object], device: str) -> int:
    """Peak extra bytes allocated while ``fn()`` runs once on ``device`` (see MEMORY_NOTE)."""
    if torch.device(device).type == "cuda":
        sync(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    cpu = torch.autograd.DeviceType.CPU
    events = sorted(
        (e for e in prof.profiler.kineto_results.events()
         if e.name() == "[memory]" and e.device_type() == cpu),
        key=lambda e: e.start_ns(),
    )
    running = peak = 0
    for e in events:
        running += e.nbytes()
        peak = max(peak, running)
    return peak


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    """``rows`` (dicts keyed by ``columns``) as a GitHub markdown table."""
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"
        return str(v)

    out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    out += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(out)


def write_report(name: str, text: str, results: Path | None = None,
                 rows: Sequence[dict] | None = None, **meta: object) -> Path:
    """Write ``text`` to ``results/name`` (default ``benchmarks/results``) and return the path.

    With ``rows``, also write them beside it as JSON (``name`` with the suffix ``.json``,
    ``{**meta, "rows": rows}``), so that a chapter or a script reads the measured numbers
    instead of parsing the markdown table.
    """
    folder = Path(results) if results is not None else RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    if rows is not None:
        record = {**meta, "rows": list(rows)}
        path.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n",
                                             encoding="utf-8")
    return path
