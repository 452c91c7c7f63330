"""Tests of mmtutor.results: reading the benchmark results that the chapters quote."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from mmtutor.results import read_benchmark, summarize_seeds

COMMAND = "python benchmarks/ner_real.py --only wnut17 --seeds 0 1"
ROWS = [
    {"configuration": "b", "seed": 0, "epochs": 4, "entity F1 (conlleval)": 0.2, "train s": 10.0},
    {"configuration": "a", "seed": 0, "epochs": 10, "entity F1 (conlleval)": 0.5, "train s": 30.0},
    {"configuration": "b", "seed": 1, "epochs": 6, "entity F1 (conlleval)": 0.4, "train s": 20.0},
    {"configuration": "a", "seed": 1, "epochs": 9, "entity F1 (conlleval)": 0.3, "train s": 50.0},
    {"configuration": "a", "seed": 2, "epochs": 3, "entity F1 (conlleval)": 0.9, "train s": 100.0},
]


@pytest.fixture
def result_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"command": COMMAND, "machine": ["date: x", "CPU: y"],
                                "rows": ROWS}))
    return path


def test_read_benchmark_returns_the_command_the_machine_and_the_rows(result_file):
    bench = read_benchmark(result_file, COMMAND)
    assert bench.command == COMMAND and bench.machine == ["date: x", "CPU: y"]
    pd.testing.assert_frame_equal(bench.rows, pd.DataFrame(ROWS))


def test_read_benchmark_refuses_a_file_written_by_another_command(result_file):
    other = COMMAND + " 2"
    with pytest.raises(ValueError, match="written by `.*--seeds 0 1`, not by `.*--seeds 0 1 2`"):
        read_benchmark(result_file, other)


def test_read_benchmark_names_the_file_and_the_command_that_writes_it(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.json: no such file; run `python benchmarks"):
        read_benchmark(tmp_path / "missing.json", COMMAND)
    broken = tmp_path / "broken.json"
    broken.write_text('{"command": ')
    with pytest.raises(ValueError, match=r"broken\.json: not a benchmark result"):
        read_benchmark(broken, COMMAND)
    broken.write_text('[1, 2]')
    with pytest.raises(ValueError, match=r"broken\.json: expected an object .* got list"):
        read_benchmark(broken, COMMAND)


def test_summarize_seeds_gives_mean_and_spread_per_configuration_in_first_seen_order():
    summary = summarize_seeds(pd.DataFrame(ROWS), by="configuration")
    assert list(summary.index) == ["b", "a"]
    assert summary.loc["b"].to_dict() == pytest.approx(
        {"mean_F1": 0.3, "min_F1": 0.2, "max_F1": 0.4, "train_s": 15.0, "seeds": 2, "epochs": 6})
    assert summary.loc["a"].to_dict() == pytest.approx(
        {"mean_F1": 1.7 / 3, "min_F1": 0.3, "max_F1": 0.9, "train_s": 60.0, "seeds": 3, "epochs": 10})


def test_summarize_seeds_reads_other_columns_and_works_without_epochs():
    rows = pd.DataFrame(ROWS).drop(columns="epochs").rename(
        columns={"entity F1 (conlleval)": "test entity F1", "configuration": "init"})
    summary = summarize_seeds(rows, by="init", value="test entity F1")
    assert "epochs" not in summary.columns
    assert summary.loc["a", "mean_F1"] == pytest.approx(1.7 / 3)
    with pytest.raises(ValueError, match=r"lack the columns \['entity F1 \(conlleval\)'\]"):
        summarize_seeds(rows, by="init")
