"""Data-parallel training under ``torchrun``: two CPU processes over gloo must train exactly
what one process trains on the same global batches (see ``tests/ddp_cases.py``), and the
command line must report and write once.

The helpers' sharding rules are also tested in one process, by setting the variables
``torchrun`` sets (no process group is needed for them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ddp_cases
import pytest
import torch
from test_cli import CLASSIFY_FAST, manifest  # noqa: F401  (manifest is a fixture)
from torch.utils.data import DataLoader, DistributedSampler

from mmtutor import distributed

TESTS = Path(__file__).resolve().parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), env.get("PYTHONPATH", "")])
    done = subprocess.run([*TORCHRUN, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"torchrun failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    torchrun(str(TESTS / "ddp_cases.py"), str(out), cwd=out)
    return out


@pytest.mark.parametrize("case", sorted(ddp_cases.CASES))
def test_two_gloo_processes_train_what_one_process_trains(two_process_runs, case):
    ranks = [torch.load(two_process_runs / f"{case}.rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["main"] for r in ranks] == [True, False]
    one = ddp_cases.CASES[case](reference=True)
    for name, expected in one["state"].items():
        # Gradients are all-reduced: both processes hold the same weights, up to float
        # rounding, which Adam's division by sqrt(v) magnifies for weights with tiny
        # gradients (embedding rows of rare characters): measured up to 1.4e-4 on one CPU.
        # A shard trained without the all-reduce is off by orders of magnitude more.
        for r in ranks:
            torch.testing.assert_close(r["state"][name], expected, rtol=1e-4, atol=5e-4,
                                       msg=lambda m, n=name, k=r["rank"]: f"rank {k}, {n}: {m}")
    for column, values in one["history"].items():
        if column == "seconds":
            continue
        for r in ranks:  # losses and metrics are over all processes, not one shard
            assert r["history"][column] == pytest.approx(values, rel=1e-4, abs=1e-6), column


def test_the_command_line_under_torchrun_reports_and_writes_once(manifest, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    done = torchrun("-m", "mmtutor", "classify", "--train", str(manifest["train"]),
                    "--dev", str(manifest["dev"]), "--test", str(manifest["test"]),
                    "--image-root", str(manifest["root"]), *CLASSIFY_FAST, "--out", str(out),
                    cwd=tmp_path)
    assert done.stdout.count("mmtutor classify: ") == 1, done.stdout
    assert done.stdout.count("test accuracy:") == 1, done.stdout
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.pt", "predictions.jsonl"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0


# ------------------------------------------------------------- the sharding rules, one process
class Items(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 10

    def __getitem__(self, i: int) -> int:
        return i


def as_rank(monkeypatch, rank: int, world: int = 2) -> None:
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))
    monkeypatch.setenv("LOCAL_RANK", str(rank))


def test_without_torchrun_the_loaders_come_back_unchanged(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    loader = DataLoader(Items(), batch_size=4, shuffle=True)
    assert distributed.shard_train_loader(loader, seed=0) is loader
    assert distributed.shard_eval_loader(loader) is loader
    assert distributed.gather("x") == ["x"] and distributed.is_main_process()


def test_each_process_reads_its_half_of_every_global_batch(monkeypatch):
    loader = DataLoader(Items(), batch_size=4, shuffle=False, collate_fn=list)
    halves = []
    for rank in (0, 1):
        as_rank(monkeypatch, rank)
        sharded = distributed.shard_train_loader(loader, seed=0)
        assert isinstance(sharded.sampler, DistributedSampler) and sharded.batch_size == 2
        halves.append(list(sharded))
    assert not distributed.is_main_process()  # rank 1
    # global batch k of one process = batch k of rank 0 + batch k of rank 1; 10 items on 2
    # ranks of 5: the last global batch has 2 items, as in one process
    assert [sorted(a + b) for a, b in zip(*halves, strict=True)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_validation_shards_cover_every_sample_once(monkeypatch):
    loader = DataLoader(Items(), batch_size=3, shuffle=False, collate_fn=list)
    seen = []
    for rank in (0, 1):
        as_rank(monkeypatch, rank)
        seen += [i for batch in distributed.shard_eval_loader(loader) for i in batch]
    assert sorted(seen) == list(range(10))


def test_loaders_that_cannot_be_split_are_refused_with_the_reason(monkeypatch):
    as_rank(monkeypatch, 0)
    with pytest.raises(ValueError, match=r"batch_size=5, which 2 processes cannot split evenly"):
        distributed.shard_train_loader(DataLoader(Items(), batch_size=5), seed=0)
    with pytest.raises(ValueError, match=r"train_loader must be a torch DataLoader .* got list"):
        distributed.shard_train_loader([{"x": torch.zeros(2)}], seed=0)
    sampler = torch.utils.data.WeightedRandomSampler([1.0] * 10, 10)
    with pytest.raises(ValueError, match="cannot split its WeightedRandomSampler"):
        distributed.shard_train_loader(DataLoader(Items(), batch_size=2, sampler=sampler), seed=0)
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match=r"WORLD_SIZE='two' must be an integer"):
        distributed.world_size()
