"""The scripts of ``benchmarks/`` run and produce the tables they promise.

Each script's ``main`` runs on a tiny configuration; the tests check the columns, the rows
and the files written, never a time: benchmarks are not tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from devices import DEVICES

from mmtutor.fusion import FUSIONS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import attention_sdpa  # noqa: E402
import fusion_cost  # noqa: E402
import ner_real  # noqa: E402
import notebook_times  # noqa: E402

TINY = ["--repeats", "1", "--warmup", "0"]


@pytest.mark.parametrize("device", DEVICES)
def test_fusion_cost_has_every_fusion_at_every_width(device, tmp_path):
    widths = [4, 8]
    table = fusion_cost.main(["--widths", *map(str, widths), "--batch", "4", "--seq-len", "2",
                              "--devices", device, "--results", str(tmp_path), *TINY])
    assert list(table.columns) == fusion_cost.COLUMNS
    assert set(table.fusion) == set(FUSIONS)  # names a missing fusion
    assert len(table) == len(FUSIONS) * len(widths)
    for name in FUSIONS:
        assert sorted(table[table.fusion == name].width) == widths, name
    assert (table.device == device).all()
    tensor = table[table.fusion == "tensor"].set_index("width")
    # TFN's output layer alone has (d + 1)^2 * 64 weights (+ 64 biases)
    assert list(tensor.params) == [(d + 1) ** 2 * 64 + 64 for d in widths]
    assert (tensor["fwd+bwd MFLOP"] > tensor["fwd MFLOP"]).all()
    assert (table["peak MiB"] >= 0).all()
    (check,) = table.attrs["check"]
    # parameters do not depend on the machine: (129^2 * 64 + 64) / (2 * 4 * 129 * 64 + 64)
    assert check["param ratio"] == pytest.approx(1_065_088 / 66_112)
    assert check["param check"].startswith("PASS")
    assert check["time check"].split()[0] in {"PASS", "FAIL"}
    report = (tmp_path / "fusion_cost.md").read_text()
    assert "# Fusion cost against modality width" in report and "- CPU: " in report
    assert all(f"| {device} | {name} |" in report for name in FUSIONS)
    assert "LowRankFusion (rank 4) vs TensorFusion" in report
    assert (tmp_path / "fusion_cost.png").stat().st_size > 0


@pytest.mark.parametrize("device", DEVICES)
def test_attention_sdpa_matches_the_naive_formula(device, tmp_path):
    lengths = [1, 4]
    table = attention_sdpa.main(["--lengths", *map(str, lengths), "--batch", "2", "--heads",
                                 "2", "--d-k", "4", "--devices", device,
                                 "--results", str(tmp_path), *TINY])
    assert list(table.columns) == attention_sdpa.COLUMNS
    assert len(table) == 2 * len(lengths)  # the kernels and the module, per length
    assert table.what.str.startswith("kernel").sum() == len(lengths)
    assert table.what.str.startswith("CrossAttentionFusion").sum() == len(lengths)
    assert (table["max abs diff"] < 1e-4).all()
    assert "scaled_dot_product_attention" in (tmp_path / "attention_sdpa.md").read_text()


def test_naive_attention_leaves_masked_keys_out():
    import torch

    Q, K, V = torch.randn(1, 1, 2, 3), torch.randn(1, 1, 3, 3), torch.randn(1, 1, 3, 3)
    keep = torch.tensor([True, True, False]).view(1, 1, 1, 3)
    out = attention_sdpa.naive_attention(Q, K, V, keep)
    torch.testing.assert_close(out, attention_sdpa.naive_attention(Q, K[..., :2, :],
                                                                   V[..., :2, :], keep[..., :2]))


def test_notebook_times_dry_run_lists_every_notebook(tmp_path, capsys):
    table = notebook_times.main(["--dry-run", "--results", str(tmp_path)])
    notebooks = sorted(p.name for p in (notebook_times.ROOT / "notebooks").glob("*.ipynb"))
    assert list(table.columns) == notebook_times.COLUMNS
    assert [Path(n).name for n in table.notebook[:-1]] == notebooks
    assert table.notebook.iloc[-1] == "total"
    assert list(table["budget s"]) == [90.0] * len(notebooks) + [600.0]
    assert (table.result[:-1] == "dry run").all()
    assert "--nbmake" in capsys.readouterr().out
    assert "| total |" in (tmp_path / "notebook_times.md").read_text()


def test_notebook_times_marks_a_budget_exceeded(tmp_path, monkeypatch):
    fake = {"a.ipynb": 95.0, "b.ipynb": 10.0}
    for name in fake:
        (tmp_path / name).write_text("{}")
    monkeypatch.setattr(notebook_times, "run_one", lambda nb: (fake[nb.name], "passed"))
    args = [str(tmp_path / n) for n in fake] + ["--results", str(tmp_path)]
    table = notebook_times.main(args)
    assert list(table["within budget"]) == ["**OVER**", "yes", "yes"]
    assert table.seconds.iloc[-1] == pytest.approx(105.0)
    assert "**OVER**" in (tmp_path / "notebook_times.md").read_text()
    with pytest.raises(SystemExit) as stop:
        notebook_times.main(args + ["--strict"])
    assert stop.value.code == 1


def test_ner_real_quick_has_a_row_per_configuration(tmp_path):
    rows = ner_real.main(["--quick", "--only", "generated", "--n-train", "40", "--configs",
                          "bilstm", "images", "--results", str(tmp_path)])
    assert [list(r) for r in rows] == [ner_real.COLUMNS] * 4  # text + one fusion per level
    assert [r["configuration"].split(" ")[0] for r in rows] == [
        "bilstm", "concat", "gated", "product_of_experts"]
    assert all(0.0 <= r["entity F1 (conlleval)"] <= 1.0 and r["epochs"] == 1 for r in rows)
    report = (tmp_path / "ner_real.md").read_text()
    assert "- CPU: " in report and report.count("| generated (40 sent.") == 4


def test_ner_real_fuses_the_chosen_fusions_with_each_chosen_text_encoder(tmp_path, capsys):
    rows = ner_real.main(["--quick", "--only", "generated", "--n-train", "40", "--configs",
                          "images", "--fusions", "gated", "--image-text", "bilstm",
                          "cnn-bilstm", "--results", str(tmp_path)])
    assert [r["configuration"].split(" (")[1] for r in rows] == ["model level) + bilstm",
                                                                 "model level) + cnn-bilstm"]
    assert [r["configuration"].rsplit("(", 1)[1].split("-crf")[0] for r in rows] == [
        "bilstm", "cnn-bilstm"]  # the encoder each row trained, as NERConfig resolved it
    with pytest.raises(SystemExit):
        ner_real.main(["--only", "wnut17", "--fusions", "gated", "--results", str(tmp_path)])
    assert "--fusions and --image-text need the 'images'" in capsys.readouterr().err


def test_ner_real_runs_each_seed_and_subsets_wnut_training_only(tmp_path):
    rows = ner_real.main(["--quick", "--only", "wnut17", "--wnut-train", "30", "--configs",
                          "bilstm", "--seeds", "0", "1", "--results", str(tmp_path)])
    assert [r["seed"] for r in rows] == [0, 1]
    report = (tmp_path / "ner_real.md").read_text()
    assert "the first 30 WNUT-17 training tweets" in report
    record = json.loads((tmp_path / "ner_real.json").read_text())
    assert record["rows"] == rows  # the JSON holds exactly the rows of the table
    assert record["command"].endswith("--seeds 0 1 --results " + str(tmp_path))
    assert f"Command: `{record['command']}`" in report
    assert any(line.startswith("CPU: ") for line in record["machine"])


def test_ner_real_names_its_report_and_refuses_a_path(tmp_path, capsys):
    ner_real.main(["--quick", "--only", "wnut17", "--wnut-train", "20", "--configs", "bilstm",
                   "--results", str(tmp_path), "--name", "mine"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.json", "mine.md"]
    with pytest.raises(SystemExit):
        ner_real.main(["--name", "../elsewhere", "--results", str(tmp_path)])
    assert "--name: want a plain file name" in capsys.readouterr().err
    assert set(ner_real.TEXT_CONFIGS["minilm-top2"].items()) >= {("finetune", "top"),
                                                                 ("top_layers", 2)}


@pytest.mark.parametrize("record", sorted((Path(__file__).resolve().parents[1] / "benchmarks"
                                           / "results").glob("*.json")), ids=lambda p: p.name)
def test_committed_json_results_match_their_markdown_report(record):
    """A chapter reads the JSON; the markdown beside it, written in the same run, must agree."""
    from _common import markdown_table

    data = json.loads(record.read_text())
    report = record.with_suffix(".md").read_text()
    table = markdown_table(data["rows"], list(data["rows"][0])).splitlines()
    assert data["rows"] and all(line in report.splitlines() for line in table)
    assert f"Command: `{data['command']}`" in report
    assert all(f"- {line}" in report for line in data["machine"])
